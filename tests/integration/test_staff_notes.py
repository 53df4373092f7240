"""A merchant out of reach (issue 9, point 7): when Telegram refuses their chat for good, each of
their tickets still open (and the ticket of the refused notice) gets one internal note in the
queue saying to answer by e-mail — never correspondence, never echoed back by the sync, exactly
once per unreachable period whatever fails in between. On both databases, builtin queue (RT:
test_staff_notes_rt.py)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import notices, staff_notes
from services.db.models import StaffNoteOutbox, Ticket, TicketStatus
from services.queue.base import QueueRejected, QueueUnavailable, ReplyEvent
from services.queue.builtin import BuiltinQueue
from services.queue.console import BuiltinConsole
from tests.helpers.filing import Clock, filing_worker, register_merchant, submit_request
from tests.helpers.staff_notes import builtin_notes, set_email, staff_note_worker

EMAIL = "anna@shop.example"
TELEGRAM_ID = 7_000_000_123  # tests/helpers/filing.register_merchant


class FlakyNotes(BuiltinQueue):
    """The builtin queue whose note answers may be lost (it takes the note, then the answer never
    comes), or which is down, or refuses frontdesk for good."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.lose_answer = False
        self.down = False
        self.refusing = False
        self.posts = 0

    async def add_internal_note(self, ticket_id: str, body: str, *, reference: str) -> None:
        if self.refusing:
            raise QueueRejected("RT answered POST comment with 403")
        if self.down:
            raise QueueUnavailable("connection refused")
        self.posts += 1
        await super().add_internal_note(ticket_id, body, reference=reference)
        if self.lose_answer:
            raise QueueUnavailable("RT did not answer POST comment within 10 s")


@pytest.fixture
def queue(sessionmaker: async_sessionmaker[AsyncSession]) -> FlakyNotes:
    return FlakyNotes(sessionmaker)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC) + timedelta(seconds=5))


async def _registered(
    sessionmaker: async_sessionmaker[AsyncSession], queue: BuiltinQueue, clock: Clock, ref: str
) -> tuple[int, str]:
    filed = await submit_request(sessionmaker, ref)
    assert await filing_worker(sessionmaker, queue, clock).run_once() == 1
    async with sessionmaker() as session:
        number = (await session.get_one(Ticket, filed.id)).queue_ticket_id
    assert number is not None
    return filed.id, number


async def _blocked(
    sessionmaker: async_sessionmaker[AsyncSession],
    reason: str = "Forbidden: bot was blocked by the user",
    ticket_id: int | None = None,
) -> None:
    async with sessionmaker() as session:
        await notices.mark_unreachable(session, TELEGRAM_ID, reason, ticket_id=ticket_id)


async def _rows(sessionmaker: async_sessionmaker[AsyncSession]) -> list[StaffNoteOutbox]:
    async with sessionmaker() as session:
        return list(await session.scalars(select(StaffNoteOutbox).order_by(StaffNoteOutbox.id)))


async def test_a_merchant_who_blocked_the_bot_gets_one_internal_note_saying_answer_by_email(
    sessionmaker: async_sessionmaker[AsyncSession], queue: FlakyNotes, clock: Clock
) -> None:
    _, number = await _registered(sessionmaker, queue, clock, "notes-1")
    await set_email(sessionmaker, TELEGRAM_ID, EMAIL)
    # Refused again and again (each held notice, a second process): one period, one note.
    await _blocked(sessionmaker)
    await _blocked(sessionmaker, "Forbidden: bot was blocked by the user")
    async with sessionmaker() as session:
        await notices.mark_unreachable(session, TELEGRAM_ID, "the person blocked the bot")
    assert len(await _rows(sessionmaker)) == 1

    worker = staff_note_worker(sessionmaker, queue, clock)
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0
    [(author, body)] = await builtin_notes(sessionmaker, number)
    assert author == "frontdesk"
    assert "недоступен в Telegram" in body and "заблокировал бота" in body
    assert EMAIL in body
    [row] = await _rows(sessionmaker)
    assert row.done_at is not None

    # Internal: not the merchant's conversation, not correspondence for the console, and the
    # sync never takes frontdesk's own note for support's reply.
    assert all("недоступен" not in entry.body for entry in await queue.conversation(number))
    messages = await BuiltinConsole(queue, "root").list_messages(number)
    assert all("недоступен" not in message.body for message in messages)
    assert not [e for e in await queue.events(number) if isinstance(e, ReplyEvent)]


async def test_coming_back_is_noted_and_blocking_again_later_gives_a_new_note(
    sessionmaker: async_sessionmaker[AsyncSession], queue: FlakyNotes, clock: Clock
) -> None:
    _, number = await _registered(sessionmaker, queue, clock, "notes-2")
    await _blocked(sessionmaker, "Bad Request: chat not found")
    worker = staff_note_worker(sessionmaker, queue, clock)
    assert await worker.run_once() == 1
    [(_, body)] = await builtin_notes(sessionmaker, number)
    assert "чат с клиентом недоступен" in body
    assert "почта клиента не указана" in body  # no e-mail registered

    async with sessionmaker() as session:
        assert await notices.mark_reachable(session, TELEGRAM_ID)
        assert not await notices.mark_reachable(session, TELEGRAM_ID)
    # The specialists learn the merchant is back, once.
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0
    [_, (_, back)] = await builtin_notes(sessionmaker, number)
    assert "снова доступен в Telegram" in back

    await asyncio.sleep(0.01)  # a later period, to the microsecond at least
    await _blocked(sessionmaker)
    assert await worker.run_once() == 1
    assert len(await builtin_notes(sessionmaker, number)) == 3


