"""ticket files and the paid-modification agreement

Revision ID: 0009
Revises: 0007
Create Date: 2026-11-25 18:10:00

A ticket keeps the files the merchant attached (references to Telegram's copies, read when the
ticket is filed) and, for a modification beyond the month's free ones, the merchant's agreement
to pay: who agreed, when, and to which price. The builtin queue keeps the agreement too, as RT
keeps it in a custom field.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "ticket_files",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.Integer(), nullable=False),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("file_id", sa.String(length=255), nullable=False),
        sa.Column("file_unique_id", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=128), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["ticket_id"],
            ["tickets.id"],
            name=op.f("fk_ticket_files_ticket_id_tickets"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ticket_files")),
        sa.UniqueConstraint("ticket_id", "position", name=op.f("uq_ticket_files_ticket_id")),
    )
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(sa.Column("paid_by_merchant_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("paid_by_name", sa.String(length=255), nullable=True))
        batch.add_column(sa.Column("paid_at", sa.DateTime(timezone=True), nullable=True))
        batch.add_column(sa.Column("paid_amount", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("paid_currency", sa.String(length=3), nullable=True))
    with op.batch_alter_table("queue_tickets") as batch:
        batch.add_column(sa.Column("paid_agreement", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("queue_tickets") as batch:
        batch.drop_column("paid_agreement")
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("paid_currency")
        batch.drop_column("paid_amount")
        batch.drop_column("paid_at")
        batch.drop_column("paid_by_name")
        batch.drop_column("paid_by_merchant_id")
    op.drop_table("ticket_files")
