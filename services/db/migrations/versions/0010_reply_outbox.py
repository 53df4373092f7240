"""reply outbox: a merchant's replies, corrections, closes and reopens on their way to the queue

Revision ID: 0010
Revises: 0007
Create Date: 2026-11-25 18:05:00

Also gives the builtin queue's messages frontdesk's reference, so a merchant's message is
posted there once whatever failed in between.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "reply_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("merchant_id", sa.Integer(), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "reply",
                "correction",
                "close",
                "reopen",
                name="replykind",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("files", sa.JSON(), nullable=False),
        sa.Column("locale", sa.String(length=8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delay_notified", sa.Boolean(), nullable=False),
        sa.Column("refused_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("done_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["merchant_id"],
            ["merchants.id"],
            name=op.f("fk_reply_outbox_merchant_id_merchants"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_reply_outbox_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reply_outbox")),
        sa.UniqueConstraint("key", name=op.f("uq_reply_outbox_key")),
        sa.UniqueConstraint("reference", name=op.f("uq_reply_outbox_reference")),
    )
    with op.batch_alter_table("reply_outbox") as batch:
        batch.create_index(
            batch.f("ix_reply_outbox_next_attempt_at"), ["next_attempt_at"], unique=False
        )
        batch.create_index("ix_reply_outbox_ticket_id_done_at", ["ticket_id", "done_at"])

    with op.batch_alter_table("queue_comments") as batch:
        batch.add_column(sa.Column("reference", sa.String(length=64), nullable=True))
        batch.create_unique_constraint(batch.f("uq_queue_comments_reference"), ["reference"])


def downgrade() -> None:
    with op.batch_alter_table("queue_comments") as batch:
        batch.drop_constraint(batch.f("uq_queue_comments_reference"), type_="unique")
        batch.drop_column("reference")
    with op.batch_alter_table("reply_outbox") as batch:
        batch.drop_index("ix_reply_outbox_ticket_id_done_at")
        batch.drop_index(batch.f("ix_reply_outbox_next_attempt_at"))
    op.drop_table("reply_outbox")
