"""staff action outbox: a specialist's reply, comment, resolve, take or assign from Telegram on
its way to the queue

Revision ID: 0018
Revises: 0017
Create Date: 2026-11-25 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0018"
down_revision: str | None = "0017"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "staff_action_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=200), nullable=False),
        sa.Column("reference", sa.String(length=64), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("staff_telegram_id", sa.BigInteger(), nullable=False),
        sa.Column("queue_user", sa.String(length=200), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "reply",
                "comment",
                "resolve",
                "take",
                "assign",
                name="staffactionkind",
                native_enum=False,
                create_constraint=True,
                length=16,
            ),
            nullable=False,
        ),
        sa.Column("owner", sa.String(length=200), nullable=True),
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
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_staff_action_outbox_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_action_outbox")),
        sa.UniqueConstraint("key", name=op.f("uq_staff_action_outbox_key")),
        sa.UniqueConstraint("reference", name=op.f("uq_staff_action_outbox_reference")),
    )
    with op.batch_alter_table("staff_action_outbox") as batch:
        batch.create_index(
            batch.f("ix_staff_action_outbox_next_attempt_at"), ["next_attempt_at"], unique=False
        )
        batch.create_index("ix_staff_action_outbox_ticket_id_done_at", ["ticket_id", "done_at"])


def downgrade() -> None:
    with op.batch_alter_table("staff_action_outbox") as batch:
        batch.drop_index("ix_staff_action_outbox_ticket_id_done_at")
        batch.drop_index(batch.f("ix_staff_action_outbox_next_attempt_at"))
    op.drop_table("staff_action_outbox")
