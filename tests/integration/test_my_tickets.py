"""services/my_tickets.py on both databases: a merchant sees their own tickets only, newest
first, page by page and per store; a message is about one ticket, and only for its merchant."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import merchants, my_tickets, stores
from services.db.models import Role, Ticket, TicketStatus

START = datetime(2026, 11, 20, 9, tzinfo=UTC)


async def _ticket(
    session: AsyncSession, merchant_id: int, n: int, *, store_id: int | None, status: TicketStatus
) -> int:
    ticket = Ticket(
        reference=f"ref-{merchant_id}-{n}",
        merchant_id=merchant_id,
        store_id=store_id,
        queue_name="builtin",
        queue_ticket_id=None if status is TicketStatus.PENDING else str(100 + n),
        status=status,
        request_type="technical",
        category="system_error",
        subject=f"Request {n}",
        body="…",
        created_at=START + timedelta(hours=n),
        updated_at=START + timedelta(hours=n),
    )
    session.add(ticket)
    await session.commit()
    return ticket.id


async def test_a_merchant_sees_only_their_tickets_newest_first_by_page_and_store(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        anna = await merchants.get_or_register(
            session, telegram_id=1, full_name="Anna", username=None
        )
        boris = await merchants.get_or_register(
            session, telegram_id=2, full_name="Boris", username=None
        )
        shop = await stores.add_store(session, domain="shop.example", name="Shop", plan="basic")
        await stores.grant(session, merchant_id=anna.id, store_id=shop, role=Role.ADMIN)
        ids = [
            await _ticket(
                session,
                anna.id,
                n,
                store_id=shop if n % 2 else None,
                status=TicketStatus.RESOLVED if n == 6 else TicketStatus.OPEN,
            )
            for n in range(7)
        ]
        others = await _ticket(session, boris.id, 9, store_id=shop, status=TicketStatus.OPEN)

        first = await my_tickets.page_of(session, anna.id)
        assert [line.id for line in first.lines] == ids[::-1][:5]
        assert (first.total, first.pages) == (7, 2)
        second = await my_tickets.page_of(session, anna.id, page=1)
        assert [line.id for line in second.lines] == [ids[1], ids[0]]
        in_shop = await my_tickets.page_of(session, anna.id, store_id=shop, filtered=True)
        assert [line.id for line in in_shop.lines] == [ids[5], ids[3], ids[1]]
        without = await my_tickets.page_of(session, anna.id, store_id=None, filtered=True)
        assert [line.id for line in without.lines] == [ids[6], ids[4], ids[2], ids[0]]
        for page, store in ((2, None), (-1, None), (0, 12345)):
            with pytest.raises(my_tickets.PageOutOfRange):
                await my_tickets.page_of(
                    session, anna.id, page=page, store_id=store, filtered=store is not None
                )

        assert await my_tickets.ticket_of(session, anna.id, others) is None
        assert (await my_tickets.ticket_of(session, boris.id, others)) is not None
        assert [line.id for line in await my_tickets.open_tickets(session, anna.id)] == [
            ids[5],
            ids[4],
            ids[3],
            ids[2],
            ids[1],
        ]

        await my_tickets.remember_messages(session, 1, [10, 11], ids[0])
        await my_tickets.remember_message(session, 1, 12, ids[0], by_merchant=True)
        # Recorded once: the same message again keeps its ticket.
        await my_tickets.remember_message(session, 1, 10, ids[1])
        await session.commit()
        found = await my_tickets.ticket_for_message(session, anna.id, 1, 10)
        assert found is not None and found.ticket.id == ids[0] and not found.by_merchant
        own = await my_tickets.ticket_for_message(session, anna.id, 1, 12)
        assert own is not None and own.by_merchant
        # Another merchant, or another chat, gets nothing.
        assert await my_tickets.ticket_for_message(session, boris.id, 1, 10) is None
        assert await my_tickets.ticket_for_message(session, anna.id, 2, 10) is None
        assert await my_tickets.is_recorded(session, 1, 10)
