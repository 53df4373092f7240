"""The queue down for half an hour while requests keep coming (the builtin queue behind a switch,
a clock the test moves, the real filing worker): every request waits, its merchant is told once
that registration is delayed, and when the queue returns each is filed exactly once."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import tickets
from services.db.models import BuiltinQueueTicket, FilingOutbox, Ticket, TicketStatus
from services.tickets import Draft
from tests.helpers.filing import Clock, filing_worker, submit_request
from tests.helpers.notices import written
from tests.integration.test_filing import FlakyQueue


async def _count(sessionmaker: async_sessionmaker[AsyncSession], model: type) -> int:
    async with sessionmaker() as session:
        return await session.scalar(select(func.count()).select_from(model)) or 0


async def test_queue_down_for_half_an_hour_requests_wait_told_once_each_and_filed_once(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    queue = FlakyQueue(sessionmaker)
    clock = Clock(datetime.now(UTC) + timedelta(seconds=5))
    worker = filing_worker(sessionmaker, queue, clock)
    queue.down = True

    references = []
    for minute in range(30):
        if minute % 10 == 0:  # a new request every ten minutes of the outage
            reference = tickets.new_reference()
            references.append(reference)
            draft = Draft("technical", "system_error", f"Ошибка {minute}", "Шаги: открыть.")
            await submit_request(sessionmaker, reference, draft)
        await worker.run_once()
        clock.now += timedelta(minutes=1)

    assert queue.calls >= len(references) * 2  # retried during the outage, with backoff
    assert queue.creates == 0
    delayed = await written(sessionmaker, "delayed")
    assert sorted(n.ticket_id for n in delayed) == [1, 2, 3]  # told once each, not per retry
    assert await written(sessionmaker, "registered") == []

    queue.down = False
    for _ in range(5):
        clock.now += timedelta(minutes=2)
        await worker.run_once()
    assert queue.creates == len(references)
    assert await _count(sessionmaker, BuiltinQueueTicket) == len(references)
    assert await _count(sessionmaker, FilingOutbox) == 0
    async with sessionmaker() as session:
        statuses = list(await session.scalars(select(Ticket.status)))
    assert statuses == [TicketStatus.REGISTERED] * len(references)
    registered = await written(sessionmaker, "registered")
    assert sorted(n.ticket_id for n in registered) == [1, 2, 3]
    assert len(await written(sessionmaker, "delayed")) == len(references)
