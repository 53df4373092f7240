"""Sync back: what a specialist does in the queue reaches the merchant, each event exactly once,
whether it is pulled by the worker or pushed to /queue/events.

The cross-adapter tests run on the builtin queue (SQLite, PostgreSQL) and on a real Request
Tracker, where the specialist is RT's superuser acting through REST2 as its web interface would.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.queue_events import PATH, QueueEventsEndpoint
from services import merchants, notices, staff, tickets
from services.db.engine import create_engine, create_sessionmaker
from services.db.models import (
    AppliedQueueEvent,
    QueueEventDelivery,
    StaffRole,
    SyncCursor,
    Ticket,
    TicketStatus,
)
from services.event_signature import sign
from services.filing import FilingWorker
from services.queue.base import (
    Attachment,
    BodyFormat,
    MovedEvent,
    NewTicket,
    OwnerEvent,
    QueueEvent,
    QueueTicket,
    QueueUnavailable,
    ReplyEvent,
    StatusEvent,
    TicketQueue,
)
from services.queue.builtin import BuiltinQueue
from services.queue.console import BuiltinConsole, RtConsole, StaffConsole
from services.queue.rt import RequestTrackerQueue
from services.regulation import load_regulation
from services.sync import (
    Outcome,
    SyncEvent,
    SyncWorker,
    TicketSync,
    apply_event,
)
from services.tickets import Draft
from tests.helpers import notices as notice_log
from tests.helpers.notices import NoticeLog
from tests.integration.rt_fixture import RtServer, mail_in, rt_server

__all__ = ["rt_server"]  # the session fixture, imported to be found here

REGULATION = load_regulation()
DRAFT = Draft("technical", "system_error", "Ошибка 500 в корзине", "Шаги: открыть корзину.")
PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00"
SECRET = "queue-events-test-secret"


# --- the specialist's side: the staff console (services/queue/console.py) ----------------------

SPECIALIST = "anna.specialist"


# --- frontdesk's side -----------------------------------------------------------------------------


@dataclass
class World:
    """frontdesk's database, the queue, and a specialist working in it."""

    kind: str
    sessionmaker: async_sessionmaker[AsyncSession]
    queue: TicketQueue
    specialist: StaffConsole

    def worker(self, **kwargs: Any) -> SyncWorker:
        return SyncWorker(self.sessionmaker, self.queue, interval=0.1, **kwargs)

    def notices(self) -> NoticeLog:
        return NoticeLog(self.sessionmaker)

    async def file(self, telegram_id: int | None = None) -> tuple[int, str]:
        """A merchant's request accepted and registered in the queue: (ticket id, number)."""
        telegram_id = telegram_id or 7_000_000_000 + uuid.uuid4().int % 1_000_000_000
        async with self.sessionmaker() as session:
            merchant = await merchants.get_or_register(
                session, telegram_id=telegram_id, full_name="Анна Петрова", username="anna"
            )
            accepted = await tickets.submit(
                session,
                REGULATION.catalog,
                merchant,
                DRAFT,
                reference=tickets.new_reference(),
                locale="ru",
                queue_name=self.queue.name,
            )
        filing = FilingWorker(self.sessionmaker, self.queue, REGULATION)
        assert await filing.run_once() == 1
        async with self.sessionmaker() as session:
            ticket = await session.get(Ticket, accepted.id)
            assert ticket is not None and ticket.queue_ticket_id is not None
            return ticket.id, ticket.queue_ticket_id

    async def ticket(self, ticket_id: int) -> Ticket:
        async with self.sessionmaker() as session:
            ticket = await session.get(Ticket, ticket_id)
            assert ticket is not None
            return ticket

    async def count(self, model: type) -> int:
        async with self.sessionmaker() as session:
            return await session.scalar(select(func.count()).select_from(model)) or 0

    async def last_event(self, number: str, kind: type[QueueEvent]) -> QueueEvent:
        return [e for e in await self.queue.events(number) if isinstance(e, kind)][-1]


@pytest.fixture(
    params=[
        "builtin-sqlite",
        pytest.param("builtin-postgres", marks=pytest.mark.postgres),
        pytest.param("rt", marks=pytest.mark.rt),
    ]
)
async def world(request: pytest.FixtureRequest) -> AsyncIterator[World]:
    """frontdesk on its database with each queue: the builtin one (in that same database, on
    SQLite and PostgreSQL) and a real Request Tracker (frontdesk's database on SQLite)."""
    url = request.getfixturevalue(
        "postgres_url" if request.param == "builtin-postgres" else "sqlite_url"
    )
    engine: AsyncEngine = create_engine(url)
    sessionmaker = create_sessionmaker(engine)
    try:
        if request.param == "rt":
            rt: RtServer = request.getfixturevalue("rt_server")
            queue = RequestTrackerQueue(rt.base_url, rt.queue, token=rt.token, timeout=15)
            console = RtConsole(
                rt.base_url, rt.queue, user=rt.admin_user, password=rt.admin_password
            )
            yield World("rt", sessionmaker, queue, console)
            await console.close()
            await queue.close()
        else:
            builtin = BuiltinQueue(sessionmaker)
            yield World(request.param, sessionmaker, builtin, BuiltinConsole(builtin, SPECIALIST))
    finally:
        await engine.dispose()


