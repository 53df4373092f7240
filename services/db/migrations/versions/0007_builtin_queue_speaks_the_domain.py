"""builtin queue speaks the domain: frontdesk's statuses and event kinds, queue, merge, deletion

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-25 15:45:00

The builtin queue kept RT's words (transactions Create/Correspond/Status/Set, statuses new,
stalled, deleted). It now stores frontdesk's own: statuses as TicketStatus values, history rows
by kind (created, message, status, owner, moved, merged, deleted) with a flag for messages
written for support, the queue a ticket is in, the ticket it was merged into and when it was
deleted. Existing rows are converted both ways.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# RT's default lifecycle -> frontdesk's statuses ("deleted" becomes deleted_at).
_TO_FRONTDESK = {"new": "registered", "stalled": "waiting", "deleted": "rejected"}
_TO_RT = {"registered": "new", "waiting": "stalled"}


def _map(column: str, mapping: dict[str, str]) -> str:
    cases = " ".join(f"WHEN '{old}' THEN '{new}'" for old, new in mapping.items())
    return f"CASE {column} {cases} ELSE {column} END"


def upgrade() -> None:
    with op.batch_alter_table("queue_tickets") as batch:
        batch.add_column(
            sa.Column("queue", sa.String(length=64), server_default="Support", nullable=False)
        )
        batch.add_column(sa.Column("merged_into", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE queue_tickets SET deleted_at = updated_at WHERE status = 'deleted'")
    op.execute(f"UPDATE queue_tickets SET status = {_map('status', _TO_FRONTDESK)}")

    with op.batch_alter_table("queue_comments") as batch:
        batch.add_column(
            sa.Column("body_format", sa.String(length=8), server_default="text", nullable=False)
        )

    with op.batch_alter_table("queue_transactions") as batch:
        batch.add_column(sa.Column("kind", sa.String(length=16), nullable=True))
        batch.add_column(
            sa.Column("by_support", sa.Boolean(), server_default=sa.false(), nullable=False)
        )
    op.execute(
        "UPDATE queue_transactions SET kind = CASE"
        " WHEN type = 'Create' THEN 'created'"
        " WHEN type = 'Correspond' THEN 'message'"
        " WHEN field = 'Status' AND new_value = 'deleted' THEN 'deleted'"
        " WHEN field = 'Status' THEN 'status'"
        " WHEN field = 'Owner' THEN 'owner'"
        " ELSE 'other' END"
    )
    op.execute(
        "UPDATE queue_transactions SET by_support = (creator <> 'frontdesk') WHERE kind = 'message'"
    )
    op.execute(
        "UPDATE queue_transactions SET"
        f" old_value = {_map('old_value', _TO_FRONTDESK)},"
        f" new_value = {_map('new_value', _TO_FRONTDESK)}"
        " WHERE kind = 'status'"
    )
    op.execute("UPDATE queue_transactions SET new_value = NULL WHERE kind = 'deleted'")
    with op.batch_alter_table("queue_transactions") as batch:
        batch.alter_column("kind", existing_type=sa.String(length=16), nullable=False)
        batch.drop_column("type")
        batch.drop_column("field")


def downgrade() -> None:
    with op.batch_alter_table("queue_transactions") as batch:
        batch.add_column(sa.Column("type", sa.String(length=32), nullable=True))
        batch.add_column(sa.Column("field", sa.String(length=64), nullable=True))
    op.execute(
        "UPDATE queue_transactions SET type = CASE kind"
        " WHEN 'created' THEN 'Create' WHEN 'message' THEN 'Correspond'"
        " WHEN 'status' THEN 'Status' WHEN 'deleted' THEN 'Status' ELSE 'Set' END,"
        " field = CASE kind WHEN 'status' THEN 'Status' WHEN 'deleted' THEN 'Status'"
        " WHEN 'owner' THEN 'Owner' WHEN 'moved' THEN 'Queue' WHEN 'merged' THEN 'MergedInto'"
        " ELSE NULL END"
    )
    op.execute(
        "UPDATE queue_transactions SET"
        f" old_value = {_map('old_value', _TO_RT)},"
        f" new_value = {_map('new_value', _TO_RT)}"
        " WHERE kind = 'status'"
    )
    op.execute("UPDATE queue_transactions SET new_value = 'deleted' WHERE kind = 'deleted'")
    with op.batch_alter_table("queue_transactions") as batch:
        batch.alter_column("type", existing_type=sa.String(length=32), nullable=False)
        batch.drop_column("by_support")
        batch.drop_column("kind")

    # Plain ALTER TABLE ... DROP COLUMN (SQLite 3.35+), not a batch: SQLite's batch copies and
    # drops the table, and dropping it would cascade to the rows that reference it.
    op.drop_column("queue_comments", "body_format")

    op.execute(f"UPDATE queue_tickets SET status = {_map('status', _TO_RT)}")
    op.execute("UPDATE queue_tickets SET status = 'deleted' WHERE deleted_at IS NOT NULL")
    for column in ("deleted_at", "merged_into", "queue"):
        op.drop_column("queue_tickets", column)
