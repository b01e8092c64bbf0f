"""a blog's `streams_stopped` flag: the operator's kill switch for a runaway blog

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-03

Plain ALTER TABLE ... ADD COLUMN, outside batch mode (see 0014). Who stopped and restarted
the streams, and when, is in the audit log (`blog.streams_stopped`, `blog.streams_resumed`).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "blogs",
        sa.Column("streams_stopped", sa.Boolean(), nullable=False, server_default=sa.false()),
    )


def downgrade() -> None:
    op.drop_column("blogs", "streams_stopped")
