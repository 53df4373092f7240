"""Accepting a merchant's request, and the rules a request must meet before it is accepted."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services import notices, stores
from services.catalog import Catalog
from services.db.base import utcnow
from services.db.models import FilingOutbox, Store, Ticket, TicketFile, TicketStatus
from services.files import MAX_FILES, FileRef
from services.merchants import MerchantProfile
from services.sla import Policies

# The queue keeps the subject whole up to this size: Request Tracker cuts Subject at 200 bytes of
# UTF-8, about 100 Cyrillic letters. A subject within both limits is filed exactly as written.
SUBJECT_MAX = 100
SUBJECT_MAX_BYTES = 200
# A safety bound, not a rule of the regulation: the queue takes a description whole (Text in the
# builtin queue, the ticket's first message in RT); this only stops a runaway paste.
DESCRIPTION_MAX = 100_000
# Telegram's limit on one message, counted in UTF-16 code units as Telegram counts it.
TELEGRAM_TEXT_MAX = 4096


class InvalidRequest(Exception):
    """A draft that breaks a rule; `reason` says which, for the bot to explain."""

    def __init__(self, reason: str, *, limit: int | None = None, length: int | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.limit = limit
        self.length = length


def clean_subject(text: str | None) -> str:
    subject = " ".join((text or "").split())
    if not subject:
        raise InvalidRequest("subject_empty")
    if len(subject) > SUBJECT_MAX:
        raise InvalidRequest("subject_too_long", limit=SUBJECT_MAX, length=len(subject))
    if len(subject.encode()) > SUBJECT_MAX_BYTES:
        # Within the characters but not the bytes: emoji and rare scripts take 4 bytes each.
        raise InvalidRequest("subject_too_wide", limit=SUBJECT_MAX, length=len(subject))
    return subject


def clean_description(text: str | None) -> str:
    description = (text or "").strip()
    if not description:
        raise InvalidRequest("description_empty")
    if len(description) > DESCRIPTION_MAX:
        raise InvalidRequest("description_too_long", limit=DESCRIPTION_MAX, length=len(description))
    return description


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def join_description(parts: list[tuple[int, str]]) -> str:
    """One description from the messages it was sent in, as (message id, text) pairs.

    Parts are put in message-id order (Telegram numbers a chat's messages in the order they were
    sent; updates may be handled in another order). A Telegram client splits a text longer than
    4,096 characters by itself: Telegram Desktop cuts at the last line break or space of the
    second half of the limit and drops that separator (the server trims every message), while
    clients that cut at the limit itself leave a part of exactly 4,096 characters, possibly in
    the middle of a word. So a part of exactly the limit is continued without a separator (its
    word is put back together), and any other part is followed by a line break, which restores
    the dropped line break and, where a space was dropped or the merchant wrote separate
    messages, keeps the words apart.
    """
    ordered = [text for _, text in sorted(parts, key=lambda part: part[0])]
    joined = ""
    for index, text in enumerate(ordered):
        if index and _utf16_len(ordered[index - 1]) != TELEGRAM_TEXT_MAX:
            joined += "\n"
        joined += text
    return joined


class MonthlyLimitReached(Exception):
    """The store's plan allows `limit` tickets a month and they are filed: checked and written
    under a lock on the store, so two admins pressing Send at once cannot both pass."""

    def __init__(self, limit: int) -> None:
        super().__init__(f"monthly limit of {limit} tickets reached")
        self.limit = limit


@dataclass(frozen=True, slots=True)
class Price:
    amount: int
    currency: str


@dataclass(frozen=True, slots=True)
class PaidAgreement:
    """The merchant's agreement to pay for a modification beyond the month's free ones
    («стоимость выполнения каждой мелкой доработки сверх лимита составляет 500 руб.»)."""

    merchant_id: int
    name: str
    at: datetime
    amount: int
    currency: str


def paid_agreement_of(ticket: Ticket) -> PaidAgreement | None:
    if ticket.paid_at is None or ticket.paid_amount is None:
        return None
    return PaidAgreement(
        merchant_id=ticket.paid_by_merchant_id or 0,
        name=ticket.paid_by_name or "",
        at=ticket.paid_at,
        amount=ticket.paid_amount,
        currency=ticket.paid_currency or "RUB",
    )


@dataclass(frozen=True, slots=True)
class Draft:
    request_type: str
    category: str
    subject: str
    description: str


@dataclass(frozen=True, slots=True)
class FiledTicket:
    id: int
    reference: str
    status: TicketStatus
    queue_ticket_id: str | None
    registered_at: datetime | None

    @property
    def registered(self) -> bool:
        return self.queue_ticket_id is not None


def validate_draft(catalog: Catalog, draft: Draft) -> Draft:
    if catalog.category(draft.request_type, draft.category) is None:
        raise InvalidRequest("unknown_category")
    return Draft(
        request_type=draft.request_type,
        category=draft.category,
        subject=clean_subject(draft.subject),
        description=clean_description(draft.description),
    )


def new_reference() -> str:
    return uuid.uuid4().hex


async def submit(
    session: AsyncSession,
    catalog: Catalog,
    merchant: MerchantProfile,
    draft: Draft,
    *,
    reference: str,
    locale: str,
    queue_name: str,
    store_id: int | None = None,
    plan: str | None = None,
    files: Sequence[FileRef] = (),
    paid: Price | None = None,
    policies: Policies | None = None,
) -> FiledTicket:
    """Accept a request: the ticket, its files, its filing order and the "accepted" notice are
    written in one transaction, so once this returns the request cannot be lost; the filing
    worker registers it in the queue.

    `reference` comes from the draft, so pressing "Send" twice (or a retried update) gives one
    ticket, not two. `paid` is the price the merchant agreed to pay (a modification beyond the
    month's free ones): stored with who agreed and when.

    With `policies`, the plan's monthly ticket limit is the binding check: the store's row is
    locked first, then the month's tickets counted and the ticket written in that same
    transaction, so concurrent submits for one store pass one at a time
    (MonthlyLimitReached for the one over the limit). The wizard's earlier check only informs.
    """
    draft = validate_draft(catalog, draft)
    if len(files) > MAX_FILES:
        raise InvalidRequest("too_many_files", limit=MAX_FILES, length=len(files))
    existing = await _by_reference(session, reference)
    if existing is not None:
        return _filed(existing)
    now = utcnow()
    limit = policies.scope_for(plan).monthly_tickets if policies and plan and store_id else None
    if limit is not None and store_id is not None:
        await _lock_store(session, store_id)
        # Another press of this very draft may have been written while this one waited.
        existing = await _by_reference(session, reference)
        if existing is not None:
            await session.rollback()
            return _filed(existing)
        if await stores.tickets_this_month(session, store_id, now) >= limit:
            await session.rollback()
            raise MonthlyLimitReached(limit)
    ticket = Ticket(
        reference=reference,
        merchant_id=merchant.id,
        store_id=store_id,
        plan=plan,
        locale=locale,
        queue_name=queue_name,
        status=TicketStatus.PENDING,
        request_type=draft.request_type,
        category=draft.category,
        subject=draft.subject,
        body=draft.description,
        created_at=now,
        files=[
            TicketFile(
                position=position,
                file_id=file.file_id,
                file_unique_id=file.file_unique_id,
                kind=file.kind.value,
                filename=file.filename,
                content_type=file.content_type,
                size=file.size,
            )
            for position, file in enumerate(files)
        ],
    )
    if paid is not None:
        ticket.paid_by_merchant_id = merchant.id
        ticket.paid_by_name = merchant.full_name
        ticket.paid_at = now
        ticket.paid_amount = paid.amount
        ticket.paid_currency = paid.currency
    session.add(ticket)
    try:
        await session.flush()
        session.add(FilingOutbox(ticket_id=ticket.id, next_attempt_at=utcnow()))
        # Told through the notice outbox, so "accepted" always reaches the chat before the number.
        await notices.enqueue(
            session,
            key=f"accepted:{ticket.id}",
            chat_id=merchant.telegram_id,
            locale=locale,
            body=notices.Accepted(subject=draft.subject),
            ticket_id=ticket.id,
        )
        await session.commit()
    except IntegrityError:
        # The same draft sent twice at once: the other press saved it first.
        await session.rollback()
        existing = await _by_reference(session, reference)
        if existing is None:
            raise
        return _filed(existing)
    return _filed(ticket)


async def was_filed(session: AsyncSession, merchant_id: int, draft_id: str) -> bool:
    """Whether the merchant filed the draft whose buttons carry `draft_id` (the beginning of
    the ticket's reference): a button pressed after Send can then say "already sent"."""
    if not draft_id:
        return False
    found = await session.scalar(
        select(Ticket.id)
        .where(
            Ticket.merchant_id == merchant_id,
            Ticket.reference.startswith(draft_id, autoescape=True),
        )
        .limit(1)
    )
    return found is not None


async def _lock_store(session: AsyncSession, store_id: int) -> None:
    """Holds the store's row until this transaction ends. PostgreSQL: SELECT … FOR UPDATE (and
    READ COMMITTED lets the count that follows see what the previous holder committed). SQLite
    has no row locks: a write (a no-op UPDATE) takes its one writer lock now, before the count,
    where the driver would otherwise begin the transaction only at the INSERT."""
    if session.get_bind().dialect.name == "postgresql":
        await session.execute(select(Store.id).where(Store.id == store_id).with_for_update())
    else:
        await session.execute(update(Store).where(Store.id == store_id).values(id=Store.id))


async def _by_reference(session: AsyncSession, reference: str) -> Ticket | None:
    return await session.scalar(select(Ticket).where(Ticket.reference == reference))


def _filed(ticket: Ticket) -> FiledTicket:
    return FiledTicket(
        id=ticket.id,
        reference=ticket.reference,
        status=ticket.status,
        queue_ticket_id=ticket.queue_ticket_id,
        registered_at=ticket.registered_at,
    )