@pytest.fixture
async def builtin(sqlite_url: str) -> AsyncIterator[World]:
    """The builtin queue on SQLite alone, for what does not depend on the adapter."""
    engine = create_engine(sqlite_url)
    sessionmaker = create_sessionmaker(engine)
    queue = BuiltinQueue(sessionmaker)
    yield World("builtin-sqlite", sessionmaker, queue, BuiltinConsole(queue, SPECIALIST))
    await engine.dispose()


# --- every adapter --------------------------------------------------------------------------------


async def test_specialists_reply_reaches_the_merchant_with_its_attachment(world: World) -> None:
    notices = world.notices()
    worker = world.worker()
    ticket_id, number = await world.file(telegram_id=7_100_000_001)
    await worker.run_once()  # nothing yet: the ticket's creation is frontdesk's own
    assert (await notices.replies()) == []

    await world.specialist.reply(
        number,
        "Здравствуйте! Ошибка исправлена, лог во вложении.",
        (Attachment("лог.txt", "text/plain", "500 → 200".encode()),),
    )
    await worker.run_once()

    [reply] = await notices.replies()
    assert reply.body == "Здравствуйте! Ошибка исправлена, лог во вложении."
    assert reply.author == world.specialist.name
    assert [(a.filename, a.content) for a in reply.attachments] == [
        ("лог.txt", "500 → 200".encode())
    ]
    assert reply.ticket.ticket_id == ticket_id
    assert reply.ticket.queue_ticket_id == number
    assert reply.ticket.telegram_id == 7_100_000_001
    assert (reply.ticket.locale, reply.ticket.subject) == ("ru", DRAFT.subject)


async def test_status_change_is_announced_and_kept_on_the_ticket(world: World) -> None:
    notices = world.notices()
    worker = world.worker()
    ticket_id, number = await world.file()
    await worker.run_once()

    await world.specialist.set_status(number, TicketStatus.OPEN)
    await worker.run_once()
    assert (await world.ticket(ticket_id)).status is TicketStatus.OPEN
    await world.specialist.set_status(number, TicketStatus.RESOLVED)
    await worker.run_once()

    assert [(n.old, n.new) for n in (await notices.statuses())] == [
        (TicketStatus.REGISTERED, TicketStatus.OPEN),
        (TicketStatus.OPEN, TicketStatus.RESOLVED),
    ]
    assert (await world.ticket(ticket_id)).status is TicketStatus.RESOLVED


async def test_owner_change_becomes_one_assignment(world: World) -> None:
    notices = world.notices()
    worker = world.worker()
    ticket_id, number = await world.file()
    await worker.run_once()

    await world.specialist.set_owner(number, world.specialist.name)
    await worker.run_once()

    # RT records it twice (the Owner column, and the owner role group): one assignment, kept on
    # the ticket; the merchant is not told, nor the owner here: not a linked staff member.
    async with world.sessionmaker() as session:
        kinds = list(await session.scalars(select(AppliedQueueEvent.kind)))
    assert kinds == ["owner"]
    assert (await world.ticket(ticket_id)).queue_owner == world.specialist.name
    assert await notices.count() == 2  # "accepted" and "registered", nothing since


async def _link_staff(world: World, queue_user: str, telegram_id: int, role: StaffRole) -> None:
    now = datetime.now(UTC)
    async with world.sessionmaker() as session:
        issued = await staff.issue_link(session, queue_user, role, ttl=timedelta(hours=1), now=now)
        redeemed = await staff.redeem(session, issued.token, telegram_id=telegram_id, now=now)
    assert redeemed.member is not None


async def test_ticket_assigned_to_a_linked_specialist_tells_them_once(world: World) -> None:
    worker = world.worker(
        tickets=TicketSync(world.sessionmaker, world.queue, labels=REGULATION.labels)
    )
    await _link_staff(world, world.specialist.name, 5_100_000_001, StaffRole.SPECIALIST)
    ticket_id, number = await world.file()
    await worker.run_once()

    await world.specialist.set_owner(number, world.specialist.name)
    await worker.run_once()
    await worker.run_once()
    owner = await world.last_event(number, OwnerEvent)
    await worker.tickets.sync_ticket(number, upto=owner.id)

    written = await notice_log.written(world.sessionmaker, notices.NoticeKind.ASSIGNED)
    assert [(n.chat_id, n.ticket_id) for n in written] == [(5_100_000_001, None)]
    body = written[0].body
    assert isinstance(body, notices.Assigned)
    card = body.card
    ticket = await world.ticket(ticket_id)
    type_label, category_label = REGULATION.labels(DRAFT.request_type, DRAFT.category)
    assert (card.number, card.subject, card.excerpt) == (number, DRAFT.subject, DRAFT.description)
    assert (card.request_type, card.category) == (type_label, category_label)
    assert card.first_reaction_due == ticket.first_reaction_due is not None
    # The merchant is told nothing of it.
    kinds = [n.kind for n in await notice_log.written(world.sessionmaker)]
    assert kinds == ["accepted", "registered", "assigned"]


