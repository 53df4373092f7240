"""Accepting and filing a request: saved with its filing order in one transaction, registered
in the queue by the worker, never lost and never twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import tickets
from services.db.models import BuiltinQueueTicket, FilingOutbox, Ticket, TicketStatus
from services.filing import retry_refused
from services.notices import Registered
from services.outbox import RetryPolicy
from services.queue.base import NewTicket, QueueRejected, QueueTicket, QueueUnavailable
from services.queue.builtin import BuiltinQueue
from services.queue.health import QueueHealth, QueueState
from services.tickets import Draft, InvalidRequest
from tests.helpers.filing import DRAFT, Clock, filing_worker, submit_request
from tests.helpers.notices import bodies, written


class FlakyQueue(BuiltinQueue):
    """The builtin queue behind a switch: while `down`, every call fails like a dead server."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.down = False
        # Like a revoked token: every call is refused for good.
        self.refusing = False
        self.calls = 0
        self.creates = 0

    def _check(self) -> None:
        self.calls += 1
        if self.refusing:
            raise QueueRejected("RT answered GET tickets with 401: credentials refused")
        if self.down:
            raise QueueUnavailable("connection refused")

    async def create_ticket(self, ticket: NewTicket) -> QueueTicket:
        self._check()
        self.creates += 1
        return await super().create_ticket(ticket)

    async def find_by_reference(self, reference: str) -> QueueTicket | None:
        self._check()
        return await super().find_by_reference(reference)


async def _count(sessionmaker: async_sessionmaker[AsyncSession], model: type) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


async def _registered(sessionmaker: async_sessionmaker[AsyncSession]) -> list[Registered]:
    return [
        body for body in await bodies(sessionmaker, "registered") if isinstance(body, Registered)
    ]


