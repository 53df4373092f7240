"""the SLA watch: when a ticket got its first reaction, and which warning it has had

Revision ID: 0015
Revises: 0014
Create Date: 2026-11-25 19:55:00

``first_reaction_at`` is set by the sync at the first reply or status change by support;
``sla_stage`` is the last SLA warning written for the ticket (0 none, 1 at 80 % of the
first-reaction window, 2 at its breach), advanced by one conditional UPDATE
(services/sla_watch.py), so several processes never warn twice. ``staff_members.locale`` is
the language the member's Telegram spoke when they linked: the bot's messages to staff use it.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015"
down_revision: str | None = "0014"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.add_column(sa.Column("first_reaction_at", sa.DateTime(timezone=True)))
        batch_op.add_column(
            sa.Column("sla_stage", sa.Integer(), nullable=False, server_default="0")
        )
    with op.batch_alter_table("staff_members", schema=None) as batch_op:
        batch_op.add_column(sa.Column("locale", sa.String(8)))


def downgrade() -> None:
    with op.batch_alter_table("staff_members", schema=None) as batch_op:
        batch_op.drop_column("locale")
    with op.batch_alter_table("tickets", schema=None) as batch_op:
        batch_op.drop_column("sla_stage")
        batch_op.drop_column("first_reaction_at")