async def test_ticket_assigned_to_someone_not_linked_or_removed_tells_nobody(
    builtin: World,
) -> None:
    worker = builtin.worker()
    await _link_staff(builtin, "removed.specialist", 5_100_000_002, StaffRole.SPECIALIST)
    async with builtin.sessionmaker() as session:
        assert await staff.remove(session, "removed.specialist", now=datetime.now(UTC))
    _, first = await builtin.file()
    _, second = await builtin.file()
    await worker.run_once()

    await builtin.specialist.set_owner(first, "removed.specialist")
    await builtin.specialist.set_owner(second, "stranger")
    await worker.run_once()

    assert await notice_log.written(builtin.sessionmaker, notices.NoticeKind.ASSIGNED) == []
    owners = await notice_log.written(builtin.sessionmaker)
    assert len(owners) == 4  # accepted and registered, twice: nothing for the owners


async def test_new_ticket_is_announced_to_the_leads_only(world: World) -> None:
    await _link_staff(world, "lena.lead", 5_100_000_010, StaffRole.LEAD)
    await _link_staff(world, "oleg.lead", 5_100_000_011, StaffRole.LEAD)
    await _link_staff(world, "ivan.specialist", 5_100_000_012, StaffRole.SPECIALIST)
    async with world.sessionmaker() as session:
        assert await staff.remove(session, "oleg.lead", now=datetime.now(UTC))

    _, number = await world.file()

    written = await notice_log.written(world.sessionmaker, notices.NoticeKind.UNASSIGNED)
    assert [n.chat_id for n in written] == [5_100_000_010]
    body = written[0].body
    assert isinstance(body, notices.Unassigned)
    assert (body.card.number, body.card.subject) == (number, DRAFT.subject)


async def test_event_is_applied_once_when_pulled_twice_and_pushed_once(world: World) -> None:
    notices = world.notices()
    worker = world.worker()
    _, number = await world.file()
    await worker.run_once()
    await world.specialist.reply(number, "Проверяем.")
    transaction = await world.last_event(number, ReplyEvent)

    await worker.run_once()
    await worker.run_once()
    pushed = await worker.tickets.sync_ticket(number, upto=transaction.id)
    async with world.sessionmaker() as session:
        again = await apply_event(session, SyncEvent(world.queue.name, transaction))

    assert [r.body for r in (await notices.replies())] == ["Проверяем."]
    assert (pushed.applied, pushed.already_applied, again) == (0, 1, Outcome.DUPLICATE)
    async with world.sessionmaker() as session:
        keys = list(await session.scalars(select(AppliedQueueEvent.key)))
    assert f"{world.queue.name}:{number}:{transaction.id}" in keys
    assert len(keys) == len(set(keys))


async def test_frontdesks_own_messages_are_not_forwarded(world: World) -> None:
    notices = world.notices()
    worker = world.worker()
    _, number = await world.file()
    await worker.run_once()

    # The merchant's follow-up, posted by frontdesk: it is in the queue, and not an event.
    await world.queue.add_comment(
        number, "Добавляю скриншот", [Attachment("a.png", "image/png", PNG)]
    )
    await world.specialist.reply(number, "Спасибо, посмотрим.")
    await worker.run_once()

    assert [r.body for r in (await notices.replies())] == ["Спасибо, посмотрим."]


async def test_tickets_frontdesk_did_not_file_are_ignored(world: World) -> None:
    notices = world.notices()
    worker = world.worker()
    await worker.run_once()
    stranger = await world.queue.create_ticket(
        NewTicket(
            reference=f"fd-{uuid.uuid4().hex}",
            requester=f"someone-{uuid.uuid4().hex[:8]}@example.com",
            subject="Filed by e-mail",
            body="Not through frontdesk.",
            request_type="technical",
            category="other",
            telegram_user_id=1,
        )
    )
    await world.specialist.reply(stranger.id, "Answer by e-mail.")
    await world.specialist.set_status(stranger.id, TicketStatus.RESOLVED)

    await worker.run_once()
    pushed = await worker.tickets.sync_ticket(stranger.id)
    transaction = await world.last_event(stranger.id, ReplyEvent)
    async with world.sessionmaker() as session:
        outcome = await apply_event(session, SyncEvent(world.queue.name, transaction))

    assert ((await notices.replies()), (await notices.statuses())) == ([], [])
    assert not pushed.known
    assert outcome is Outcome.UNKNOWN_TICKET
    assert await world.count(AppliedQueueEvent) == 0


async def test_html_reply_keeps_its_link_all_the_way_to_what_the_merchant_reads(
    world: World,
) -> None:
    from aiogram.utils.i18n import I18n

    from bot.config import locales_dir
    from handlers import texts

    notices = world.notices()
    worker = world.worker()
    _, number = await world.file()
    await worker.run_once()

    await world.specialist.reply(
        number,
        '<p>Проверьте: <a href="https://example.com/settings/mail?tab=1&amp;x=2">'
        "настройки писем</a>.</p>",
        body_format=BodyFormat.HTML,
    )
    await worker.run_once()

    [reply] = await notices.replies()
    assert reply.body_format is BodyFormat.HTML
    i18n = I18n(path=locales_dir(), default_locale="ru", domain="messages")
    with i18n.context(), i18n.use_locale("ru"):
        [message] = texts.queue_reply(reply)
    assert (
        'Проверьте: <a href="https://example.com/settings/mail?tab=1&amp;x=2">настройки писем</a>.'
        in message
    )


