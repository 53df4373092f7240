"""indexes for the leads' views: open tickets by deadline (/queue), tickets by registration
(/stats)

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-25 21:10:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        "ix_tickets_status_first_reaction_due", "tickets", ["status", "first_reaction_due"]
    )
    op.create_index("ix_tickets_registered_at", "tickets", ["registered_at"])


def downgrade() -> None:
    op.drop_index("ix_tickets_registered_at", table_name="tickets")
    op.drop_index("ix_tickets_status_first_reaction_due", table_name="tickets")
