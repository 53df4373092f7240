"""Accepting and filing a request: saved with its filing order in one transaction, registered
in the queue by the worker, never lost and never twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import tickets
from services.db.models import BuiltinQueueTicket, FilingOutbox, Ticket, TicketStatus
from services.filing import RetryPolicy
from services.queue.base import NewTicket, QueueTicket, QueueUnavailable
from services.queue.builtin import BuiltinQueue
from services.tickets import Draft, InvalidRequest
from tests.helpers.filing import (
    DRAFT,
    Clock,
    Recorder,
    filing_worker,
    submit_request,
)


class FlakyQueue(BuiltinQueue):
    """The builtin queue behind a switch: while `down`, every call fails like a dead server."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.down = False
        self.creates = 0

    async def create_ticket(self, ticket: NewTicket) -> QueueTicket:
        if self.down:
            raise QueueUnavailable("connection refused")
        self.creates += 1
        return await super().create_ticket(ticket)

    async def find_by_reference(self, reference: str) -> QueueTicket | None:
        if self.down:
            raise QueueUnavailable("connection refused")
        return await super().find_by_reference(reference)


async def _count(sessionmaker: async_sessionmaker[AsyncSession], model: type) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


async def test_accepted_ticket_is_registered_with_its_deadline(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    queue, notices = BuiltinQueue(sessionmaker), Recorder()
    clock = Clock(datetime.now(UTC) + timedelta(seconds=5))
    accepted = await submit_request(sessionmaker, tickets.new_reference())
    assert accepted.status is TicketStatus.PENDING and not accepted.registered
    assert await _count(sessionmaker, FilingOutbox) == 1

    assert await filing_worker(sessionmaker, queue, notices, clock).run_once() == 1

    [notice] = notices.registered_notices
    queued = await queue.get_ticket(notice.queue_ticket_id)
    assert queued.subject == DRAFT.subject
    # Technical requests: first reaction within 24 hours, round the clock, from registration.
    assert notice.first_reaction_due == clock.now + timedelta(hours=24)
    assert await _count(sessionmaker, FilingOutbox) == 0
    async with sessionmaker() as session:
        ticket = await session.get(Ticket, accepted.id)
        assert ticket is not None and ticket.status is TicketStatus.REGISTERED
        assert ticket.queue_ticket_id == notice.queue_ticket_id
        assert ticket.first_reaction_due == notice.first_reaction_due


async def test_pressing_send_twice_files_one_ticket(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    reference = tickets.new_reference()
    first = await submit_request(sessionmaker, reference)
    second = await submit_request(sessionmaker, reference)
    assert first.id == second.id
    await filing_worker(sessionmaker, BuiltinQueue(sessionmaker), Recorder()).run_once()
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
    queue, notices = FlakyQueue(sessionmaker), Recorder()
    clock = Clock(datetime.now(UTC) + timedelta(seconds=5))  # due at once, whatever the hour
    worker = filing_worker(sessionmaker, queue, notices, clock)
    await submit_request(sessionmaker, tickets.new_reference())

    queue.down = True
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0  # backing off: not due yet
    clock.now += timedelta(minutes=5)
    assert await worker.run_once() == 1  # failed again
    assert len(notices.delayed_notices) == 1  # told once, not on every retry
    assert notices.registered_notices == []

    queue.down = False
    clock.now += timedelta(minutes=5)
    assert await worker.run_once() == 1
    [notice] = notices.registered_notices
    # The SLA clock starts at registration, not at the press of "Send".
    assert notice.registered_at == clock.now
    assert queue.creates == 1
    assert await _count(sessionmaker, BuiltinQueueTicket) == 1
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(FilingOutbox)) == 0


async def test_worker_killed_after_the_queue_answered_does_not_file_twice(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The queue created the ticket but the worker died before saving the number: the next
    worker finds the ticket by its reference once the dead worker's lease lapses."""
    queue, notices = FlakyQueue(sessionmaker), Recorder()
    clock = Clock(datetime.now(UTC) + timedelta(seconds=5))  # due at once, whatever the hour
    accepted = await submit_request(sessionmaker, tickets.new_reference())
    dead = filing_worker(sessionmaker, queue, notices, clock)
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
    survivor = filing_worker(sessionmaker, queue, notices, clock)
    assert await survivor.run_once() == 0  # still leased to the dead worker
    clock.now += timedelta(minutes=3)
    assert await survivor.run_once() == 1
    assert queue.creates == 1
    assert await _count(sessionmaker, BuiltinQueueTicket) == 1
    assert len(notices.registered_notices) == 1 and claimed


async def test_two_workers_share_the_outbox_without_filing_twice(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    queue, notices = FlakyQueue(sessionmaker), Recorder()
    for _ in range(12):
        await submit_request(sessionmaker, tickets.new_reference())
    workers = [filing_worker(sessionmaker, queue, notices) for _ in range(3)]
    while await _count(sessionmaker, FilingOutbox):
        await asyncio.gather(*(worker.run_once() for worker in workers))
    assert queue.creates == 12
    assert len(notices.registered_notices) == 12
    assert len({n.queue_ticket_id for n in notices.registered_notices}) == 12


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
        (Draft("technical", "system_error", "x" * 256, "x"), "subject_too_long"),
        (Draft("technical", "system_error", "ok", " \n "), "description_empty"),
        (Draft("technical", "system_error", "ok", "x" * 4001), "description_too_long"),
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
