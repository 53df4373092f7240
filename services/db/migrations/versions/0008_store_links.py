"""store links: the platform's store id, single-use link tokens

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-25 18:10:00

The platform links a Telegram user to a store (POST /api/links, `frontdesk link`): stores keep
the platform's id (`external_id`), and each link is a row of `link_tokens` holding the token's
SHA-256 (never the token), the role and e-mail it grants, its expiry and when it was used.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("stores") as batch:
        batch.add_column(sa.Column("external_id", sa.String(length=64), nullable=True))
        batch.create_unique_constraint("uq_stores_external_id", ["external_id"])
    op.create_table(
        "link_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("store_id", sa.Integer(), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "owner", "admin", name="role", native_enum=False, create_constraint=True, length=16
            ),
            nullable=False,
        ),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("used_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["store_id"],
            ["stores.id"],
            name=op.f("fk_link_tokens_store_id_stores"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["used_by"],
            ["merchants.id"],
            name=op.f("fk_link_tokens_used_by_merchants"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_link_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_link_tokens_token_hash")),
    )
    op.create_index(op.f("ix_link_tokens_store_id"), "link_tokens", ["store_id"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_link_tokens_store_id"), table_name="link_tokens")
    op.drop_table("link_tokens")
    with op.batch_alter_table("stores") as batch:
        batch.drop_constraint("uq_stores_external_id", type_="unique")
        batch.drop_column("external_id")
