"""editing flags: who is editing an entry right now, with a short time to live

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-02

A new table only: nothing existing is touched, so up and down never rebuild a table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "editing_flags",
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("blog_id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("user_name", sa.String(length=100), nullable=False),
        sa.Column("since", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["entries.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["blog_id"], ["blogs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("entry_id"),
    )
    op.create_index("ix_editing_flags_blog", "editing_flags", ["blog_id"])
    op.create_index("ix_editing_flags_expires", "editing_flags", ["expires_at"])


def downgrade() -> None:
    op.drop_index("ix_editing_flags_expires", table_name="editing_flags")
    op.drop_index("ix_editing_flags_blog", table_name="editing_flags")
    op.drop_table("editing_flags")
