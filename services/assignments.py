"""The specialists' side of a ticket: who is told when the queue assigns it, or nobody has it.

When the queue assigns a ticket frontdesk filed (an owner change, pulled or pushed:
services/sync.py), its new owner gets a notice if they are a linked staff member
(services/staff.py); when a ticket is registered (services/filing.py), nobody owns it yet and the
leads are told. Each notice is a row (services/notices.py) written in the transaction of the change,
under a key of its own, so it is written once however often the change arrives; an owner who is
not linked, or was removed, is told nothing (logged).

The notice is a card of the ticket as a specialist triages it: the store (name, domain, plan), the
type and category as the catalog names them for the queue (Regulation.labels), the subject, an
excerpt, the number of files and the first-reaction deadline.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services import notices, staff
from services.db.models import StaffMember, StaffRole, Store, Ticket, TicketFile
from services.modification_records import MODIFICATION

logger = logging.getLogger(__name__)

# A ticket's (type, category) codes → the labels a specialist reads (None: unknown code).
Labels = Callable[[str, str], tuple[str | None, str | None]]
# A staff member whose language is unknown reads the queue's (services/staff.locale_of).
STAFF_LOCALE = "ru"


async def _card(
    session: AsyncSession, ticket: Ticket, number: str, labels: Labels | None
) -> notices.TicketCard:
    type_label, category_label = (
        labels(ticket.request_type, ticket.category) if labels else (None, None)
    )
    files = await session.scalar(
        select(func.count()).select_from(TicketFile).where(TicketFile.ticket_id == ticket.id)
    )
    store = await session.get(Store, ticket.store_id) if ticket.store_id else None
    return notices.TicketCard(
        number=number,
        subject=ticket.subject,
        excerpt=notices.excerpt(ticket.body),
        store_name=store.name if store else None,
        store_domain=store.domain if store else None,
        plan=ticket.plan,
        request_type=type_label or ticket.request_type,
        category=category_label or ticket.category,
        files=files or 0,
        first_reaction_due=ticket.first_reaction_due,
        modification=ticket.request_type == MODIFICATION,
    )


async def tell_owner(
    session: AsyncSession,
    ticket: Ticket,
    owner: str,
    *,
    number: str,
    key: str,
    labels: Labels | None = None,
) -> bool:
    """Adds the assignment notice for ``owner`` (a queue user) to the caller's transaction, under
    the owner change's ``key``; False when the owner is not an active staff member."""
    chat_id = await session.scalar(
        select(StaffMember.telegram_id).where(
            StaffMember.queue_user == owner, StaffMember.removed_at.is_(None)
        )
    )
    if chat_id is None:
        logger.info("ticket %s: owner %r is not a linked staff member", ticket.reference, owner)
        return False
    card = await _card(session, ticket, number, labels)
    return await notices.enqueue(
        session,
        key=f"assigned:{key}",
        chat_id=chat_id,
        locale=await staff.locale_of(session, chat_id, STAFF_LOCALE),
        body=notices.Assigned(card=card),
    )


async def announce_unassigned(
    session: AsyncSession, ticket: Ticket, *, number: str, labels: Labels | None = None
) -> int:
    """Adds a notice of the newly registered ``ticket`` for every active lead to the caller's
    transaction; how many were written (none twice for the same ticket and lead)."""
    leads = list(
        await session.scalars(
            select(StaffMember.telegram_id).where(
                StaffMember.role == StaffRole.LEAD, StaffMember.removed_at.is_(None)
            )
        )
    )
    if not leads:
        return 0
    card = await _card(session, ticket, number, labels)
    written = 0
    for chat_id in leads:
        written += await notices.enqueue(
            session,
            key=f"unassigned:{ticket.id}:{chat_id}",
            chat_id=chat_id,
            locale=await staff.locale_of(session, chat_id, STAFF_LOCALE),
            body=notices.Unassigned(card=card),
        )
    return written
