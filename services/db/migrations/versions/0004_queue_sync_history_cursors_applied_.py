"""queue sync: history, cursors, applied events, deliveries

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-25 07:25:36.448654
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "queue_event_deliveries",
        sa.Column("signature", sa.String(length=64), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("signature", name=op.f("pk_queue_event_deliveries")),
    )
    with op.batch_alter_table("queue_event_deliveries", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_queue_event_deliveries_expires_at"), ["expires_at"], unique=False
        )

    op.create_table(
        "sync_cursors",
        sa.Column("queue_name", sa.String(length=32), nullable=False),
        sa.Column("position", sa.DateTime(timezone=True), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("queue_name", name=op.f("pk_sync_cursors")),
    )
    op.create_table(
        "applied_queue_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=160), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("applied_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_applied_queue_events_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_applied_queue_events")),
        sa.UniqueConstraint("key", name=op.f("uq_applied_queue_events_key")),
    )
    with op.batch_alter_table("applied_queue_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_applied_queue_events_ticket_id"), ["ticket_id"], unique=False
        )

    op.create_table(
        "queue_transactions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("field", sa.String(length=64), nullable=True),
        sa.Column("old_value", sa.String(length=255), nullable=True),
        sa.Column("new_value", sa.String(length=255), nullable=True),
        sa.Column("creator", sa.String(length=320), nullable=False),
        sa.Column("comment_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["comment_id"],
            ["queue_comments.id"],
            name=op.f("fk_queue_transactions_comment_id_queue_comments"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["queue_tickets.id"],
            name=op.f("fk_queue_transactions_ticket_id_queue_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_queue_transactions")),
    )
    with op.batch_alter_table("queue_transactions", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_queue_transactions_ticket_id"), ["ticket_id"], unique=False
        )

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("queue_owner", sa.String(length=255), nullable=True))
        batch_op.create_index(
            "ix_tickets_queue_ticket", ["queue_name", "queue_ticket_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_index("ix_tickets_queue_ticket")
        batch_op.drop_column("queue_owner")

    with op.batch_alter_table("queue_transactions", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_queue_transactions_ticket_id"))

    op.drop_table("queue_transactions")
    with op.batch_alter_table("applied_queue_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_applied_queue_events_ticket_id"))

    op.drop_table("applied_queue_events")
    op.drop_table("sync_cursors")
    with op.batch_alter_table("queue_event_deliveries", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_queue_event_deliveries_expires_at"))

    op.drop_table("queue_event_deliveries")
