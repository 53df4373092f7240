"""The SLA watch (services/sla_watch.py) with a controllable clock, on SQLite and PostgreSQL:
one warning at 80 % of the first-reaction window, one at its breach, none after the first
reaction; to the owner when linked, else to the leads; never twice, with two processes too."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import merchants, staff, tickets
from services.db.base import utcnow
from services.db.engine import create_engine, create_sessionmaker
from services.db.models import Notice, StaffRole, Ticket
from services.filing import FilingWorker
from services.notices import SlaWarning, parse_body
from services.queue.base import OwnerEvent, ReplyEvent, StatusEvent
from services.queue.builtin import BuiltinQueue
from services.regulation import load_regulation
from services.sla_watch import SlaWatch
from services.sync import SyncEvent, apply_event
from services.tickets import Draft

REGULATION = load_regulation()
DRAFT = Draft("technical", "system_error", "Ошибка 500 в корзине", "Шаги: открыть корзину.")
ANNA, BORIS, LEAD_1, LEAD_2 = 5_001, 5_002, 5_101, 5_102


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


async def _link(
    sessionmaker: async_sessionmaker[AsyncSession],
    user: str,
    role: StaffRole,
    telegram_id: int,
    locale: str | None = None,
) -> None:
    async with sessionmaker() as session:
        issued = await staff.issue_link(
            session, user, role, ttl=timedelta(minutes=15), now=utcnow()
        )
        redeemed = await staff.redeem(
            session, issued.token, telegram_id=telegram_id, now=utcnow(), locale=locale
        )
    assert redeemed.member is not None


async def _staff(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await _link(sessionmaker, "anna", StaffRole.SPECIALIST, ANNA)
    await _link(sessionmaker, "boris", StaffRole.SPECIALIST, BORIS)
    await _link(sessionmaker, "lead1", StaffRole.LEAD, LEAD_1)
    await _link(sessionmaker, "lead2", StaffRole.LEAD, LEAD_2, locale="en")


async def _file(
    sessionmaker: async_sessionmaker[AsyncSession], queue: BuiltinQueue
) -> tuple[int, str, datetime, datetime]:
    """A registered ticket: (id, number, registered_at, first_reaction_due)."""
    async with sessionmaker() as session:
        merchant = await merchants.get_or_register(
            session,
            telegram_id=7_000_000_000 + uuid.uuid4().int % 1_000_000_000,
            full_name="Анна Петрова",
            username="anna",
        )
        accepted = await tickets.submit(
            session,
            REGULATION.catalog,
            merchant,
            DRAFT,
            reference=tickets.new_reference(),
            locale="ru",
            queue_name=queue.name,
        )
    assert await FilingWorker(sessionmaker, queue, REGULATION).run_once() == 1
    async with sessionmaker() as session:
        ticket = await session.get(Ticket, accepted.id)
        assert ticket is not None and ticket.queue_ticket_id is not None
        assert ticket.registered_at is not None and ticket.first_reaction_due is not None
        return ticket.id, ticket.queue_ticket_id, ticket.registered_at, ticket.first_reaction_due


async def _apply(sessionmaker: async_sessionmaker[AsyncSession], event: object) -> None:
    async with sessionmaker() as session:
        await apply_event(session, SyncEvent("builtin", event))  # type: ignore[arg-type]


async def _assign(
    sessionmaker: async_sessionmaker[AsyncSession], number: str, owner: str, event_id: str = "o1"
) -> None:
    await _apply(sessionmaker, OwnerEvent(event_id, number, utcnow(), "lead1", old=None, new=owner))


async def _warnings(
    sessionmaker: async_sessionmaker[AsyncSession], ticket_id: int
) -> list[tuple[int, bool, str]]:
    """The SLA warnings written about the ticket: (chat, breached, key), in order."""
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Notice.chat_id, Notice.payload, Notice.key)
            .where(Notice.kind == "sla_warning")
            .order_by(Notice.id)
        )
        found = []
        for chat_id, payload, key in rows:
            body = parse_body(payload)
            assert isinstance(body, SlaWarning)
            if key.split(":")[1] == str(ticket_id):
                found.append((chat_id, body.breached, key))
        return found


def _at(registered: datetime, due: datetime, share: float) -> datetime:
    return registered + (due - registered) * share


def _watch(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Callable[[], datetime],
) -> SlaWatch:
    return SlaWatch(
        sessionmaker, clock=clock, ticket_url=(lambda n: f"https://queue.example/t/{n}")
    )


async def test_owner_warned_once_at_80_percent_and_once_at_breach(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    queue = BuiltinQueue(sessionmaker)
    await _staff(sessionmaker)
    ticket_id, number, registered, due = await _file(sessionmaker, queue)
    await _assign(sessionmaker, number, "anna")
    clock = Clock(_at(registered, due, 0.79))
    watch = _watch(sessionmaker, clock)

    assert await watch.run_once() == 0
    assert await _warnings(sessionmaker, ticket_id) == []

    clock.now = _at(registered, due, 0.8)
    assert await watch.run_once() == 1
    for share in (0.8, 0.85, 0.99):
        clock.now = _at(registered, due, share)
        assert await watch.run_once() == 0
    assert await _warnings(sessionmaker, ticket_id) == [(ANNA, False, f"sla80:{ticket_id}:{ANNA}")]

    clock.now = due
    assert await watch.run_once() == 1
    clock.now = due + timedelta(hours=5)
    assert await watch.run_once() == 0
    # A restart: a new watch on the same database sends nothing again.
    assert await _watch(sessionmaker, clock).run_once() == 0
    assert await _warnings(sessionmaker, ticket_id) == [
        (ANNA, False, f"sla80:{ticket_id}:{ANNA}"),
        (ANNA, True, f"sla_breach:{ticket_id}:{ANNA}"),
    ]
    async with sessionmaker() as session:
        payload = await session.scalar(
            select(Notice.payload).where(Notice.key == f"sla_breach:{ticket_id}:{ANNA}")
        )
    body = parse_body(payload or {})
    assert isinstance(body, SlaWarning)
    assert (body.number, body.subject, body.due) == (number, DRAFT.subject, due)
    assert body.url == f"https://queue.example/t/{number}"


async def test_unassigned_or_unlinked_owner_warns_the_leads(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    queue = BuiltinQueue(sessionmaker)
    await _staff(sessionmaker)
    unassigned, _n1, registered, due = await _file(sessionmaker, queue)
    unlinked, number, _r, _d = await _file(sessionmaker, queue)
    await _assign(sessionmaker, number, "somebody.not.linked")
    clock = Clock(_at(registered, due, 0.9))

    assert await _watch(sessionmaker, clock).run_once() == 2

    for ticket_id in (unassigned, unlinked):
        assert sorted(chat for chat, _b, _k in await _warnings(sessionmaker, ticket_id)) == [
            LEAD_1,
            LEAD_2,
        ]
    # Each in their language: that of their Telegram when they linked, else the default.
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Notice.chat_id, Notice.locale).where(Notice.kind == "sla_warning").distinct()
        )
        locales = {chat_id: locale for chat_id, locale in rows}
    assert locales[LEAD_1] == "ru" and locales[LEAD_2] == "en"
    # The leads' new-ticket notices (services/assignments.py) follow the same language rule.
    async with sessionmaker() as session:
        rows = await session.execute(
            select(Notice.chat_id, Notice.locale).where(Notice.kind == "unassigned").distinct()
        )
        assert sorted(rows) == [(LEAD_1, "ru"), (LEAD_2, "en")]


async def test_no_warning_after_the_first_reaction(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    queue = BuiltinQueue(sessionmaker)
    await _staff(sessionmaker)
    replied, replied_no, registered, due = await _file(sessionmaker, queue)
    moved, moved_no, _r, _d = await _file(sessionmaker, queue)
    warned, warned_no, _r2, _d2 = await _file(sessionmaker, queue)
    for number in (replied_no, moved_no, warned_no):
        await _assign(sessionmaker, number, "anna", event_id=f"o-{number}")
    clock = Clock(_at(registered, due, 0.5))
    watch = _watch(sessionmaker, clock)
    await _apply(sessionmaker, ReplyEvent("r1", replied_no, utcnow(), "anna", by_support=True))
    await _apply(
        sessionmaker, StatusEvent("s1", moved_no, utcnow(), "anna", old=None, new=None, label="x")
    )
    # The merchant's own mail is no reaction.
    await _apply(sessionmaker, ReplyEvent("m1", warned_no, utcnow(), "merchant", by_support=False))

    clock.now = _at(registered, due, 0.9)
    assert await watch.run_once() == 1  # only the ticket nobody reacted to
    await _apply(sessionmaker, ReplyEvent("r2", warned_no, utcnow(), "anna", by_support=True))
    clock.now = due + timedelta(minutes=1)
    assert await watch.run_once() == 0

    assert await _warnings(sessionmaker, replied) == []
    assert await _warnings(sessionmaker, moved) == []
    assert [b for _c, b, _k in await _warnings(sessionmaker, warned)] == [False]


async def test_two_processes_do_not_double_the_warnings(database_url: str) -> None:
    engines = [create_engine(database_url) for _ in range(2)]
    try:
        makers = [create_sessionmaker(engine) for engine in engines]
        queue = BuiltinQueue(makers[0])
        await _staff(makers[0])
        filed = [await _file(makers[0], queue) for _ in range(4)]
        registered, due = filed[0][2], filed[0][3]
        clock = Clock(_at(registered, due, 0.8) + timedelta(minutes=1))
        watches = [_watch(maker, clock) for maker in makers] * 2  # two per process

        counts = await asyncio.gather(*(w.run_once() for w in watches))
        assert sum(counts) == len(filed)
        clock.now = due + timedelta(minutes=1)
        counts = await asyncio.gather(*(w.run_once() for w in watches))
        assert sum(counts) == len(filed)

        for ticket_id, *_ in filed:
            # Unassigned: each lead gets one warning at 80 % and one at the breach.
            assert sorted((c, b) for c, b, _k in await _warnings(makers[1], ticket_id)) == [
                (LEAD_1, False),
                (LEAD_1, True),
                (LEAD_2, False),
                (LEAD_2, True),
            ]
    finally:
        for engine in engines:
            await engine.dispose()
