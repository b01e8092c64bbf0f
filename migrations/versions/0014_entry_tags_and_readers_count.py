"""tags on entries (kept in their revisions, one entry_tags row each for the reader page's
filter by tag), and a blog's `show_readers_count` setting

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-02

Plain ALTER TABLE ... ADD COLUMN, outside batch mode (see 0006: rebuilding `entries` on SQLite
would run the ON DELETE actions of every table that refers to it).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    for table in ("entries", "entry_revisions"):
        op.add_column(
            table, sa.Column("tags", sa.JSON(), nullable=False, server_default=sa.text("'[]'"))
        )
    op.add_column(
        "blogs",
        sa.Column("show_readers_count", sa.Boolean(), nullable=False, server_default=sa.false()),
    )
    op.create_table(
        "entry_tags",
        sa.Column("entry_id", sa.Integer(), nullable=False),
        sa.Column("tag", sa.String(length=100), nullable=False),
        sa.Column("blog_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["entry_id"], ["entries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("entry_id", "tag"),
    )
    op.create_index("ix_entry_tags_blog_tag", "entry_tags", ["blog_id", "tag", "entry_id"])


def downgrade() -> None:
    op.drop_index("ix_entry_tags_blog_tag", table_name="entry_tags")
    op.drop_table("entry_tags")
    op.drop_column("blogs", "show_readers_count")
    for table in ("entry_revisions", "entries"):
        op.drop_column(table, "tags")
