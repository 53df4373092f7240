"""staff registry: specialists and leads linked to their Telegram accounts, staff link tokens

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-25 19:40:00

`staff_members` maps a queue user to a Telegram id with a role (specialist, lead); a removal is
kept (`removed_at`). `staff_link_tokens` holds single-use staff links the same way
`link_tokens` holds the merchants' (the token's SHA-256, expiry, used once).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _role() -> sa.Enum:
    return sa.Enum(
        "specialist", "lead", name="staffrole", native_enum=False, create_constraint=True, length=16
    )


def upgrade() -> None:
    op.create_table(
        "staff_members",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("queue_user", sa.String(length=200), nullable=False),
        sa.Column("telegram_id", sa.BigInteger(), nullable=False),
        sa.Column("role", _role(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("commands_shown", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_members")),
        sa.UniqueConstraint("queue_user", name=op.f("uq_staff_members_queue_user")),
        sa.UniqueConstraint("telegram_id", name=op.f("uq_staff_members_telegram_id")),
    )
    op.create_table(
        "staff_link_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("queue_user", sa.String(length=200), nullable=False),
        sa.Column("role", _role(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_staff_link_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_staff_link_tokens_token_hash")),
    )


def downgrade() -> None:
    op.drop_table("staff_link_tokens")
    op.drop_table("staff_members")
