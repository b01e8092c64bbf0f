"""idempotent answers: a retried create answers what the first request was answered

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


# Plain ALTER TABLE, not batch mode: on SQLite batch mode rebuilds the table, and
# dropping `entries` under foreign_keys=ON would null every event's entry_id.
def upgrade() -> None:
    op.add_column("entries", sa.Column("idempotent_answer", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("entries", "idempotent_answer")
