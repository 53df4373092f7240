"""filing restrictions: the log of leads restricting and lifting Telegram users from filing

Revision ID: 0017
Revises: 0014
Create Date: 2026-11-25 19:55:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "filing_restrictions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("telegram_id", sa.BigInteger(), nullable=False),
        sa.Column("restricted", sa.Boolean(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("by_queue_user", sa.String(length=200), nullable=False),
        sa.Column("by_telegram_id", sa.BigInteger(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_filing_restrictions")),
    )
    with op.batch_alter_table("filing_restrictions") as batch:
        batch.create_index(
            "ix_filing_restrictions_telegram_id", ["telegram_id", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("filing_restrictions") as batch:
        batch.drop_index("ix_filing_restrictions_telegram_id")
    op.drop_table("filing_restrictions")
