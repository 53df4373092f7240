"""the registered e-mail belongs to the membership, not to the merchant

Revision ID: 0021
Revises: 0020
Create Date: 2026-11-26 00:40:00

One person may be linked to store A as a@… and to store B as b@…: each store's tickets go to the
queue with that store's e-mail as requester, and the platform unlinks a member of a store by the
e-mail it registered there. Existing e-mails (one per merchant) are copied onto every membership
of their merchant, then `merchants.email` goes. The downgrade gives a merchant back one of their
memberships' e-mails.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0021"
down_revision: str | None = "0020"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("memberships") as batch:
        batch.add_column(sa.Column("email", sa.String(length=320), nullable=True))
    op.execute(
        "UPDATE memberships SET email = "
        "(SELECT merchants.email FROM merchants WHERE merchants.id = memberships.merchant_id)"
    )
    with op.batch_alter_table("merchants") as batch:
        batch.drop_column("email")


def downgrade() -> None:
    with op.batch_alter_table("merchants") as batch:
        batch.add_column(sa.Column("email", sa.String(length=320), nullable=True))
    op.execute(
        "UPDATE merchants SET email = (SELECT max(memberships.email) FROM memberships "
        "WHERE memberships.merchant_id = merchants.id)"
    )
    with op.batch_alter_table("memberships") as batch:
        batch.drop_column("email")
