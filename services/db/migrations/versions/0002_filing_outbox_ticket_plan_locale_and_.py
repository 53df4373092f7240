"""filing outbox, ticket plan, locale and deadlines

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 06:18:33.195801
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:

    op.create_table(
        "filing_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("claimed_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("delay_notified", sa.Boolean(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_filing_outbox_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_filing_outbox")),
        sa.UniqueConstraint("ticket_id", name=op.f("uq_filing_outbox_ticket_id")),
    )
    with op.batch_alter_table("filing_outbox", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_filing_outbox_next_attempt_at"), ["next_attempt_at"], unique=False
        )

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("plan", sa.String(length=32), nullable=True))
        batch_op.add_column(
            sa.Column("locale", sa.String(length=8), server_default="ru", nullable=False)
        )
        batch_op.add_column(
            sa.Column("first_reaction_due", sa.DateTime(timezone=True), nullable=True)
        )
        batch_op.add_column(sa.Column("resolution_due", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:

    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("resolution_due")
        batch_op.drop_column("first_reaction_due")
        batch_op.drop_column("locale")
        batch_op.drop_column("plan")

    with op.batch_alter_table("filing_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_filing_outbox_next_attempt_at"))

    op.drop_table("filing_outbox")