async def test_a_merchant_never_out_of_reach_gives_no_reachable_again_note(
    sessionmaker: async_sessionmaker[AsyncSession], queue: FlakyNotes, clock: Clock
) -> None:
    await _registered(sessionmaker, queue, clock, "notes-quiet")
    # Unreachable but with no ticket to tell (a group chat, say): nothing to take back either.
    async with sessionmaker() as session:
        await notices.mark_unreachable(session, 42, "Forbidden: bot was kicked")
        assert await notices.mark_reachable(session, 42)
        assert not await notices.mark_reachable(session, TELEGRAM_ID)
    assert await _rows(sessionmaker) == []


async def test_open_tickets_and_the_refused_notices_ticket_get_the_note_other_closed_ones_not(
    sessionmaker: async_sessionmaker[AsyncSession], queue: FlakyNotes, clock: Clock
) -> None:
    _, open_number = await _registered(sessionmaker, queue, clock, "notes-open")
    closed_id, closed_number = await _registered(sessionmaker, queue, clock, "notes-closed")
    refused_id, refused_number = await _registered(sessionmaker, queue, clock, "notes-refused")
    async with sessionmaker() as session:
        for ticket_id in (closed_id, refused_id):
            (await session.get_one(Ticket, ticket_id)).status = TicketStatus.RESOLVED
        await session.commit()
    # A ticket still waiting to be registered gets its note once it is in the queue.
    pending = await submit_request(sessionmaker, "notes-pending")

    await _blocked(sessionmaker, ticket_id=refused_id)
    worker = staff_note_worker(sessionmaker, queue, clock)
    assert await worker.run_once() == 2
    assert len(await builtin_notes(sessionmaker, open_number)) == 1
    assert len(await builtin_notes(sessionmaker, refused_number)) == 1
    assert await builtin_notes(sessionmaker, closed_number) == []

    assert await filing_worker(sessionmaker, queue, clock).run_once() == 1
    assert await worker.run_once() == 1
    async with sessionmaker() as session:
        pending_number = (await session.get_one(Ticket, pending.id)).queue_ticket_id
    assert pending_number is not None
    assert len(await builtin_notes(sessionmaker, pending_number)) == 1


async def test_the_note_is_posted_exactly_once_when_the_queues_answer_is_lost(
    sessionmaker: async_sessionmaker[AsyncSession], queue: FlakyNotes, clock: Clock
) -> None:
    _, number = await _registered(sessionmaker, queue, clock, "notes-lost")
    await _blocked(sessionmaker)
    worker = staff_note_worker(sessionmaker, queue, clock)
    queue.lose_answer = True
    assert await worker.run_once() == 1
    [row] = await _rows(sessionmaker)
    assert (row.done_at, row.attempts) == (None, 1)
    assert row.last_error is not None and "QueueUnavailable" in row.last_error

    queue.lose_answer = False
    assert await worker.run_once() == 0  # backoff: not due yet
    clock.now += timedelta(minutes=5)
    assert await worker.run_once() == 1
    assert queue.posts == 2
    assert len(await builtin_notes(sessionmaker, number)) == 1  # the retry found it there
    [row] = await _rows(sessionmaker)
    assert row.done_at is not None


async def test_two_workers_post_the_note_once(
    sessionmaker: async_sessionmaker[AsyncSession], queue: FlakyNotes, clock: Clock
) -> None:
    _, number = await _registered(sessionmaker, queue, clock, "notes-two")
    await _blocked(sessionmaker)
    first = staff_note_worker(sessionmaker, queue, clock)
    second = staff_note_worker(sessionmaker, queue, clock)
    claimed = await asyncio.gather(first.run_once(), second.run_once())
    assert sorted(claimed) == [0, 1]
    assert len(await builtin_notes(sessionmaker, number)) == 1


async def test_a_queue_refusing_for_good_stops_the_note_and_the_merchant_is_not_told(
    sessionmaker: async_sessionmaker[AsyncSession], queue: FlakyNotes, clock: Clock
) -> None:
    _, number = await _registered(sessionmaker, queue, clock, "notes-refused-q")
    await _blocked(sessionmaker)
    queue.refusing = True
    worker = staff_note_worker(sessionmaker, queue, clock)
    assert await worker.run_once() == 1
    [row] = await _rows(sessionmaker)
    assert row.refused_at is not None
    clock.now += timedelta(hours=1)
    assert await worker.run_once() == 0
    assert await builtin_notes(sessionmaker, number) == []

    # The operator fixed the queue's rights and ran `frontdesk outbox retry`: posted once.
    queue.refusing = False
    async with sessionmaker() as session:
        assert await staff_notes.retry_refused(session) == 1
        assert await staff_notes.retry_refused(session) == 0
    assert await worker.run_once() == 1
    assert len(await builtin_notes(sessionmaker, number)) == 1


async def test_a_chat_that_is_no_merchant_owes_no_note(
    sessionmaker: async_sessionmaker[AsyncSession], queue: FlakyNotes
) -> None:
    async with sessionmaker() as session:
        await register_merchant(session)
        await notices.mark_unreachable(session, 42, "Forbidden: bot was kicked")
    assert await _rows(sessionmaker) == []