async def test_ticket_merged_in_the_queue_tells_the_surviving_number_and_follows_it(
    world: World,
) -> None:
    notices = world.notices()
    worker = world.worker()
    ticket_id, number = await world.file(telegram_id=7_100_000_002)
    await worker.run_once()
    # The survivor is someone else's request (by e-mail), with its own correspondence.
    survivor = (
        await world.queue.create_ticket(
            NewTicket(
                reference=f"fd-{uuid.uuid4().hex}",
                requester=f"someone-{uuid.uuid4().hex[:8]}@example.com",
                subject="Filed by e-mail",
                body="Not through frontdesk.",
                request_type="technical",
                category="other",
                telegram_user_id=1,
            )
        )
    ).id
    await world.specialist.reply(survivor, "Ответ другому заявителю, до слияния.")
    await worker.run_once()

    await world.specialist.merge(number, survivor)
    round_ = await worker.run_once()
    assert round_.gone == 1

    [merged] = await notices.merges()
    assert (merged.ticket.queue_ticket_id, merged.into) == (number, survivor)
    assert merged.ticket.telegram_id == 7_100_000_002
    assert (await world.ticket(ticket_id)).queue_ticket_id == survivor

    # Later replies on the survivor reach the merchant; its earlier ones are not theirs.
    await world.specialist.reply(survivor, "Продолжаем в объединённом обращении.")
    await worker.run_once()
    await worker.run_once()
    assert [(r.ticket.ticket_id, r.body) for r in (await notices.replies())] == [
        (ticket_id, "Продолжаем в объединённом обращении.")
    ]


async def test_ticket_moved_to_another_queue_is_told_once(world: World) -> None:
    notices = world.notices()
    worker = world.worker()
    _, number = await world.file()
    await worker.run_once()

    await world.specialist.move(number, "General")
    first = await worker.run_once()
    second = await worker.run_once()

    [moved] = await notices.moves()
    assert moved.ticket.queue_ticket_id == number
    # RT: frontdesk's account may not see queue General (None); the builtin queue names it.
    assert moved.queue in (None, "General")
    assert (first.gone, second.gone) == (1, 0)


async def test_ticket_deleted_in_the_queue_is_told_and_turned_down(world: World) -> None:
    notices = world.notices()
    worker = world.worker()
    ticket_id, number = await world.file()
    await worker.run_once()

    await world.specialist.delete(number)
    await worker.run_once()
    await worker.run_once()

    [deleted] = await notices.deletions()
    assert deleted.ticket.queue_ticket_id == number
    assert (await notices.statuses()) == []  # told as a deletion, not as a status
    assert (await world.ticket(ticket_id)).status is TicketStatus.REJECTED


@pytest.mark.rt
async def test_rt_reply_by_someone_not_support_is_not_shown_as_supports(
    rt_server: RtServer, sqlite_url: str
) -> None:
    engine = create_engine(sqlite_url)
    queue = RequestTrackerQueue(rt_server.base_url, rt_server.queue, token=rt_server.token)
    console = RtConsole(
        rt_server.base_url, user=rt_server.admin_user, password=rt_server.admin_password
    )
    try:
        world = World("rt", create_sessionmaker(engine), queue, console)
        notices = world.notices()
        worker = world.worker()
        _, number = await world.file()
        await worker.run_once()
        requester = (await queue.get_ticket(number)).requester

        await mail_in(rt_server, number, requester, "Это пишет сам заявитель.")
        await mail_in(rt_server, number, "stranger@example.net", "Переведите деньги сюда.")
        await console.reply(number, "Ответ поддержки.")
        await worker.run_once()
        await worker.run_once()
    finally:
        await console.close()
        await queue.close()
        await engine.dispose()

    assert [(r.author, r.body) for r in (await notices.replies())] == [("root", "Ответ поддержки.")]


async def test_builtin_requesters_own_message_is_not_supports(builtin: World) -> None:
    notices = builtin.notices()
    worker = builtin.worker()
    _, number = await builtin.file()
    await worker.run_once()
    queue = builtin.queue
    assert isinstance(queue, BuiltinQueue)

    await queue.add_comment(number, "Сообщение заявителя.")
    await builtin.specialist.reply(number, "Ответ поддержки.")
    await worker.run_once()

    assert [r.body for r in (await notices.replies())] == ["Ответ поддержки."]
    assert [e.by_support for e in await queue.events(number) if isinstance(e, ReplyEvent)] == [True]


async def test_all_open_tickets_gone_at_once_is_no_mass_move(builtin: World) -> None:
    class Blind(BuiltinQueue):
        """As if frontdesk lost its rights on the queue: every ticket out of sight."""

        async def changed_since(self, since: datetime) -> list[QueueTicket]:
            return []

        async def missing(self, ticket_ids: Sequence[str]) -> set[str]:
            return set(ticket_ids)

        async def events(self, ticket_id: str) -> list[QueueEvent]:
            return [MovedEvent("moved", ticket_id, datetime.now(UTC), "", None)]

    notices = NoticeLog(builtin.sessionmaker)
    numbers = [(await builtin.file())[1] for _ in range(5)]
    worker = SyncWorker(builtin.sessionmaker, Blind(builtin.sessionmaker))
    round_ = await worker.run_once()
    assert (round_.gone, (await notices.moves())) == (0, [])
    assert len(numbers) == 5


