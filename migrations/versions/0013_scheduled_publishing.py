"""scheduled publishing: an entry held or scheduled waits in the private state `scheduled`
with its due time, the state an undo returns it to, who scheduled it, and the lease of the
process that publishes it

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02

Plain ALTER TABLE, outside batch mode: rebuilding `entries` on SQLite would run the ON DELETE
actions of every table that refers to it (see 0005 and 0006).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("publish_at", sa.DateTime(timezone=True)),
    ("scheduled_from", sa.String(length=10)),
    ("scheduled_by", sa.Integer()),
    ("scheduled_token", sa.Integer()),
    ("schedule_lease_owner", sa.String(length=64)),
    ("schedule_lease_until", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    for name, kind in COLUMNS:
        op.add_column("entries", sa.Column(name, kind, nullable=True))
    op.create_index("ix_entries_due", "entries", ["status", "publish_at"])


def downgrade() -> None:
    op.drop_index("ix_entries_due", table_name="entries")
    for name, _kind in reversed(COLUMNS):
        op.drop_column("entries", name)
