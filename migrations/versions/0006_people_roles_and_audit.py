"""people, roles and audit: users, memberships per blog, tokens of users, review states, the
audit log and the actor of each change-log row

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

Columns added to existing tables are plain (no foreign keys, constant defaults) and are
added and dropped with ALTER TABLE, outside batch mode: on SQLite batch mode rebuilds the
table, and dropping the old one under `PRAGMA foreign_keys=ON` runs the ON DELETE actions
of every table that refers to it (a blog's entries and events would go with it).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column("login", sa.String(length=320), nullable=False),
        sa.Column("login_key", sa.String(length=320), nullable=False),
        sa.Column("password_hash", sa.String(length=200), nullable=False),
        sa.Column("password_changed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("login_key"),
    )
    op.create_table(
        "memberships",
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("blog_id", sa.Integer(), nullable=False),
        sa.Column("role", sa.String(length=12), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["blog_id"], ["blogs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("user_id", "blog_id"),
    )
    op.create_index("ix_memberships_blog", "memberships", ["blog_id"])
    op.create_table(
        "token_blogs",
        sa.Column("token_id", sa.Integer(), nullable=False),
        sa.Column("blog_id", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(["blog_id"], ["blogs.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["token_id"], ["tokens.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("token_id", "blog_id"),
    )
    op.create_table(
        "audit_records",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("action", sa.String(length=40), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), nullable=True),
        sa.Column("actor_token_id", sa.Integer(), nullable=True),
        sa.Column("via", sa.String(length=20), nullable=False),
        sa.Column("address", sa.String(length=64), nullable=True),
        sa.Column("blog_id", sa.Integer(), nullable=True),
        sa.Column("entry_id", sa.Integer(), nullable=True),
        sa.Column("seq", sa.Integer(), nullable=True),
        sa.Column("details", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_audit_records_blog", "audit_records", ["blog_id", "id"])

    # A string default, not sa.false(): alembic would rebuild the table for an expression.
    op.add_column(
        "blogs",
        sa.Column("contributors_may_publish", sa.Boolean(), nullable=False, server_default="0"),
    )
    op.add_column("entries", sa.Column("created_by", sa.Integer(), nullable=True))
    op.add_column("entries", sa.Column("review_note", sa.Text(), nullable=True))
    op.add_column("events", sa.Column("actor_user_id", sa.Integer(), nullable=True))
    op.add_column("events", sa.Column("actor_token_id", sa.Integer(), nullable=True))
    op.add_column("tokens", sa.Column("user_id", sa.Integer(), nullable=True))
    op.add_column("tokens", sa.Column("max_role", sa.String(length=12), nullable=True))
    op.create_index("ix_tokens_user_id", "tokens", ["user_id"])


def downgrade() -> None:
    op.drop_index("ix_tokens_user_id", table_name="tokens")
    # ALTER TABLE ... DROP COLUMN, on SQLite too (3.35 and later): never a rebuild.
    for table, column in [
        ("tokens", "max_role"),
        ("tokens", "user_id"),
        ("events", "actor_token_id"),
        ("events", "actor_user_id"),
        ("entries", "review_note"),
        ("entries", "created_by"),
        ("blogs", "contributors_may_publish"),
    ]:
        op.drop_column(table, column)
    op.drop_index("ix_audit_records_blog", table_name="audit_records")
    op.drop_table("audit_records")
    op.drop_table("token_blogs")
    op.drop_index("ix_memberships_blog", table_name="memberships")
    op.drop_table("memberships")
    op.drop_table("users")