# --- the builtin queue's events ------------------------------------------------------------------


async def test_builtin_queue_keeps_its_events_in_frontdesks_terms(builtin: World) -> None:
    queue = builtin.queue
    assert isinstance(queue, BuiltinQueue)
    console = BuiltinConsole(queue, "ivan")
    _, number = await builtin.file()
    created = await queue.get_ticket(number)
    await queue.add_comment(number, "ещё вопрос")
    await console.reply(
        number, "<b>ответ</b>", [Attachment("../a.txt", "text/plain", b"x")], BodyFormat.HTML
    )
    await console.set_status(number, TicketStatus.OPEN)
    await console.set_status(number, TicketStatus.OPEN)  # no change, no event
    await console.set_owner(number, "ivan")

    events = await queue.events(number)
    assert [type(e).__name__ for e in events] == ["ReplyEvent", "StatusEvent", "OwnerEvent"]
    reply, status, owner = events
    assert isinstance(reply, ReplyEvent) and (reply.author, reply.by_support) == ("ivan", True)
    content = await reply.content()
    assert (content.body, content.body_format) == ("<b>ответ</b>", BodyFormat.HTML)
    assert content.files == (Attachment("a.txt", "text/plain", b"x"),)  # the name made safe
    assert isinstance(status, StatusEvent)
    assert (status.old, status.new) == (TicketStatus.REGISTERED, TicketStatus.OPEN)
    assert (owner.old, owner.new) == (None, "ivan")  # type: ignore[union-attr]

    updated = await queue.get_ticket(number)
    assert (updated.status, updated.owner) == (TicketStatus.OPEN, "ivan")
    assert updated.updated_at > created.updated_at
    assert [t.id for t in await queue.changed_since(updated.updated_at)] == [number]
    assert await queue.changed_since(updated.updated_at + timedelta(microseconds=1)) == []


async def test_builtin_specialist_cannot_pose_as_frontdesk(builtin: World) -> None:
    from services.queue.base import QueueRejected

    queue = builtin.queue
    assert isinstance(queue, BuiltinQueue)
    with pytest.raises(QueueRejected):
        BuiltinConsole(queue, "frontdesk")
    _, number = await builtin.file()
    with pytest.raises(QueueRejected):
        await BuiltinConsole(queue, "ivan").set_status(number, TicketStatus.PENDING)


# --- the worker's cursor and failures ------------------------------------------------------------


async def test_history_from_before_the_sync_started_is_not_replayed(builtin: World) -> None:
    notices = NoticeLog(builtin.sessionmaker)
    _, number = await builtin.file()
    await builtin.specialist.reply(number, "Old answer, sent by e-mail long ago.")
    worker = builtin.worker(overlap=timedelta(0))

    await worker.run_once()  # the sync starts now
    await builtin.specialist.reply(number, "New answer.")
    await worker.run_once()

    assert [r.body for r in (await notices.replies())] == ["New answer."]


async def test_queue_unavailable_keeps_the_ticket_for_the_next_round(builtin: World) -> None:
    class Flaky(BuiltinQueue):
        down = False

        async def events(self, ticket_id: str) -> list[QueueEvent]:
            if self.down:
                raise QueueUnavailable("connection refused")
            return await super().events(ticket_id)

    queue = Flaky(builtin.sessionmaker)
    notices = NoticeLog(builtin.sessionmaker)
    worker = SyncWorker(builtin.sessionmaker, queue, overlap=timedelta(0))
    _, number = await builtin.file()
    await worker.run_once()
    await builtin.specialist.reply(number, "Ответ.")
    updated = (await queue.get_ticket(number)).updated_at

    queue.down = True
    held = await worker.run_once()
    assert (await notices.replies()) == [] and held.position <= updated
    queue.down = False
    await worker.run_once()
    assert [r.body for r in (await notices.replies())] == ["Ответ."]


async def test_cursor_follows_the_latest_change_seen(builtin: World) -> None:
    worker = builtin.worker()
    _, number = await builtin.file()
    first = await worker.run_once()
    await builtin.specialist.set_status(number, TicketStatus.OPEN)
    updated = (await builtin.queue.get_ticket(number)).updated_at

    second = await worker.run_once()
    async with builtin.sessionmaker() as session:
        cursor = await session.get(SyncCursor, "builtin")
    assert cursor is not None and cursor.position == second.position == max(first.position, updated)
    assert (second.changed, second.read, second.applied) == (1, 1, 1)


