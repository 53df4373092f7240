"""Filing a merchant's request into the official queue, and the rules a request must meet."""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.catalog import Catalog
from services.db.base import utcnow
from services.db.models import Ticket, TicketStatus
from services.merchants import MerchantProfile
from services.queue.base import NewTicket, QueueError, TicketQueue

logger = logging.getLogger(__name__)

SUBJECT_MAX = 255
DESCRIPTION_MAX = 4000


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
    return subject


def clean_description(text: str | None) -> str:
    description = (text or "").strip()
    if not description:
        raise InvalidRequest("description_empty")
    if len(description) > DESCRIPTION_MAX:
        raise InvalidRequest("description_too_long", limit=DESCRIPTION_MAX, length=len(description))
    return description


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


async def file_ticket(
    session: AsyncSession,
    queue: TicketQueue,
    catalog: Catalog,
    merchant: MerchantProfile,
    draft: Draft,
    *,
    reference: str,
) -> FiledTicket:
    """Save the request, then register it in the queue.

    The local row is committed first, so a queue failure loses nothing: the ticket stays
    `pending` and is registered later. `reference` comes from the draft, so pressing "Send"
    twice (or a retried update) files one ticket, not two.
    """
    draft = validate_draft(catalog, draft)
    ticket = await session.scalar(select(Ticket).where(Ticket.reference == reference))
    if ticket is None:
        ticket = Ticket(
            reference=reference,
            merchant_id=merchant.id,
            queue_name=queue.name,
            status=TicketStatus.PENDING,
            request_type=draft.request_type,
            category=draft.category,
            subject=draft.subject,
            body=draft.description,
        )
        session.add(ticket)
        try:
            await session.commit()
        except IntegrityError:
            # The same draft sent twice at once: the other press saved it first.
            await session.rollback()
            ticket = await session.scalar(select(Ticket).where(Ticket.reference == reference))
            if ticket is None:
                raise
    if ticket.queue_ticket_id is None:
        await _register(session, queue, merchant, ticket)
    return _filed(ticket)


async def _register(
    session: AsyncSession, queue: TicketQueue, merchant: MerchantProfile, ticket: Ticket
) -> None:
    try:
        queued = await queue.find_by_reference(ticket.reference) or await queue.create_ticket(
            NewTicket(
                reference=ticket.reference,
                requester=merchant.requester,
                subject=ticket.subject,
                body=ticket.body,
                request_type=ticket.request_type,
                category=ticket.category,
                telegram_user_id=merchant.telegram_id,
            )
        )
    except QueueError:
        logger.warning(
            "queue %s did not register ticket %s; kept as pending",
            queue.name,
            ticket.reference,
            exc_info=True,
        )
        return
    ticket.queue_ticket_id = queued.id
    ticket.status = TicketStatus.REGISTERED
    ticket.registered_at = utcnow()
    await session.commit()


def _filed(ticket: Ticket) -> FiledTicket:
    return FiledTicket(
        id=ticket.id,
        reference=ticket.reference,
        status=ticket.status,
        queue_ticket_id=ticket.queue_ticket_id,
        registered_at=ticket.registered_at,
    )
