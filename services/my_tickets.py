"""A merchant's own tickets: the list /tickets shows, a ticket's card, and which Telegram messages
are about which ticket (a Telegram reply to one goes to that ticket; an edit of the merchant's own
one becomes a correction).

Every lookup here is by the merchant: a ticket id or a message id that is not theirs gives None,
never someone else's ticket. Ids come from callback data and replies, which are untrusted input.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.db.dialect import insert_for
from services.db.models import Store, Ticket, TicketMessage, TicketStatus

PAGE_SIZE = 5
# The tickets "add to ticket #N" offers for a free message.
OFFERED_OPEN = 5
# Tickets a merchant can still add to: not yet finished by support.
OPEN_STATUSES = (
    TicketStatus.PENDING,
    TicketStatus.REGISTERED,
    TicketStatus.OPEN,
    TicketStatus.WAITING,
)


@dataclass(frozen=True, slots=True)
class TicketLine:
    """A ticket as the merchant sees it in their list and on its card."""

    id: int
    # The queue's number; None until the queue has registered the ticket.
    number: str | None
    subject: str
    status: TicketStatus
    store_id: int | None
    store_name: str | None
    created_at: datetime
    updated_at: datetime
    registered_at: datetime | None
    first_reaction_due: datetime | None
    resolution_due: datetime | None
    body: str

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES


@dataclass(frozen=True, slots=True)
class StoreTab:
    """A store the merchant has tickets of (None: tickets filed without a store)."""

    id: int | None
    name: str | None
    count: int


@dataclass(frozen=True, slots=True)
class TicketPage:
    lines: list[TicketLine]
    page: int
    pages: int
    total: int
    # The store the list is filtered by (None: tickets without a store), when `filtered`.
    store_id: int | None
    filtered: bool
    stores: list[StoreTab]


class PageOutOfRange(LookupError):
    """A page or a store the merchant's list does not have: a stale or forged button."""


def _line(ticket: Ticket, store_name: str | None) -> TicketLine:
    return TicketLine(
        id=ticket.id,
        number=ticket.queue_ticket_id,
        subject=ticket.subject,
        status=ticket.status,
        store_id=ticket.store_id,
        store_name=store_name,
        created_at=ticket.created_at,
        updated_at=ticket.updated_at,
        registered_at=ticket.registered_at,
        first_reaction_due=ticket.first_reaction_due,
        resolution_due=ticket.resolution_due,
        body=ticket.body,
    )


async def store_tabs(session: AsyncSession, merchant_id: int) -> list[StoreTab]:
    rows = await session.execute(
        select(Ticket.store_id, Store.name, func.count(Ticket.id))
        .outerjoin(Store, Store.id == Ticket.store_id)
        .where(Ticket.merchant_id == merchant_id)
        .group_by(Ticket.store_id, Store.name)
        .order_by(Store.name, Ticket.store_id)
    )
    return [StoreTab(store_id, name, int(count)) for store_id, name, count in rows]


