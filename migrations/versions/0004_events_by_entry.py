"""events by entry: a redaction rewrites every earlier event of one entry

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_events_entry", "events", ["entry_id"])


def downgrade() -> None:
    op.drop_index("ix_events_entry", table_name="events")
