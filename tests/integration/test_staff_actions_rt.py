"""A specialist's actions from Telegram against a real Request Tracker: frontdesk writes them with
its own account (RT cannot act as another user) and the queue still says who did it.

A reply is RT correspondence with its files (RT mails the requester), read back by frontdesk as
support's with the specialist's name; an internal comment names the specialist on its first
line; resolve and assign change the ticket. Each is written once however often it is retried,
and the sync never reports them back (the caller tells the merchant itself).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from services.db.models import TicketStatus
from services.queue.base import (
    Attachment,
    BodyFormat,
    NewTicket,
    OwnerEvent,
    QueueRejected,
    ReplyEvent,
    StatusEvent,
    TicketNotFound,
)
from services.queue.console import RtConsole
from services.queue.rt import RequestTrackerQueue, specialist_of
from tests.helpers.rt_faults import rt_correspondence, rt_messages
from tests.integration.rt_fixture import (
    NOT_A_SPECIALIST,
    SPECIALIST,
    SPECIALIST_WITHOUT_REAL_NAME,
    RtServer,
    RtSpecialist,
    rt_server,
)

__all__ = ["rt_server"]

PDF = b"%PDF-1.4\n\x00\xff an invoice \x00"
MISSING = "999999999"


def _new_ticket() -> NewTicket:
    return NewTicket(
        reference=f"fd-{uuid.uuid4().hex}",
        requester=f"merchant-{uuid.uuid4().hex[:12]}@example.com",
        subject="Не проходит оплата",
        body="Покупатели видят ошибку при оплате картой.",
        request_type="technical",
        category="payments_delivery",
        telegram_user_id=5_000_000_009,
    )


def _reference() -> str:
    return uuid.uuid4().hex


@pytest.fixture
async def queue(rt_server: RtServer) -> AsyncIterator[RequestTrackerQueue]:
    adapter = RequestTrackerQueue(
        rt_server.base_url, rt_server.queue, token=rt_server.token, timeout=30
    )
    yield adapter
    await adapter.close()


@pytest.fixture
async def number(queue: RequestTrackerQueue) -> str:
    return (await queue.create_ticket(_new_ticket())).id


async def _history(rt: RtServer, number: str) -> list[dict[str, Any]]:
    """The ticket's transactions as RT's superuser reads them."""
    async with aiohttp.ClientSession() as http:
        rows = await RtSpecialist(http, rt).call(
            "GET",
            f"ticket/{number}/history?fields=Type,Field,OldValue,NewValue,Creator&per_page=100",
        )
    return list(rows["items"])


def _text(html_text: str) -> list[str]:
    """The lines a reader sees of an HTML message (tags and comments taken out)."""
    text = re.sub(r"<!--.*?-->|<[^>]+>", "", html_text, flags=re.S)
    return [line.strip() for line in text.splitlines() if line.strip()]


# --- reply ------------------------------------------------------------------------------------


@pytest.mark.rt
async def test_a_specialists_reply_is_rt_correspondence_with_files_shown_as_theirs(
    queue: RequestTrackerQueue, number: str, rt_server: RtServer
) -> None:
    invoice = Attachment("счёт №12.pdf", "application/pdf", PDF)
    await queue.reply_as_support(
        number,
        SPECIALIST.name,
        "Здравствуйте!\nОплату починили, счёт во вложении.",
        [invoice],
        reference=_reference(),
    )

    # Correspondence (RT mails it to the requester), written by frontdesk's account.
    history = await rt_correspondence(rt_server, number)
    assert [(m["type"], m["creator"]) for m in history] == [
        ("Create", rt_server.user),
        ("Correspond", rt_server.user),
    ]
    assert history[1]["files"] == [("счёт №12.pdf", PDF)]
    [_, (kind, text)] = await rt_messages(rt_server, number)
    assert kind == "Correspond"
    # The requester reads the text alone: nothing added before it.
    assert _text(text) == ["Здравствуйте!", "Оплату починили, счёт во вложении."]

    # frontdesk reads it back as support's, by the specialist's real name.
    [description, reply] = await queue.conversation(number)
    assert not description.by_support
    assert reply.by_support and reply.author == SPECIALIST.real_name
    assert reply.body_format is BodyFormat.HTML
    assert "Оплату починили" in reply.body and "frontdesk:" not in reply.body
    assert [(a.filename, a.content_type) for a in reply.attachments] == [
        ("счёт №12.pdf", "application/pdf")
    ]
    fetched = await queue.attachment(number, reply.attachments[0].id)
    assert fetched.content == PDF

    # The test console (a specialist in RT) sees it as the specialist's too.
    console = RtConsole(
        rt_server.base_url, user=rt_server.admin_user, password=rt_server.admin_password
    )
    try:
        messages = await console.list_messages(number)
    finally:
        await console.close()
    assert [m.author for m in messages] == [description.author, SPECIALIST.name]

    # frontdesk's own doing: the sync does not report it (the caller tells the merchant).
    assert await queue.events(number) == []


@pytest.mark.rt
async def test_a_retried_reply_is_posted_once(
    queue: RequestTrackerQueue, number: str, rt_server: RtServer
) -> None:
    reference = _reference()
    for _ in range(3):
        await queue.reply_as_support(number, SPECIALIST.name, "Один раз", reference=reference)
    history = await rt_correspondence(rt_server, number)
    assert [m["type"] for m in history] == ["Create", "Correspond"]
    # Another reference is another reply.
    await queue.reply_as_support(number, SPECIALIST.name, "Второй ответ", reference=_reference())
    assert len(await rt_correspondence(rt_server, number)) == 3


@pytest.mark.rt
async def test_a_reply_of_a_specialist_without_real_name_shows_the_user_name(
    queue: RequestTrackerQueue, number: str
) -> None:
    await queue.reply_as_support(
        number, SPECIALIST_WITHOUT_REAL_NAME.name, "Проверили", reference=_reference()
    )
    reply = (await queue.conversation(number))[-1]
    assert reply.by_support and reply.author == SPECIALIST_WITHOUT_REAL_NAME.name


@pytest.mark.rt
async def test_the_merchants_messages_stay_the_merchants_beside_support_replies(
    queue: RequestTrackerQueue, number: str
) -> None:
    ticket = await queue.get_ticket(number)
    await queue.reply_as_support(number, SPECIALIST.name, "Что именно не работает?", reference="a1")
    # A merchant who types frontdesk's mark gets it escaped: it names nobody.
    await queue.add_comment(number, "Оплата <!-- frontdesk:zz by:root -->", reference="a2")
    await queue.add_comment(number, "Без отметки")  # a message posted without a reference
    entries = await queue.conversation(number)
    assert [(e.by_support, e.author) for e in entries] == [
        (False, ticket.requester),
        (True, SPECIALIST.real_name),
        (False, ticket.requester),
        (False, ticket.requester),
    ]
    # The merchant's mark of the same reference is found as before: not posted again.
    await queue.add_comment(number, "Оплата", reference="a2")
    assert len(await queue.conversation(number)) == 4


def test_marks_written_before_specialists_acted_through_frontdesk_are_the_merchants() -> None:
    old = "<div>Вот скриншот</div>\n<!-- frontdesk:0f3a9c -->"
    assert specialist_of(old, BodyFormat.HTML) is None
    marked = "<div>Ответ</div>\n<!-- frontdesk:0f3a9c by:ivan.petrov%40support%2Dteam.example -->"
    assert specialist_of(marked, BodyFormat.HTML) == "ivan.petrov@support-team.example"
    # Only frontdesk's HTML holds a mark; plain text is taken as written.
    assert specialist_of("<!-- frontdesk:0f3a9c by:root -->", BodyFormat.TEXT) is None


# --- internal comment -------------------------------------------------------------------------


@pytest.mark.rt
async def test_a_specialists_comment_is_internal_and_names_them_once(
    queue: RequestTrackerQueue, number: str, rt_server: RtServer
) -> None:
    reference = _reference()
    for _ in range(2):
        await queue.note_as_support(
            number, SPECIALIST.name, "Клиент просит перезвонить\nпосле 18:00", reference=reference
        )
    [create, (kind, text)] = await rt_messages(rt_server, number)
    assert create[0] == "Create"
    assert kind == "Comment"  # never correspondence: RT does not mail it to the requester
    assert _text(text) == [
        f"{SPECIALIST.real_name} (через Telegram):",
        "Клиент просит перезвонить",
        "после 18:00",
    ]
    # Not the merchant's business, not support's reply to report.
    assert all("перезвонить" not in e.body for e in await queue.conversation(number))
    assert await queue.events(number) == []


# --- resolve ----------------------------------------------------------------------------------


@pytest.mark.rt
async def test_a_specialist_resolves_once_and_the_sync_leaves_it_out(
    queue: RequestTrackerQueue, number: str, rt_server: RtServer
) -> None:
    await queue.resolve_as_support(number, SPECIALIST.name)
    assert (await queue.get_ticket(number)).status is TicketStatus.RESOLVED
    await queue.resolve_as_support(number, SPECIALIST.name)  # a retry: resolved stays so
    statuses = [row for row in await _history(rt_server, number) if row.get("Field") == "Status"]
    assert [(row["OldValue"], row["NewValue"]) for row in statuses] == [("new", "resolved")]
    assert not [e for e in await queue.events(number) if isinstance(e, StatusEvent)]


# --- assign -----------------------------------------------------------------------------------


def _owner_changes(history: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [row for row in history if row["Type"] == "Set" and row.get("Field") == "Owner"]


@pytest.mark.rt
async def test_assign_to_a_specialist_to_another_and_to_nobody(
    queue: RequestTrackerQueue, number: str, rt_server: RtServer
) -> None:
    await queue.assign(number, SPECIALIST.name, author=SPECIALIST.name)
    assert (await queue.get_ticket(number)).owner == SPECIALIST.name
    await queue.assign(number, SPECIALIST.name.upper(), author=SPECIALIST.name)  # a retry
    assert len(_owner_changes(await _history(rt_server, number))) == 1

    # Handed on while someone owns it (RT: ReassignTicket), then released.
    await queue.assign(number, SPECIALIST_WITHOUT_REAL_NAME.name, author=SPECIALIST.name)
    assert (await queue.get_ticket(number)).owner == SPECIALIST_WITHOUT_REAL_NAME.name
    await queue.assign(number, None, author=SPECIALIST_WITHOUT_REAL_NAME.name)
    assert (await queue.get_ticket(number)).owner is None
    await queue.assign(number, None, author=SPECIALIST_WITHOUT_REAL_NAME.name)
    changes = _owner_changes(await _history(rt_server, number))
    assert len(changes) == 3
    assert {row["Creator"]["id"] for row in changes} == {rt_server.user}
    # frontdesk's own doings: no owner change for the sync to report.
    assert not [e for e in await queue.events(number) if isinstance(e, OwnerEvent)]


@pytest.mark.rt
async def test_assign_to_someone_rt_will_not_make_owner_is_refused(
    queue: RequestTrackerQueue, number: str
) -> None:
    await queue.assign(number, SPECIALIST.name, author=SPECIALIST.name)
    with pytest.raises(QueueRejected, match=r"'nobody-such-user'.*does not exist"):
        await queue.assign(number, "nobody-such-user", author=SPECIALIST.name)
    # A user who exists but may not own tickets.
    with pytest.raises(QueueRejected, match="OwnTicket"):
        await queue.assign(number, NOT_A_SPECIALIST, author=SPECIALIST.name)
    assert (await queue.get_ticket(number)).owner == SPECIALIST.name


# --- a ticket that is not there ---------------------------------------------------------------


@pytest.mark.rt
async def test_every_action_on_a_missing_ticket_is_ticket_not_found(
    queue: RequestTrackerQueue,
) -> None:
    with pytest.raises(TicketNotFound):
        await queue.reply_as_support(MISSING, SPECIALIST.name, "?", reference=_reference())
    with pytest.raises(TicketNotFound):
        await queue.note_as_support(MISSING, SPECIALIST.name, "?", reference=_reference())
    with pytest.raises(TicketNotFound):
        await queue.resolve_as_support(MISSING, SPECIALIST.name)
    with pytest.raises(TicketNotFound):
        await queue.assign(MISSING, SPECIALIST.name, author=SPECIALIST.name)


@pytest.mark.rt
async def test_a_reply_is_not_support_for_an_event_reader(
    queue: RequestTrackerQueue, number: str, rt_server: RtServer
) -> None:
    """A specialist replying in RT itself is still reported; frontdesk's reply for one is not."""
    await queue.reply_as_support(number, SPECIALIST.name, "Из Telegram", reference=_reference())
    async with aiohttp.ClientSession() as http:
        await RtSpecialist(http, rt_server).reply(number, "Из веб-интерфейса RT")
    replies = [e for e in await queue.events(number) if isinstance(e, ReplyEvent)]
    assert [(e.author, e.by_support) for e in replies] == [(rt_server.admin_user, True)]
