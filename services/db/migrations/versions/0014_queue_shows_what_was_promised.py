"""the builtin queue keeps what RT shows a specialist: due dates, priority, labels

Revision ID: 0014
Revises: 0011
Create Date: 2026-11-25 19:40:00

A filed ticket carries the first-reaction deadline the merchant is told (the queue's due date),
the resolution deadline, a priority by plan, the requester's name, the store's name and the
type's and category's labels; the builtin queue stores them as RT does in Due, Priority and its
custom fields.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

COLUMNS = (
    ("requester_name", sa.String(255)),
    ("store_name", sa.String(255)),
    ("request_type_label", sa.String(255)),
    ("category_label", sa.String(255)),
    ("priority", sa.String(16)),
    ("due_at", sa.DateTime(timezone=True)),
    ("resolution_due_at", sa.DateTime(timezone=True)),
)


def upgrade() -> None:
    with op.batch_alter_table("queue_tickets", schema=None) as batch_op:
        for name, type_ in COLUMNS:
            batch_op.add_column(sa.Column(name, type_, nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("queue_tickets", schema=None) as batch_op:
        for name, _type in reversed(COLUMNS):
            batch_op.drop_column(name)
