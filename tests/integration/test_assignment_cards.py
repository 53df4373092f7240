"""The specialists' ticket card (services/assignments.py): its link to the ticket in the queue's
web interface, and where a new unassigned ticket is announced: the staff group its category (or
type) is routed to (STAFF_GROUPS), else the leads; a group Telegram refused is passed over.

Over every queue: the builtin one on SQLite and PostgreSQL, and a real Request Tracker."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiogram.utils.i18n import I18n
from sqlalchemy import func, select

from bot.config import Settings, locales_dir
from bot.factories import create_ticket_url
from handlers.notices import TextPart, render
from services import merchants, notices, staff, tickets
from services.db.models import StaffNoteOutbox, StaffRole, Ticket
from services.filing import FilingWorker
from services.queue.base import OwnerEvent
from services.sync import TicketSync
from services.tickets import Draft
from tests.helpers import notices as notice_log
from tests.integration.rt_fixture import rt_server
from tests.integration.test_sync import REGULATION, World, builtin, world

__all__ = ["builtin", "rt_server", "world"]  # fixtures, imported to be found here

ERROR = Draft("technical", "system_error", "Ошибка 500 в корзине", "Шаги: открыть корзину.")
REFUND = Draft("administrative", "refund", "Возврат & оплата", "Верните деньги за тариф.")
GROUP = -1_001_234_567_890
LEAD, SPECIALIST = 5_200_000_001, 5_200_000_002
KICKED = "Forbidden: bot was kicked from the supergroup chat"


async def _link(world: World, queue_user: str, telegram_id: int, role: StaffRole) -> None:
    now = datetime.now(UTC)
    async with world.sessionmaker() as session:
        issued = await staff.issue_link(session, queue_user, role, ttl=timedelta(hours=1), now=now)
        assert (await staff.redeem(session, issued.token, telegram_id=telegram_id, now=now)).member


async def _file(world: World, draft: Draft = ERROR, **filing: Any) -> tuple[int, str]:
    """A merchant's request registered by a filing worker built with ``filing``: (id, number)."""
    async with world.sessionmaker() as session:
        merchant = await merchants.get_or_register(
            session,
            telegram_id=7_100_000_000 + uuid.uuid4().int % 1_000_000,
            full_name="Анна Петрова",
            username="anna",
        )
        accepted = await tickets.submit(
            session,
            REGULATION.catalog,
            merchant,
            draft,
            reference=tickets.new_reference(),
            locale="ru",
            queue_name=world.queue.name,
        )
    worker = FilingWorker(world.sessionmaker, world.queue, REGULATION, **filing)
    assert await worker.run_once() == 1
    async with world.sessionmaker() as session:
        ticket = await session.get(Ticket, accepted.id)
        assert ticket is not None and ticket.queue_ticket_id is not None
        return ticket.id, ticket.queue_ticket_id


async def _assign(world: World, number: str, sync: TicketSync) -> notices.TicketCard:
    """The queue assigns the ticket to the linked specialist: the card they are sent."""
    await world.specialist.set_owner(number, world.specialist.name)
    owner = [e for e in await world.queue.events(number) if isinstance(e, OwnerEvent)][-1]
    await sync.sync_ticket(number, upto=owner.id)
    [assigned] = await notice_log.bodies(world.sessionmaker, notices.NoticeKind.ASSIGNED)
    assert isinstance(assigned, notices.Assigned)
    return assigned.card


async def _unassigned(world: World) -> list[notice_log.Written]:
    return await notice_log.written(world.sessionmaker, notices.NoticeKind.UNASSIGNED)


def _html(notice: notices.Body, locale: str = "ru") -> str:
    i18n = I18n(path=locales_dir(), default_locale="ru", domain="messages")
    with i18n.context(), i18n.use_locale(locale):
        [part] = render(notice, [], now=datetime.now(UTC))
    assert isinstance(part, TextPart)
    return part.html


# --- the link -------------------------------------------------------------------------------------


async def test_card_links_the_ticket_as_the_queue_shows_it(world: World) -> None:
    await _link(world, "lena.lead", LEAD, StaffRole.LEAD)
    await _link(world, world.specialist.name, SPECIALIST, StaffRole.SPECIALIST)
    _, number = await _file(world)
    [new] = await _unassigned(world)
    assert isinstance(new.body, notices.Unassigned)
    card = await _assign(world, number, TicketSync(world.sessionmaker, world.queue))

    expected = world.queue.ticket_url(number)
    assert new.body.card.url == card.url == expected
    if expected is None:  # the builtin queue has no web interface: no link line at all
        assert "<a " not in _html(new.body) and "<a " not in _html(notices.Assigned(card=card))
    else:  # RT: its ticket page
        assert expected.endswith(f"/Ticket/Display.html?id={number}")
        href = f'<a href="{expected.replace("&", "&amp;")}">'
        assert href in _html(new.body) and href in _html(notices.Assigned(card=card), "en")


