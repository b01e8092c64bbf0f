"""the installation's identity: namespaces and signs broker announcements

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # The row itself is made by the first process that starts (app/installation.py), so a
    # database restored without it, or emptied, gets a new identity rather than none.
    op.create_table(
        "installation",
        sa.Column("singleton", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("id", sa.String(length=32), nullable=False),
        sa.Column("broker_key", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("singleton = 1", name="ck_installation_singleton"),
        sa.PrimaryKeyConstraint("singleton"),
    )


def downgrade() -> None:
    op.drop_table("installation")
