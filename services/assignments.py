"""The specialists' side of a ticket: who is told when the queue assigns it, or nobody has it.

When the queue assigns a ticket frontdesk filed (an owner change, pulled or pushed:
services/sync.py), its new owner gets a notice if they are a linked staff member
(services/staff.py); when a ticket is registered (services/filing.py), nobody owns it yet and the
leads are told, or the staff group the operator routes its category to (STAFF_GROUPS). Each
notice is a row (services/notices.py) written in the transaction of the change, under a key of
its own, so it is written once however often the change arrives; an owner who is not linked, or
was removed, is told nothing (logged).

The notice is a card of the ticket as a specialist triages it: the store (name, domain, plan), the
type and category as the catalog names them for the queue (Regulation.labels), the subject, an
excerpt, the number of files, the first-reaction deadline and the ticket's page in the queue's
web interface (when it has one).

Routing a new ticket to a staff group (``StaffRoutes``) is plain data: a category code, else a
request type code, else ``"*"`` names the group's chat; a ticket no route matches goes to the
leads. A group Telegram refused for good (the bot was removed) is skipped for the leads, so a new
ticket is never announced into the void.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services import notices, staff
from services.catalog import Catalog
from services.db.models import StaffMember, StaffRole, Store, Ticket, TicketFile
from services.modification_records import MODIFICATION

logger = logging.getLogger(__name__)

# A ticket's (type, category) codes → the labels a specialist reads (None: unknown code).
Labels = Callable[[str, str], tuple[str | None, str | None]]
# A queue's ticket number → its page in the queue's web interface (None: it has none).
TicketUrl = Callable[[str], str | None]
# Where new unassigned tickets are announced instead of to the leads: a category code, a request
# type code or DEFAULT_ROUTE → a staff group's Telegram chat id.
StaffRoutes = Mapping[str, int]
DEFAULT_ROUTE = "*"
# A staff member whose language is unknown reads the queue's (services/staff.locale_of).
STAFF_LOCALE = "ru"


def route_for(routes: StaffRoutes, request_type: str, category: str) -> int | None:
    """The staff group a new ticket of ``request_type``/``category`` is announced to: the most
    specific route (its category, else its type, else the default); None: the leads."""
    for code in (category, request_type, DEFAULT_ROUTE):
        if code in routes:
            return routes[code]
    return None


def unknown_route_codes(routes: Iterable[str], catalog: Catalog) -> list[str]:
    """The codes of ``routes`` that name no request type nor category of ``catalog`` (a typo
    would silently send its tickets to the default route or the leads)."""
    known = {DEFAULT_ROUTE}
    for request_type in catalog.types:
        known.add(request_type.code)
        known.update(category.code for category in request_type.categories)
    return sorted(code for code in routes if code not in known)


async def _card(
    session: AsyncSession,
    ticket: Ticket,
    number: str,
    labels: Labels | None,
    ticket_url: TicketUrl | None,
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
        url=ticket_url(number) if ticket_url else None,
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
    ticket_url: TicketUrl | None = None,
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
    card = await _card(session, ticket, number, labels, ticket_url)
    return await notices.enqueue(
        session,
        key=f"assigned:{key}",
        chat_id=chat_id,
        locale=await staff.locale_of(session, chat_id, STAFF_LOCALE),
        body=notices.Assigned(card=card),
    )


async def announce_unassigned(
    session: AsyncSession,
    ticket: Ticket,
    *,
    number: str,
    labels: Labels | None = None,
    ticket_url: TicketUrl | None = None,
    routes: StaffRoutes | None = None,
) -> int:
    """Adds the notice of the newly registered ``ticket`` to the caller's transaction: one for
    the staff group its category (or type) is routed to, else one for every active lead; how
    many were written (none twice for the same ticket and chat)."""
    group = route_for(routes or {}, ticket.request_type, ticket.category)
    if group is not None and await notices.is_unreachable(session, group):
        # The bot was removed from the group (or it became a supergroup with a new id): its
        # notices would wait there unseen, so the leads hear of the ticket instead.
        logger.warning(
            "ticket %s: staff group %s is unreachable (check STAFF_GROUPS and that the bot is "
            "a member): announced to the leads",
            ticket.reference,
            group,
        )
        group = None
    if group is not None:
        card = await _card(session, ticket, number, labels, ticket_url)
        return int(
            await notices.enqueue(
                session,
                key=f"unassigned:{ticket.id}:group",
                chat_id=group,
                locale=STAFF_LOCALE,  # a group reads the queue's language
                body=notices.Unassigned(card=card),
            )
        )
    leads = list(
        await session.scalars(
            select(StaffMember.telegram_id).where(
                StaffMember.role == StaffRole.LEAD, StaffMember.removed_at.is_(None)
            )
        )
    )
    if not leads:
        return 0
    card = await _card(session, ticket, number, labels, ticket_url)
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