async def test_concurrent_push_and_pull_apply_the_event_once(builtin: World) -> None:
    notices = builtin.notices()
    worker = builtin.worker()
    _, number = await builtin.file()
    await worker.run_once()
    await builtin.specialist.reply(number, "Ответ.")
    await builtin.specialist.set_status(number, TicketStatus.RESOLVED)
    transaction = await builtin.last_event(number, StatusEvent)

    await asyncio.gather(
        worker.run_once(),
        worker.tickets.sync_ticket(number, upto=transaction.id),
        worker.tickets.sync_ticket(number, upto=transaction.id),
    )
    assert [r.body for r in (await notices.replies())] == ["Ответ."]
    assert [s.new for s in (await notices.statuses())] == [TicketStatus.RESOLVED]


async def test_events_of_a_ticket_are_applied_in_order(builtin: World) -> None:
    notices = builtin.notices()
    worker = builtin.worker()
    ticket_id, number = await builtin.file()
    await worker.run_once()
    await builtin.specialist.set_status(number, TicketStatus.OPEN)
    await builtin.specialist.set_status(number, TicketStatus.RESOLVED)
    resolved = await builtin.last_event(number, StatusEvent)
    await builtin.specialist.set_status(number, TicketStatus.OPEN)  # reopened

    # A push for the middle transaction applies what came before it, not what came after.
    result = await worker.tickets.sync_ticket(number, upto=resolved.id)
    assert result.applied == 2
    assert (await builtin.ticket(ticket_id)).status is TicketStatus.RESOLVED
    await worker.run_once()
    assert [s.new for s in (await notices.statuses())] == [
        TicketStatus.OPEN,
        TicketStatus.RESOLVED,
        TicketStatus.OPEN,
    ]
    assert (await builtin.ticket(ticket_id)).status is TicketStatus.OPEN


# --- POST /queue/events ---------------------------------------------------------------------------


@dataclass
class Endpoint:
    client: TestClient
    endpoint: QueueEventsEndpoint
    notices: NoticeLog

    async def post(
        self,
        payload: dict[str, Any] | bytes,
        *,
        secret: str = SECRET,
        timestamp: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> tuple[int, dict[str, Any]]:
        body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        signed = sign(secret, int(time.time()) if timestamp is None else timestamp, body)
        response = await self.client.post(
            PATH,
            data=body,
            headers=signed if headers is None else headers,
        )
        return response.status, await response.json()

    async def settled(self) -> None:
        """Waits until the pushed events have been applied in the background."""
        await self.endpoint.settle()


@asynccontextmanager
async def _serving(
    world: World,
    secret: str | None,
    sync: TicketSync | None = None,
) -> AsyncIterator[Endpoint]:
    """/queue/events on a test server, over the world's queue."""
    notices = world.notices()
    sync = sync or TicketSync(world.sessionmaker, world.queue)
    endpoint = QueueEventsEndpoint(sync, secret, look_delays=(0.0, 0.05, 0.1))
    app = web.Application()
    endpoint.register(app)
    async with TestClient(TestServer(app)) as client:
        yield Endpoint(client, endpoint, notices)


@pytest.fixture
async def push(builtin: World) -> AsyncIterator[Endpoint]:
    async with _serving(builtin, SECRET) as endpoint:
        yield endpoint


@pytest.fixture
async def push_disabled(builtin: World) -> AsyncIterator[Endpoint]:
    async with _serving(builtin, None) as endpoint:
        yield endpoint


async def _reply_on_a_filed_ticket(world: World) -> tuple[str, QueueEvent]:
    _, number = await world.file()
    await world.specialist.reply(number, "Готово.", (Attachment("a.png", "image/png", PNG),))
    return number, await world.last_event(number, ReplyEvent)


async def test_signed_push_applies_the_event_then_the_poll_does_not_repeat_it(
    builtin: World, push: Endpoint
) -> None:
    number, transaction = await _reply_on_a_filed_ticket(builtin)

    status, answer = await push.post({"ticket_id": number, "transaction_id": transaction.id})
    assert (status, answer["status"]) == (202, "accepted")
    await push.settled()
    [reply] = await push.notices.replies()
    assert (reply.body, reply.attachments[0].content) == ("Готово.", PNG)

    await builtin.worker().run_once()
    assert len(await push.notices.replies()) == 1


async def test_numbers_may_come_as_json_numbers(builtin: World, push: Endpoint) -> None:
    number, transaction = await _reply_on_a_filed_ticket(builtin)
    status, _ = await push.post({"ticket_id": int(number), "transaction_id": int(transaction.id)})
    await push.settled()
    assert status == 202 and len(await push.notices.replies()) == 1


async def test_forged_push_is_refused_and_changes_nothing(builtin: World, push: Endpoint) -> None:
    number, transaction = await _reply_on_a_filed_ticket(builtin)
    payload = {"ticket_id": number, "transaction_id": transaction.id}

    forged = await push.post(payload, secret="not-the-secret-at-all")
    unsigned = await push.post(payload, headers={})
    await push.settled()

    assert forged == (401, {"error": "signature does not match"})
    assert unsigned == (401, {"error": "missing signature or timestamp"})
    assert (await push.notices.replies()) == []
    assert await builtin.count(QueueEventDelivery) == 0
    assert await builtin.count(AppliedQueueEvent) == 0


async def test_replayed_push_is_refused_and_changes_nothing(builtin: World, push: Endpoint) -> None:
    number, transaction = await _reply_on_a_filed_ticket(builtin)
    body = json.dumps({"ticket_id": number, "transaction_id": transaction.id}).encode()
    headers = sign(SECRET, int(time.time()), body)
    first = await push.client.post(PATH, data=body, headers=headers)
    await push.settled()
    assert first.status == 202
    async with builtin.sessionmaker() as session:  # forget it was applied: only the replay guard
        await session.execute(AppliedQueueEvent.__table__.delete())
        await session.commit()

    replayed = await push.client.post(PATH, data=body, headers=headers)
    await push.settled()

    assert (replayed.status, await replayed.json()) == (401, {"error": "replayed call"})
    assert len(await push.notices.replies()) == 1
    assert await builtin.count(AppliedQueueEvent) == 0


async def test_stale_push_is_refused(builtin: World, push: Endpoint) -> None:
    number, transaction = await _reply_on_a_filed_ticket(builtin)
    payload = {"ticket_id": number, "transaction_id": transaction.id}
    old = await push.post(payload, timestamp=int(time.time()) - 301)
    future = await push.post(payload, timestamp=int(time.time()) + 301)
    await push.settled()
    assert old == future == (401, {"error": "timestamp outside the accepted window"})
    assert (await push.notices.replies()) == []


async def test_expired_signatures_are_forgotten(builtin: World, push: Endpoint) -> None:
    await push.post({"ticket_id": "1", "transaction_id": "1"})
    async with builtin.sessionmaker() as session:
        await session.execute(
            update(QueueEventDelivery).values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()
    await push.post({"ticket_id": "1", "transaction_id": "2"})
    await push.settled()
    assert await builtin.count(QueueEventDelivery) == 1


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (b"not json", "the body must be JSON"),
        (b"[1, 2]", "the body must be a JSON object"),
        (b'{"ticket_id": "1"}', "transaction_id must be a number"),
        (b'{"ticket_id": "../1", "transaction_id": "2"}', "ticket_id must be a number"),
        (b'{"ticket_id": true, "transaction_id": "2"}', "ticket_id must be a number"),
    ],
)
async def test_signed_garbage_is_a_bad_request(push: Endpoint, body: bytes, error: str) -> None:
    assert await push.post(body) == (400, {"error": error})