async def test_card_links_the_ticket_at_the_configured_address(builtin: World) -> None:
    settings = Settings.model_validate(
        {"bot_token": "1:x", "queue_ticket_url": "https://desk.example/tickets/{id}?view=full"}
    )
    url = create_ticket_url(settings, builtin.queue)
    await _link(builtin, "lena.lead", LEAD, StaffRole.LEAD)
    await _link(builtin, builtin.specialist.name, SPECIALIST, StaffRole.SPECIALIST)
    _, number = await _file(builtin, ticket_url=url)
    [new] = await _unassigned(builtin)
    assert isinstance(new.body, notices.Unassigned)
    card = await _assign(
        builtin, number, TicketSync(builtin.sessionmaker, builtin.queue, ticket_url=url)
    )

    expected = f"https://desk.example/tickets/{number}?view=full"
    assert new.body.card.url == card.url == expected
    link = (
        f'<a href="https://desk.example/tickets/{number}?view=full">Открыть обращение в очереди</a>'
    )
    assert link in _html(new.body) and link in _html(notices.Assigned(card=card))


async def test_card_names_everything_a_specialist_triages_by(builtin: World) -> None:
    await _link(builtin, "lena.lead", LEAD, StaffRole.LEAD)
    _, number = await _file(builtin, REFUND, ticket_url=lambda n: f"https://q.example/{n}")
    [new] = await _unassigned(builtin)
    assert isinstance(new.body, notices.Unassigned)
    card = new.body.card
    type_label, category_label = REGULATION.labels(REFUND.request_type, REFUND.category)
    assert (card.request_type, card.category) == (type_label, category_label)
    assert (card.number, card.subject, card.excerpt) == (number, REFUND.subject, REFUND.description)
    assert card.url == f"https://q.example/{number}" and card.first_reaction_due is not None
    html = _html(new.body)
    assert f"🗂 {type_label} → {category_label}." in html
    assert "«Возврат &amp; оплата»" in html and "⏱ Первая реакция" in html
    assert f'<a href="https://q.example/{number}">' in html


# --- staff groups ---------------------------------------------------------------------------------


async def test_routed_ticket_is_announced_to_its_group_and_not_to_the_leads(world: World) -> None:
    await _link(world, "lena.lead", LEAD, StaffRole.LEAD)
    ticket_id, number = await _file(world, staff_groups={"system_error": GROUP, "refund": -5})

    [new] = await _unassigned(world)
    assert (new.chat_id, new.key, new.locale) == (GROUP, f"unassigned:{ticket_id}:group", "ru")
    assert isinstance(new.body, notices.Unassigned)
    assert (new.body.card.number, new.body.card.subject) == (number, ERROR.subject)


async def test_a_request_type_route_and_the_default_route(builtin: World) -> None:
    await _link(builtin, "lena.lead", LEAD, StaffRole.LEAD)
    routes = {"administrative": GROUP, "*": -7}
    await _file(builtin, REFUND, staff_groups=routes)
    await _file(builtin, ERROR, staff_groups=routes)
    assert [n.chat_id for n in await _unassigned(builtin)] == [GROUP, -7]


async def test_ticket_no_route_matches_goes_to_the_leads(builtin: World) -> None:
    await _link(builtin, "lena.lead", LEAD, StaffRole.LEAD)
    await _link(builtin, "oleg.lead", LEAD + 1, StaffRole.LEAD)
    ticket_id, _ = await _file(builtin, REFUND, staff_groups={"system_error": GROUP})
    written = await _unassigned(builtin)
    assert [(n.chat_id, n.key) for n in written] == [
        (LEAD, f"unassigned:{ticket_id}:{LEAD}"),
        (LEAD + 1, f"unassigned:{ticket_id}:{LEAD + 1}"),
    ]


async def test_a_group_the_bot_was_removed_from_is_passed_over_for_the_leads(
    builtin: World,
) -> None:
    await _link(builtin, "lena.lead", LEAD, StaffRole.LEAD)
    async with builtin.sessionmaker() as session:
        # What the delivery worker does on Telegram's 403 for the group (bot/delivery.py).
        await notices.mark_unreachable(session, GROUP, KICKED)
    async with builtin.sessionmaker() as session:
        # A group is no merchant: no internal note is owed to any ticket.
        assert await session.scalar(select(func.count()).select_from(StaffNoteOutbox)) == 0
        assert await notices.is_unreachable(session, GROUP)

    await _file(builtin, staff_groups={"*": GROUP})
    assert [n.chat_id for n in await _unassigned(builtin)] == [LEAD]


@pytest.mark.parametrize("routes", [None, {}])
async def test_without_staff_groups_the_leads_are_told(
    builtin: World, routes: dict[str, int] | None
) -> None:
    await _link(builtin, "lena.lead", LEAD, StaffRole.LEAD)
    await _file(builtin, staff_groups=routes)
    assert [n.chat_id for n in await _unassigned(builtin)] == [LEAD]