async def page_of(
    session: AsyncSession,
    merchant_id: int,
    *,
    page: int = 0,
    store_id: int | None = None,
    filtered: bool = False,
    page_size: int = PAGE_SIZE,
) -> TicketPage:
    """The merchant's tickets, newest first, one page; `filtered`: only those of store
    `store_id` (None: those filed without a store).

    PageOutOfRange for a page past the end (the list only grows, so a button cannot go stale
    that way) or a store the merchant has no tickets in."""
    tabs = await store_tabs(session, merchant_id)
    if filtered and store_id not in {tab.id for tab in tabs}:
        raise PageOutOfRange(f"store {store_id}")
    total = sum(tab.count for tab in tabs if not filtered or tab.id == store_id)
    pages = max(1, -(-total // page_size))
    if not 0 <= page < pages:
        raise PageOutOfRange(f"page {page} of {pages}")
    query = (
        select(Ticket, Store.name)
        .outerjoin(Store, Store.id == Ticket.store_id)
        .where(Ticket.merchant_id == merchant_id)
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .offset(page * page_size)
        .limit(page_size)
    )
    if filtered:
        query = query.where(
            Ticket.store_id.is_(None) if store_id is None else Ticket.store_id == store_id
        )
    rows = await session.execute(query)
    return TicketPage(
        lines=[_line(ticket, name) for ticket, name in rows],
        page=page,
        pages=pages,
        total=total,
        store_id=store_id,
        filtered=filtered,
        stores=tabs,
    )


async def ticket_of(session: AsyncSession, merchant_id: int, ticket_id: int) -> TicketLine | None:
    """The ticket if it is this merchant's; None otherwise (whether it exists is not told)."""
    row = (
        await session.execute(
            select(Ticket, Store.name)
            .outerjoin(Store, Store.id == Ticket.store_id)
            .where(Ticket.id == ticket_id, Ticket.merchant_id == merchant_id)
        )
    ).first()
    return None if row is None else _line(row[0], row[1])


async def open_tickets(
    session: AsyncSession, merchant_id: int, *, limit: int = OFFERED_OPEN
) -> list[TicketLine]:
    """The merchant's tickets still open, newest first: where a free message can go."""
    rows = await session.execute(
        select(Ticket, Store.name)
        .outerjoin(Store, Store.id == Ticket.store_id)
        .where(Ticket.merchant_id == merchant_id, Ticket.status.in_(OPEN_STATUSES))
        .order_by(Ticket.created_at.desc(), Ticket.id.desc())
        .limit(limit)
    )
    return [_line(ticket, name) for ticket, name in rows]


# --- which Telegram messages are about which ticket ----------------------------------------------


async def remember_messages(
    session: AsyncSession,
    chat_id: int,
    message_ids: Iterable[int],
    ticket_id: int,
    *,
    by_merchant: bool = False,
) -> None:
    """Records that these messages of the chat are about the ticket, in the caller's
    transaction (the caller commits). A message already recorded keeps its ticket."""
    for message_id in message_ids:
        await session.execute(
            insert_for(session, TicketMessage)
            .values(
                chat_id=chat_id,
                message_id=message_id,
                ticket_id=ticket_id,
                by_merchant=by_merchant,
            )
            .on_conflict_do_nothing(index_elements=["chat_id", "message_id"])
        )


async def remember_message(
    session: AsyncSession,
    chat_id: int,
    message_id: int,
    ticket_id: int,
    *,
    by_merchant: bool = False,
) -> None:
    await remember_messages(session, chat_id, (message_id,), ticket_id, by_merchant=by_merchant)


@dataclass(frozen=True, slots=True)
class MessageTicket:
    ticket: TicketLine
    by_merchant: bool


async def ticket_for_message(
    session: AsyncSession, merchant_id: int, chat_id: int, message_id: int
) -> MessageTicket | None:
    """The ticket a message of this chat is about, if that ticket is the merchant's."""
    row = (
        await session.execute(
            select(Ticket, Store.name, TicketMessage.by_merchant)
            .join(TicketMessage, TicketMessage.ticket_id == Ticket.id)
            .outerjoin(Store, Store.id == Ticket.store_id)
            .where(
                TicketMessage.chat_id == chat_id,
                TicketMessage.message_id == message_id,
                Ticket.merchant_id == merchant_id,
            )
        )
    ).first()
    if row is None:
        return None
    return MessageTicket(_line(row[0], row[1]), bool(row[2]))


async def is_recorded(session: AsyncSession, chat_id: int, message_id: int) -> bool:
    """Whether the message is about some ticket (whoever's): tells a forged reply from a plain
    one."""
    found = await session.scalar(
        select(TicketMessage.ticket_id).where(
            TicketMessage.chat_id == chat_id, TicketMessage.message_id == message_id
        )
    )
    return found is not None
