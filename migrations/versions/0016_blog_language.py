"""a blog's `language` (BCP 47): its reader page's words, dates and writing direction

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-03

Plain ALTER TABLE ... ADD COLUMN, outside batch mode (see 0006); existing blogs read "en".
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column(
        "blogs",
        sa.Column("language", sa.String(length=35), nullable=False, server_default="en"),
    )


def downgrade() -> None:
    op.drop_column("blogs", "language")
