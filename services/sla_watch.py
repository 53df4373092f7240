"""The SLA watch: the specialists are warned before a ticket's first-reaction deadline passes.

A ticket with no first reaction yet (``tickets.first_reaction_at``, set by the sync at the first
reply or status change by support) gets two warnings at most: one when 80 % of its first-reaction
window (registered_at → first_reaction_due) is gone, and one at the breach. They go to the
ticket's owner when the owner's queue user is a linked staff member (services/staff.py), else to
every lead.

Nothing is kept in memory: each round selects the watched tickets with a plain query, so a
restart loses nothing. A warning is one conditional UPDATE of ``tickets.sla_stage`` (0 → 1 → 2)
and its notices, in one transaction: of several processes only the one whose UPDATE matched
writes them, and their unique keys (``sla80:<ticket>:<chat>``, ``sla_breach:<ticket>:<chat>``)
would refuse a second copy anyway. A round that finds the deadline already passed skips the 80 %
warning: the breach says more.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from services import notices, staff
from services.db.base import utcnow
from services.db.dialect import rowcount
from services.db.models import StaffMember, StaffRole, Ticket, TicketStatus
from services.rounds import Rounds

logger = logging.getLogger(__name__)

# Warned at this share of the first-reaction window (issue 9: "80 %").
WARN_SHARE = 0.8
NONE, NEAR, BREACHED = 0, 1, 2
# Statuses in which a ticket still waits for its first reaction.
WATCHED = (TicketStatus.REGISTERED, TicketStatus.OPEN, TicketStatus.WAITING)


def stage_due(registered_at: datetime, due: datetime, now: datetime) -> int:
    """The warning a ticket should have had by ``now``: NONE, NEAR (80 % gone) or BREACHED."""
    if now >= due:
        return BREACHED
    if now >= registered_at + (due - registered_at) * WARN_SHARE:
        return NEAR
    return NONE


async def recipients(session: AsyncSession, owner: str | None) -> list[int]:
    """The Telegram ids to warn: the owner if linked (and not removed), else every lead."""
    active = StaffMember.removed_at.is_(None)
    if owner:
        telegram_id = await session.scalar(
            select(StaffMember.telegram_id).where(StaffMember.queue_user == owner, active)
        )
        if telegram_id is not None:
            return [telegram_id]
    leads = await session.scalars(
        select(StaffMember.telegram_id)
        .where(StaffMember.role == StaffRole.LEAD, active)
        .order_by(StaffMember.id)
    )
    return list(leads)


class SlaWatch:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        ticket_url: Callable[[str], str | None] | None = None,
        default_locale: str = "ru",
        on_notice: Callable[[], None] | None = None,
        idle_interval: float = 30.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._ticket_url = ticket_url
        self._default_locale = default_locale
        self._on_notice = on_notice
        self._clock = clock
        self._rounds = Rounds("sla-watch", self.run_once, idle_interval=idle_interval)

    async def run(self) -> None:
        await self._rounds.run()

    async def run_once(self) -> int:
        """One round: writes the warnings due now; returns how many tickets were warned (0: the
        loop naps until the next round)."""
        now = self._clock()
        async with self._sessionmaker() as session:
            rows = (
                await session.execute(
                    select(
                        Ticket.id, Ticket.registered_at, Ticket.first_reaction_due, Ticket.sla_stage
                    )
                    .where(
                        Ticket.first_reaction_at.is_(None),
                        Ticket.sla_stage < BREACHED,
                        Ticket.status.in_(WATCHED),
                        Ticket.queue_ticket_id.is_not(None),
                        Ticket.registered_at.is_not(None),
                        Ticket.first_reaction_due.is_not(None),
                        Ticket.registered_at <= now,
                    )
                    .order_by(Ticket.first_reaction_due)
                )
            ).all()
        warned = 0
        for ticket_id, registered_at, due, stage in rows:
            if registered_at is None or due is None:
                continue  # not selected; for the type checker
            target = stage_due(registered_at, due, now)
            if target > stage and await self._warn(ticket_id, stage, target, now):
                warned += 1
        if warned and self._on_notice is not None:
            self._on_notice()
        return warned

    async def _warn(self, ticket_id: int, stage: int, target: int, now: datetime) -> bool:
        async with self._sessionmaker() as session:
            claimed = rowcount(
                await session.execute(
                    update(Ticket)
                    .where(
                        Ticket.id == ticket_id,
                        Ticket.sla_stage == stage,
                        Ticket.first_reaction_at.is_(None),
                        Ticket.status.in_(WATCHED),
                    )
                    .values(sla_stage=target)
                )
            )
            if not claimed:
                # Another process warned first, or the first reaction came meanwhile.
                await session.rollback()
                return False
            ticket = await session.scalar(
                select(Ticket).where(Ticket.id == ticket_id).options(selectinload(Ticket.store))
            )
            assert ticket is not None and ticket.first_reaction_due is not None
            number = ticket.queue_ticket_id or ""
            body = notices.SlaWarning(
                number=number,
                subject=ticket.subject,
                store=(f"{ticket.store.name} ({ticket.store.domain})" if ticket.store else None),
                due=ticket.first_reaction_due,
                breached=target == BREACHED,
                url=self._ticket_url(number) if self._ticket_url else None,
            )
            prefix = "sla_breach" if target == BREACHED else "sla80"
            chats = await recipients(session, ticket.queue_owner)
            for chat_id in chats:
                await notices.enqueue(
                    session,
                    key=f"{prefix}:{ticket_id}:{chat_id}",
                    chat_id=chat_id,
                    locale=await staff.locale_of(session, chat_id, self._default_locale),
                    body=body,
                    now=now,
                )
            await session.commit()
        if not chats:
            logger.warning("ticket %s: SLA warning with no staff to tell (no leads)", ticket_id)
        logger.info("ticket %s: SLA %s warning to %s", ticket_id, prefix, chats or "nobody")
        return True
