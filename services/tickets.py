"""Accepting a merchant's request, and the rules a request must meet before it is accepted."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services import notices
from services.catalog import Catalog
from services.db.base import utcnow
from services.db.models import FilingOutbox, Ticket, TicketStatus
from services.merchants import MerchantProfile

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
) -> FiledTicket:
    """Accept a request: the ticket, its filing order and the "accepted" notice are written in
    one transaction, so once this returns the request cannot be lost; the filing worker registers
    it in the queue.

    `reference` comes from the draft, so pressing "Send" twice (or a retried update) gives one
    ticket, not two.
    """
    draft = validate_draft(catalog, draft)
    existing = await _by_reference(session, reference)
    if existing is not None:
        return _filed(existing)
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
    )
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