async def test_push_for_an_unknown_ticket_or_transaction_applies_nothing(
    builtin: World, push: Endpoint
) -> None:
    number, _ = await _reply_on_a_filed_ticket(builtin)
    assert (await push.post({"ticket_id": "987654", "transaction_id": "1"}))[0] == 202
    assert (await push.post({"ticket_id": number, "transaction_id": "987654"}))[0] == 202
    await push.settled()
    assert (await push.notices.replies()) == []


async def test_push_without_a_secret_is_switched_off(push_disabled: Endpoint) -> None:
    status, answer = await push_disabled.post({"ticket_id": "1", "transaction_id": "1"})
    assert status == 404 and "QUEUE_EVENTS_SECRET" in answer["error"]


async def test_oversized_push_is_refused(push: Endpoint) -> None:
    status, _ = await push.post(b"{" + b" " * 20_000 + b"}")
    assert status == 413


# --- Request Tracker: the push from a real RT transaction -----------------------------------------


@pytest.mark.rt
async def test_rt_reply_pushed_and_pulled_reaches_the_merchant_once(
    rt_server: RtServer, sqlite_url: str
) -> None:
    engine = create_engine(sqlite_url)
    sessionmaker = create_sessionmaker(engine)
    queue = RequestTrackerQueue(rt_server.base_url, rt_server.queue, token=rt_server.token)
    console = RtConsole(
        rt_server.base_url, user=rt_server.admin_user, password=rt_server.admin_password
    )
    try:
        if True:
            world = World("rt", sessionmaker, queue, console)
            notices = world.notices()
            worker = world.worker()
            await worker.run_once()
            number, transaction = await _reply_on_a_filed_ticket(world)
            await console.note(number, "internal: gateway logs checked")

            async with _serving(world, SECRET, worker.tickets) as pushed:
                status, _ = await pushed.post(
                    {"ticket_id": number, "transaction_id": transaction.id}
                )
                await pushed.settled()
            await worker.run_once()
    finally:
        await console.close()
        await queue.close()
        await engine.dispose()

    assert status == 202
    [reply] = await notices.replies()
    assert (reply.body, reply.author) == ("Готово.", rt_server.admin_user)
    assert [(a.filename, a.content_type, a.content) for a in reply.attachments] == [
        ("a.png", "image/png", PNG)
    ]
    # RT opens a new ticket on the specialist's reply: announced by the poll, after the reply.
    assert [(s.old, s.new) for s in (await notices.statuses())] == [
        (TicketStatus.REGISTERED, TicketStatus.OPEN)
    ]


# --- the RT Scrip (scripts/rt-frontdesk-scrip.pl), its action run by Perl ----------------------

SCRIP = Path(__file__).resolve().parents[2] / "scripts" / "rt-frontdesk-scrip.pl"