async def test_accepted_ticket_is_registered_with_its_deadline(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    queue = BuiltinQueue(sessionmaker)
    clock = Clock(datetime.now(UTC) + timedelta(seconds=5))
    accepted = await submit_request(sessionmaker, tickets.new_reference())
    assert accepted.status is TicketStatus.PENDING and not accepted.registered
    assert await _count(sessionmaker, FilingOutbox) == 1

    assert await filing_worker(sessionmaker, queue, clock).run_once() == 1

    [notice] = await _registered(sessionmaker)
    queued = await queue.get_ticket(notice.number)
    assert queued.subject == DRAFT.subject
    # Technical requests: first reaction within 24 hours, round the clock, from registration.
    assert notice.first_reaction_due == clock.now + timedelta(hours=24)
    assert await _count(sessionmaker, FilingOutbox) == 0
    async with sessionmaker() as session:
        ticket = await session.get(Ticket, accepted.id)
        assert ticket is not None and ticket.status is TicketStatus.REGISTERED
        assert ticket.queue_ticket_id == notice.number
        assert ticket.first_reaction_due == notice.first_reaction_due
        # The queue shows what the merchant was told: the due date, a priority, the labels.
        row = await session.get(BuiltinQueueTicket, int(notice.number))
        assert row is not None and row.due_at == notice.first_reaction_due
        assert (row.priority, row.requester_name) == ("normal", "Анна Петрова")
        assert (row.request_type_label, row.category_label) == (
            "Технический вопрос",
            "Ошибка в работе платформы",
        )
    assert queued.due == notice.first_reaction_due


async def test_a_ticket_an_earlier_attempt_filed_is_told_with_the_due_date_the_queue_shows(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """A worker filed the ticket (with its due date) and died before recording it: the next one
    finds it, and the merchant is told the due date the queue shows, not a later one."""
    queue = BuiltinQueue(sessionmaker)
    clock = Clock(datetime.now(UTC) + timedelta(seconds=5))
    accepted = await submit_request(sessionmaker, tickets.new_reference())
    earlier_due = clock.now + timedelta(hours=24)
    async with sessionmaker() as session:
        ticket = await session.get(Ticket, accepted.id)
        assert ticket is not None
        await queue.create_ticket(
            NewTicket(
                ticket.reference,
                "x@example.com",
                ticket.subject,
                ticket.body,
                ticket.request_type,
                ticket.category,
                7_000_000_123,
                first_reaction_due=earlier_due,
            )
        )
    clock.now += timedelta(minutes=7)
    assert await filing_worker(sessionmaker, queue, clock).run_once() == 1
    [notice] = await _registered(sessionmaker)
    assert notice.first_reaction_due == earlier_due
    assert (await queue.get_ticket(notice.number)).due == earlier_due


async def test_pressing_send_twice_files_one_ticket(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    reference = tickets.new_reference()
    first = await submit_request(sessionmaker, reference)
    second = await submit_request(sessionmaker, reference)
    assert first.id == second.id
    await filing_worker(sessionmaker, BuiltinQueue(sessionmaker)).run_once()
    assert await _count(sessionmaker, Ticket) == 1
    assert await _count(sessionmaker, BuiltinQueueTicket) == 1


async def test_concurrent_sends_of_one_draft_file_one_ticket(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    reference = tickets.new_reference()
    results = await asyncio.gather(*(submit_request(sessionmaker, reference) for _ in range(4)))
    assert len({result.id for result in results}) == 1
    assert await _count(sessionmaker, Ticket) == 1
    assert await _count(sessionmaker, FilingOutbox) == 1


async def test_queue_down_keeps_the_ticket_tells_the_merchant_once_and_files_it_later(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    queue = FlakyQueue(sessionmaker)
    clock = Clock(datetime.now(UTC) + timedelta(seconds=5))  # due at once, whatever the hour
    worker = filing_worker(sessionmaker, queue, clock)
    await submit_request(sessionmaker, tickets.new_reference())

    queue.down = True
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0  # backing off: not due yet
    clock.now += timedelta(minutes=5)
    assert await worker.run_once() == 1  # failed again
    assert len(await written(sessionmaker, "delayed")) == 1  # told once, not on every retry
    assert await _registered(sessionmaker) == []

    queue.down = False
    clock.now += timedelta(minutes=5)
    assert await worker.run_once() == 1
    [notice] = await _registered(sessionmaker)
    # The SLA clock starts at registration, not at the press of "Send".
    assert notice.registered_at == clock.now
    assert queue.creates == 1
    assert await _count(sessionmaker, BuiltinQueueTicket) == 1
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(FilingOutbox)) == 0


async def test_queue_refusing_for_good_is_not_retried_merchant_told_once_operator_re_drives_it(
    sessionmaker: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    queue, health = FlakyQueue(sessionmaker), QueueHealth()
    clock = Clock(datetime.now(UTC) + timedelta(seconds=5))
    worker = filing_worker(sessionmaker, queue, clock, health=health)
    accepted = await submit_request(sessionmaker, tickets.new_reference())

    queue.refusing = True
    assert await worker.run_once() == 1
    assert queue.calls == 1
    assert health.status().state is QueueState.REFUSING  # /healthz: degraded
    # An error an operator alerts on, naming the ticket and the way out.
    [alert] = [r for r in caplog.records if r.levelname == "ERROR"]
    assert "refused" in alert.getMessage() and "frontdesk outbox retry" in alert.getMessage()
    for _ in range(3):  # no retry storm: nothing is due until an operator acts
        clock.now += timedelta(hours=1)
        assert await worker.run_once() == 0
    assert queue.calls == 1
    [told] = await written(sessionmaker, "refused")
    assert told.chat_id == 7_000_000_123 and told.ticket_id == accepted.id
    assert await written(sessionmaker, "delayed") == []  # the truth, not "not answering"

    # Re-driven while still refused: refused again, the merchant is not told twice.
    async with sessionmaker() as session:
        assert await retry_refused(session) == 1
    assert await worker.run_once() == 1
    assert len(await written(sessionmaker, "refused")) == 1

    queue.refusing = False  # the operator fixed the token
    async with sessionmaker() as session:
        assert await retry_refused(session, ticket_id=accepted.id + 1) == 0  # another ticket
        assert await retry_refused(session, ticket_id=accepted.id) == 1
    assert await worker.run_once() == 1
    assert queue.creates == 1
    assert health.status().state is QueueState.OK
    [registered] = await _registered(sessionmaker)
    assert await _count(sessionmaker, BuiltinQueueTicket) == 1
    assert await _count(sessionmaker, FilingOutbox) == 0
    assert [n.kind for n in await written(sessionmaker)] == ["accepted", "refused", "registered"]
    assert registered.subject == DRAFT.subject


async def test_worker_killed_after_the_queue_answered_does_not_file_twice(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The queue created the ticket but the worker died before saving the number: the next
    worker finds the ticket by its reference once the dead worker's lease lapses."""
    queue = FlakyQueue(sessionmaker)
    clock = Clock(datetime.now(UTC) + timedelta(seconds=5))  # due at once, whatever the hour
    accepted = await submit_request(sessionmaker, tickets.new_reference())
    dead = filing_worker(sessionmaker, queue, clock)
    [claimed] = await dead._claim()
    async with sessionmaker() as session:  # what the dead worker got done before it died
        ticket = await session.get(Ticket, accepted.id)
        assert ticket is not None
        await queue.create_ticket(
            NewTicket(
                ticket.reference,
                "x@example.com",
                ticket.subject,
                ticket.body,
                ticket.request_type,
                ticket.category,
                7_000_000_123,
            )
        )
    survivor = filing_worker(sessionmaker, queue, clock)
    assert await survivor.run_once() == 0  # still leased to the dead worker
    clock.now += timedelta(minutes=3)
    assert await survivor.run_once() == 1
    assert queue.creates == 1
    assert await _count(sessionmaker, BuiltinQueueTicket) == 1
    assert len(await _registered(sessionmaker)) == 1 and claimed


async def test_two_workers_share_the_outbox_without_filing_twice(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    queue = FlakyQueue(sessionmaker)
    for _ in range(12):
        await submit_request(sessionmaker, tickets.new_reference())
    workers = [filing_worker(sessionmaker, queue) for _ in range(3)]
    while await _count(sessionmaker, FilingOutbox):
        await asyncio.gather(*(worker.run_once() for worker in workers))
    assert queue.creates == 12
    registered = await _registered(sessionmaker)
    assert len(registered) == 12
    assert len({notice.number for notice in registered}) == 12
    # Each merchant's "accepted" was written with the ticket, before its number.
    [accepted, *_] = await written(sessionmaker)
    assert accepted.kind == "accepted"


def test_backoff_grows_exponentially_with_jitter_and_is_capped() -> None:
    retry = RetryPolicy(base=timedelta(seconds=2), cap=timedelta(seconds=60))
    assert retry.delay(1, rng=lambda: 1.0) == timedelta(seconds=2)
    assert retry.delay(4, rng=lambda: 1.0) == timedelta(seconds=16)
    assert retry.delay(30, rng=lambda: 1.0) == timedelta(seconds=60)
    assert retry.delay(30, rng=lambda: 0.5) == timedelta(seconds=30)
    assert retry.delay(3, rng=lambda: 0.0) == timedelta(seconds=1)  # never a tight loop


@pytest.mark.parametrize(
    ("draft", "reason"),
    [
        (Draft("technical", "system_error", "   ", "x"), "subject_empty"),
        (Draft("technical", "system_error", "x" * 101, "x"), "subject_too_long"),
        (Draft("technical", "system_error", "😀" * 51, "x"), "subject_too_wide"),
        (Draft("technical", "system_error", "ok", " \n "), "description_empty"),
        (Draft("technical", "system_error", "ok", "x" * 100_001), "description_too_long"),
        (Draft("technical", "refund", "ok", "x"), "unknown_category"),
    ],
)
async def test_invalid_drafts_are_refused_and_nothing_is_saved(
    sessionmaker: async_sessionmaker[AsyncSession], draft: Draft, reason: str
) -> None:
    with pytest.raises(InvalidRequest) as error:
        await submit_request(sessionmaker, tickets.new_reference(), draft)
    assert error.value.reason == reason
    assert await _count(sessionmaker, Ticket) == 0
    assert await _count(sessionmaker, FilingOutbox) == 0


async def test_frontdesk_outbox_retry_re_drives_refused_filings_from_the_command_line(
    tmp_path: Path,
) -> None:
    import os
    import sys

    from services.db.engine import create_engine, create_sessionmaker, migrate

    url = f"sqlite+aiosqlite:///{tmp_path / 'cli.sqlite3'}"
    engine = create_engine(url)
    await migrate(engine)
    sessionmaker = create_sessionmaker(engine)
    queue = FlakyQueue(sessionmaker)
    queue.refusing = True
    worker = filing_worker(sessionmaker, queue, Clock(datetime.now(UTC) + timedelta(seconds=5)))
    first = await submit_request(sessionmaker, tickets.new_reference())
    await submit_request(sessionmaker, tickets.new_reference())
    assert await worker.run_once() == 2

    async def cli(*args: str) -> str:
        env = {**os.environ, "BOT_TOKEN": "123:cli-test", "DATABASE_URL": url}
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "outbox",
            "retry",
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        return out.decode().strip()

    try:
        assert await cli("--ticket", str(first.id)) == "frontdesk: 1 refused filing(s) re-driven"
        async with sessionmaker() as session:
            rows = {r.ticket_id: r.refused_at for r in await session.scalars(select(FilingOutbox))}
        assert rows[first.id] is None and all(
            v is not None for k, v in rows.items() if k != first.id
        )
        assert await cli() == "frontdesk: 1 refused filing(s) re-driven"
        assert await cli() == "frontdesk: 0 refused filing(s) re-driven"
    finally:
        await engine.dispose()
