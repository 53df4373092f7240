"""Filing a request: saved first, registered in the queue, never twice."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import merchants, tickets
from services.catalog import load_catalog
from services.db.models import BuiltinQueueTicket, Ticket, TicketStatus
from services.queue.base import NewTicket, QueueTicket, QueueUnavailable
from services.queue.builtin import BuiltinQueue
from services.tickets import Draft, InvalidRequest

DRAFT = Draft("technical", "system_error", "Ошибка 500 в корзине", "Шаги: открыть корзину.")


async def _merchant(session: AsyncSession) -> merchants.MerchantProfile:
    return await merchants.get_or_register(
        session, telegram_id=7_000_000_123, full_name="Анна Петрова", username="anna"
    )


async def _count(session: AsyncSession, model: type) -> int:
    return await session.scalar(select(func.count()).select_from(model)) or 0


async def test_filed_ticket_gets_the_queue_number(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    queue, catalog = BuiltinQueue(sessionmaker), load_catalog()
    async with sessionmaker() as session:
        merchant = await _merchant(session)
        filed = await tickets.file_ticket(
            session, queue, catalog, merchant, DRAFT, reference=tickets.new_reference()
        )
    assert filed.registered and filed.status is TicketStatus.REGISTERED
    queued = await queue.get_ticket(filed.queue_ticket_id or "")
    assert queued.subject == DRAFT.subject
    assert queued.requester == merchant.requester


async def test_pressing_send_twice_files_one_ticket(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    queue, catalog, reference = BuiltinQueue(sessionmaker), load_catalog(), tickets.new_reference()
    async with sessionmaker() as session:
        merchant = await _merchant(session)
        first = await tickets.file_ticket(
            session, queue, catalog, merchant, DRAFT, reference=reference
        )
    async with sessionmaker() as session:
        second = await tickets.file_ticket(
            session, queue, catalog, merchant, DRAFT, reference=reference
        )
    assert first.queue_ticket_id == second.queue_ticket_id
    async with sessionmaker() as session:
        assert await _count(session, Ticket) == 1
        assert await _count(session, BuiltinQueueTicket) == 1


async def test_concurrent_sends_of_one_draft_file_one_ticket(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    queue, catalog, reference = BuiltinQueue(sessionmaker), load_catalog(), tickets.new_reference()
    async with sessionmaker() as session:
        merchant = await _merchant(session)

    async def send() -> tickets.FiledTicket:
        async with sessionmaker() as session:
            return await tickets.file_ticket(
                session, queue, catalog, merchant, DRAFT, reference=reference
            )

    results = await asyncio.gather(*(send() for _ in range(4)))
    assert len({result.queue_ticket_id for result in results}) == 1
    async with sessionmaker() as session:
        assert await _count(session, Ticket) == 1
        assert await _count(session, BuiltinQueueTicket) == 1


class _DownQueue(BuiltinQueue):
    """The builtin queue with its server gone: every call fails like an unreachable queue."""

    async def create_ticket(self, ticket: NewTicket) -> QueueTicket:
        raise QueueUnavailable("connection refused")

    async def find_by_reference(self, reference: str) -> QueueTicket | None:
        raise QueueUnavailable("connection refused")


async def test_queue_down_keeps_the_ticket_pending_then_registers_it(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    catalog, reference = load_catalog(), tickets.new_reference()
    async with sessionmaker() as session:
        merchant = await _merchant(session)
        pending = await tickets.file_ticket(
            session, _DownQueue(sessionmaker), catalog, merchant, DRAFT, reference=reference
        )
    assert not pending.registered and pending.status is TicketStatus.PENDING
    async with sessionmaker() as session:
        filed = await tickets.file_ticket(
            session, BuiltinQueue(sessionmaker), catalog, merchant, DRAFT, reference=reference
        )
    assert filed.registered and filed.id == pending.id


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
async def test_invalid_drafts_are_refused_and_nothing_is_filed(
    sessionmaker: async_sessionmaker[AsyncSession], draft: Draft, reason: str
) -> None:
    async with sessionmaker() as session:
        merchant = await _merchant(session)
        with pytest.raises(InvalidRequest) as error:
            await tickets.file_ticket(
                session,
                BuiltinQueue(sessionmaker),
                load_catalog(),
                merchant,
                draft,
                reference=tickets.new_reference(),
            )
        assert error.value.reason == reason
        assert await _count(session, Ticket) == 0