# Just enough of RT around the Scrip's action: the objects and calls it uses.
SCRIP_HARNESS = r"""
use strict; use warnings; use JSON::PP ();
package StubLogger; sub warning { print STDERR "warning: $_[1]\n" }
package StubConfig; sub Get { my $value = $ENV{"RT_CONFIG_$_[1]"}; return $value }
package RT; sub Config { 'StubConfig' } sub Logger { 'StubLogger' }
package StubUser; sub Name { $_[0]{name} }
package StubTransaction;
sub id { $_[0]{id} } sub Type { $_[0]{type} } sub Field { $_[0]{field} }
sub CreatorObj { bless { name => $_[0]{creator} }, 'StubUser' }
package StubTicket; sub id { $_[0]{id} }
package StubAction; sub TicketObj { $_[0]{ticket} } sub TransactionObj { $_[0]{transaction} }
package main;
my $self = bless {
    ticket      => bless( { id => $ENV{TICKET} }, 'StubTicket' ),
    transaction => bless( JSON::PP::decode_json( $ENV{TRANSACTION} ), 'StubTransaction' ),
}, 'StubAction';
my $code = do { local $/; open my $fh, '<', $ARGV[0] or die $!; <$fh> };
my $result = eval $code;
die $@ if $@;
print "result=$result\n";
"""


def _scrip_action() -> str:
    text = SCRIP.read_text()
    return text.split("<<'FRONTDESK_ACTION';\n", 1)[1].split("\nFRONTDESK_ACTION\n", 1)[0]


async def _run_scrip(
    tmp_path: Path, ticket: str, transaction: dict[str, str], config: dict[str, str]
) -> tuple[int, str, str]:
    """The Scrip's action, as RT runs it when `transaction` is recorded on `ticket`."""
    if shutil.which("perl") is None:
        pytest.skip("perl is not installed")
    (tmp_path / "action.pl").write_text(_scrip_action())
    (tmp_path / "harness.pl").write_text(SCRIP_HARNESS)
    process = await asyncio.create_subprocess_exec(
        "perl",
        str(tmp_path / "harness.pl"),
        str(tmp_path / "action.pl"),
        env={
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "TICKET": ticket,
            "TRANSACTION": json.dumps(transaction),
            **{f"RT_CONFIG_{name}": value for name, value in config.items()},
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 60)
    return process.returncode or 0, stdout.decode(), stderr.decode()


def test_scrip_file_compiles() -> None:
    if shutil.which("perl") is None:
        pytest.skip("perl is not installed")
    checked = subprocess.run(["perl", "-c", str(SCRIP)], capture_output=True, text=True)
    assert checked.returncode == 0, checked.stderr


async def test_rt_scrip_signs_a_call_frontdesk_accepts(
    builtin: World, push: Endpoint, tmp_path: Path
) -> None:
    number, reply = await _reply_on_a_filed_ticket(builtin)
    config = {
        "FrontdeskEventsURL": str(push.client.make_url(PATH)),
        "FrontdeskEventsSecret": SECRET,
    }

    ran = await _run_scrip(
        tmp_path, number, {"id": reply.id, "type": "Correspond", "creator": "anna"}, config
    )
    await push.settled()

    assert ran == (0, "result=1\n", "")
    assert [r.body for r in (await push.notices.replies())] == ["Готово."]
    assert await builtin.count(QueueEventDelivery) == 1


@pytest.mark.parametrize(
    "transaction",
    [
        {"id": "10", "type": "Correspond", "creator": "frontdesk"},  # the merchant's, via frontdesk
        {"id": "11", "type": "Create", "creator": "frontdesk"},
        {"id": "12", "type": "SetWatcher", "field": "Owner", "creator": "root"},
        {"id": "13", "type": "Comment", "creator": "root"},
    ],
)
async def test_rt_scrip_does_not_call_for_what_frontdesk_does_not_forward(
    builtin: World, push: Endpoint, tmp_path: Path, transaction: dict[str, str]
) -> None:
    config = {
        "FrontdeskEventsURL": str(push.client.make_url(PATH)),
        "FrontdeskEventsSecret": SECRET,
    }
    assert await _run_scrip(tmp_path, "1", transaction, config) == (0, "result=1\n", "")
    assert await builtin.count(QueueEventDelivery) == 0


async def test_rt_scrip_never_fails_the_specialists_action(
    builtin: World, push: Endpoint, tmp_path: Path
) -> None:
    status = {"id": "14", "type": "Status", "field": "Status", "creator": "root"}
    unconfigured = await _run_scrip(tmp_path, "1", status, {})
    assert unconfigured[:2] == (0, "result=1\n") and "FrontdeskEventsURL" in unconfigured[2]

    config = {
        "FrontdeskEventsURL": str(push.client.make_url(PATH)),
        "FrontdeskEventsSecret": "not-the-shared-secret",
    }
    refused = await _run_scrip(tmp_path, "1", status, config)
    assert refused[:2] == (0, "result=1\n") and "answered 401" in refused[2]

    config["FrontdeskEventsURL"] = "http://127.0.0.1:9/queue/events"  # nobody listens
    unreachable = await _run_scrip(tmp_path, "1", status, config)
    assert unreachable[:2] == (0, "result=1\n") and "answered 599" in unreachable[2]
    assert await builtin.count(QueueEventDelivery) == 0
