"""blogs.noindex: a blog kept out of search engines (robots meta, both sitemaps)

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02

One plain ADD COLUMN (no batch mode: on SQLite that rebuilds the table, and with foreign keys
on the rebuild deletes every row that refers to it).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "blogs", sa.Column("noindex", sa.Boolean(), nullable=False, server_default=sa.false())
    )


def downgrade() -> None:
    op.drop_column("blogs", "noindex")
