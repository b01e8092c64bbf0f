"""visible corrections: when readers were told an entry changed, its public correction notes

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02

Plain ALTER TABLE ... ADD COLUMN, outside batch mode (see 0006: rebuilding `entries` on SQLite
would run the ON DELETE actions of every table that refers to it).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("entries", sa.Column("modified_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column(
        "entries",
        sa.Column("corrections", sa.JSON(), nullable=False, server_default=sa.text("'[]'")),
    )
    op.add_column("entry_revisions", sa.Column("correction", sa.String(280), nullable=True))
    op.add_column(
        "entry_revisions",
        sa.Column("minor", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("entry_revisions", "minor")
    op.drop_column("entry_revisions", "correction")
    op.drop_column("entries", "corrections")
    op.drop_column("entries", "modified_at")
