"""The Request Tracker adapter against a real RT 5 (scripts/rt-test-server.sh) and a fake one.

RT is shared by every test and every run: each test files under its own requester address and
references (uuid), and reads nothing it did not file. The specialist's side (replies, status,
owner) is played through REST2 as RT's superuser, as a specialist's web session would do.
The failure tests need no RT: a closed port and a tiny local aiohttp server stand in for it.
"""

from __future__ import annotations

import asyncio
import base64
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from aiohttp import web

from services.db.models import TicketStatus
from services.queue.base import (
    Attachment,
    BodyFormat,
    NewTicket,
    OwnerEvent,
    QueueRejected,
    QueueUnavailable,
    ReplyEvent,
    StatusEvent,
    TicketNotFound,
    TicketQueue,
)
from services.queue.console import RtConsole
from services.queue.rt import RequestTrackerQueue, ticket_sql_string
from tests.integration.rt_fixture import RtServer, mail_in, rt_server

__all__ = ["rt_server"]  # the session fixture, imported to be found here

PNG = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\xff\xfe\x00"


def _merchant() -> str:
    return f"merchant-{uuid.uuid4().hex[:12]}@example.com"


def _new_ticket(requester: str | None = None, **overrides: Any) -> NewTicket:
    values: dict[str, Any] = {
        "reference": f"fd-{uuid.uuid4().hex}",
        "requester": requester or _merchant(),
        "subject": "Не работает оплата картой",
        "body": "При оплате заказа №1024 покупатель видит ошибку 500.",
        "request_type": "technical",
        "category": "payments_delivery",
        "telegram_user_id": 5_000_000_001,
        "store": "shop.example.com",
        "plan": "site",
    }
    values.update(overrides)
    return NewTicket(**values)


@pytest.fixture
async def queue(rt_server: RtServer) -> AsyncIterator[RequestTrackerQueue]:
    adapter = RequestTrackerQueue(
        rt_server.base_url,
        rt_server.queue,
        user=rt_server.user,
        password=rt_server.password,
        timeout=15,
    )
    yield adapter
    await adapter.close()


@pytest.fixture
async def specialist(rt_server: RtServer) -> AsyncIterator[RtConsole]:
    console = RtConsole(
        rt_server.base_url, user=rt_server.admin_user, password=rt_server.admin_password
    )
    yield console
    await console.close()


# --- against the real RT ---------------------------------------------------------------------


@pytest.mark.rt
async def test_filed_ticket_reads_back_with_its_fields_and_attachment(
    queue: RequestTrackerQueue, specialist: RtConsole
) -> None:
    assert isinstance(queue, TicketQueue)
    new = _new_ticket(
        attachments=(
            Attachment("screen.png", "image/png", PNG),
            Attachment("лог.txt", "text/plain", "ошибка 500".encode()),
        )
    )
    before = datetime.now(UTC).replace(microsecond=0)

    created = await queue.create_ticket(new)

    read = await queue.get_ticket(created.id)
    assert read == created
    assert read.subject == "Не работает оплата картой"
    assert read.requester == new.requester
    assert read.reference == new.reference
    assert read.status is TicketStatus.REGISTERED
    assert read.owner is None
    assert read.created_at.tzinfo is not None
    assert before - timedelta(seconds=5) <= read.created_at <= datetime.now(UTC)
    assert await specialist.custom_fields(created.id) == {
        "FrontdeskRef": [new.reference],
        "RequestType": ["technical"],
        "Category": ["payments_delivery"],
        "Store": ["shop.example.com"],
        "Plan": ["site"],
        "TelegramUser": ["5000000001"],
        "PaidAgreement": [],  # set only for a modification the merchant agreed to pay
        # For the specialist; filed by services/filing.py (tests/integration/test_rt_promised.py)
        "StoreName": [],
        "RequestTypeLabel": [],
        "CategoryLabel": [],
        "ResolutionDue": [],
    }
    [description] = await specialist.list_messages(created.id)
    assert description.body == new.body
    assert description.author == new.requester
    assert [(a.filename, a.content_type, a.content) for a in description.attachments] == [
        ("screen.png", "image/png", PNG),
        ("лог.txt", "text/plain", "ошибка 500".encode()),
    ]


@pytest.mark.rt
async def test_optional_fields_may_be_left_out(
    queue: RequestTrackerQueue, specialist: RtConsole
) -> None:
    created = await queue.create_ticket(_new_ticket(store=None, plan=None))
    fields = await specialist.custom_fields(created.id)
    assert fields["Store"] == [] and fields["Plan"] == []


@pytest.mark.rt
async def test_same_reference_is_filed_once(
    queue: RequestTrackerQueue, specialist: RtConsole
) -> None:
    new = _new_ticket()
    first = await queue.create_ticket(new)
    again = await queue.create_ticket(new)
    assert again.id == first.id
    assert [t.id for t in await specialist.list_tickets(new.requester)] == [first.id]


@pytest.mark.rt
async def test_find_by_reference_quotes_the_reference(queue: RequestTrackerQueue) -> None:
    tricky = f"fd-{uuid.uuid4().hex[:8]}-it's a \\ 'quoted' \" ref OR 1=1"
    created = await queue.create_ticket(_new_ticket(reference=tricky))
    plain = await queue.create_ticket(_new_ticket())

    found = await queue.find_by_reference(tricky)
    assert found is not None and found.id == created.id
    assert found.reference == tricky
    found_plain = await queue.find_by_reference(plain.reference)
    assert found_plain is not None and found_plain.id == plain.id
    assert await queue.find_by_reference(f"fd-{uuid.uuid4().hex}") is None
    assert await queue.find_by_reference(tricky[:-1]) is None


@pytest.mark.rt
async def test_lists_only_the_requesters_tickets_newest_first(
    queue: RequestTrackerQueue, specialist: RtConsole
) -> None:
    requester = f"owner+{uuid.uuid4().hex[:8]}@example.com"
    first = await queue.create_ticket(_new_ticket(requester))
    second = await queue.create_ticket(_new_ticket(requester, subject="Вторая проблема"))
    await queue.create_ticket(_new_ticket())

    listed = await specialist.list_tickets(requester)
    assert [t.id for t in listed] == [second.id, first.id]
    assert {t.requester for t in listed} == {requester}
    # RT compares addresses without regard to case.
    assert [t.id for t in await specialist.list_tickets(requester.upper())] == [
        second.id,
        first.id,
    ]
    assert await specialist.list_tickets(_merchant()) == []


@pytest.mark.rt
async def test_correspondence_goes_both_ways_and_notes_stay_internal(
    queue: RequestTrackerQueue, specialist: RtConsole
) -> None:
    new = _new_ticket()
    created = await queue.create_ticket(new)

    await queue.add_comment(
        created.id, "Скриншот во вложении", [Attachment("a.png", "image/png", PNG)]
    )
    await specialist.note(created.id, "internal: check the payment gateway logs")
    await specialist.reply(created.id, "Здравствуйте! Проверяем платёжный шлюз.")

    comments = await specialist.list_messages(created.id)
    assert [(c.author, c.body) for c in comments] == [
        (new.requester, new.body),
        (new.requester, "Скриншот во вложении"),
        ("root", "Здравствуйте! Проверяем платёжный шлюз."),
    ]
    assert comments[1].attachments == (Attachment("a.png", "image/png", PNG),)
    assert comments[2].attachments == ()
    assert all(c.ticket_id == created.id for c in comments)
    assert [c.created_at for c in comments] == sorted(c.created_at for c in comments)

    # frontdesk's own messages are no events; the internal note is none either.
    events = await queue.events(created.id)
    replies = [e for e in events if isinstance(e, ReplyEvent)]
    assert [(e.author, e.by_support) for e in replies] == [("root", True)]
    content = await replies[0].content()
    assert (content.body, content.body_format) == (
        "Здравствуйте! Проверяем платёжный шлюз.",
        BodyFormat.TEXT,
    )


@pytest.mark.rt
async def test_specialists_html_reply_comes_as_written(
    queue: RequestTrackerQueue, specialist: RtConsole
) -> None:
    created = await queue.create_ticket(_new_ticket())
    html = '<p>Шлюз <b>исправлен</b>: <a href="https://example.com/status">статус</a>.</p>'
    await specialist.reply(created.id, html, body_format=BodyFormat.HTML)
    [reply] = [e for e in await queue.events(created.id) if isinstance(e, ReplyEvent)]
    content = await reply.content()
    assert content.body_format is BodyFormat.HTML
    assert '<a href="https://example.com/status">статус</a>' in content.body


@pytest.mark.rt
async def test_specialists_status_and_owner_changes_are_visible(
    queue: RequestTrackerQueue, specialist: RtConsole
) -> None:
    created = await queue.create_ticket(_new_ticket())
    since = created.updated_at

    await specialist.call("PUT", f"ticket/{created.id}", {"Status": "open", "Owner": "root"})
    opened = await queue.get_ticket(created.id)
    assert (opened.status, opened.owner) == (TicketStatus.OPEN, "root")
    assert opened.updated_at >= since

    await specialist.set_status(created.id, TicketStatus.RESOLVED)
    assert (await queue.get_ticket(created.id)).status is TicketStatus.RESOLVED

    events = await queue.events(created.id)
    # RT records the owner twice (column and role group): one event, RT's "Nobody" is None.
    assert [(e.old, e.new) for e in events if isinstance(e, OwnerEvent)] == [(None, "root")]
    assert [(e.old, e.new) for e in events if isinstance(e, StatusEvent)] == [
        (TicketStatus.REGISTERED, TicketStatus.OPEN),
        (TicketStatus.OPEN, TicketStatus.RESOLVED),
    ]


@pytest.mark.rt
async def test_changed_since_finds_updated_tickets(
    queue: RequestTrackerQueue, specialist: RtConsole
) -> None:
    created = await queue.create_ticket(_new_ticket())
    changed = await queue.changed_since(created.updated_at)
    assert created.id in [t.id for t in changed]
    assert all(t.updated_at >= created.updated_at for t in changed)

    await asyncio.sleep(1.1)  # RT keeps times to the second
    later = datetime.now(UTC)
    assert created.id not in [t.id for t in await queue.changed_since(later)]
    await specialist.reply(created.id, "Мы проверили, всё работает.")
    assert created.id in [t.id for t in await queue.changed_since(later)]

    with pytest.raises(ValueError):
        await queue.changed_since(datetime(2026, 1, 1))


@pytest.mark.rt
async def test_unknown_ticket_is_not_found(queue: RequestTrackerQueue) -> None:
    for call in (
        lambda: queue.get_ticket("987654321"),
        lambda: queue.add_comment("987654321", "hello"),
        lambda: queue.events("987654321"),
        lambda: queue.events("not-a-number"),
        lambda: queue.get_ticket("../queues/all"),
    ):
        with pytest.raises(TicketNotFound):
            await call()


@pytest.mark.rt
async def test_ticket_of_another_queue_is_not_found(
    queue: RequestTrackerQueue, specialist: RtConsole
) -> None:
    elsewhere = await specialist.call(
        "POST",
        "ticket",
        {"Queue": "General", "Subject": "internal", "Requestor": _merchant(), "Content": "x"},
    )
    with pytest.raises(TicketNotFound):
        await queue.get_ticket(str(elsewhere["id"]))
    with pytest.raises(TicketNotFound):
        await queue.add_comment(str(elsewhere["id"]), "hello")


@pytest.mark.rt
async def test_token_login_works_and_knows_its_own_messages(rt_server: RtServer) -> None:
    adapter = RequestTrackerQueue(rt_server.base_url, rt_server.queue, token=rt_server.token)
    try:
        new = _new_ticket()
        created = await adapter.create_ticket(new)
        await adapter.add_comment(created.id, "ещё вопрос")
        # The merchant's message is frontdesk's own doing: no reply event.
        events = await adapter.events(created.id)
        assert not [e for e in events if isinstance(e, ReplyEvent)]
    finally:
        await adapter.close()


@pytest.mark.rt
async def test_wrong_password_is_rejected(rt_server: RtServer) -> None:
    adapter = RequestTrackerQueue(
        rt_server.base_url, rt_server.queue, user=rt_server.user, password="wrong"
    )
    try:
        with pytest.raises(QueueRejected):
            await adapter.find_by_reference("anything")
    finally:
        await adapter.close()


@pytest.mark.rt
async def test_invalid_request_is_rejected(queue: RequestTrackerQueue) -> None:
    created = await queue.create_ticket(_new_ticket())
    with pytest.raises(QueueRejected):  # REST2 wants a file name for every attachment
        await queue.add_comment(created.id, "see file", [Attachment("", "text/plain", b"x")])


@pytest.mark.rt
async def test_only_privileged_users_and_the_staff_group_speak_for_support(
    rt_server: RtServer, queue: RequestTrackerQueue, specialist: RtConsole
) -> None:
    new = _new_ticket()
    created = await queue.create_ticket(new)
    await specialist.reply(created.id, "Ответ специалиста.")
    await mail_in(rt_server, created.id, new.requester, "Пишу сам себе из почты.")
    await mail_in(
        rt_server, created.id, f"stranger-{uuid.uuid4().hex[:6]}@example.com", "Я не поддержка."
    )
    await mail_in(rt_server, created.id, "contractor@example.com", "Подрядчик поддержки.")

    replies = [e for e in await queue.events(created.id) if isinstance(e, ReplyEvent)]
    assert [e.by_support for e in replies] == [True, False, False, False]
    assert replies[0].author == "root"

    with_staff = RequestTrackerQueue(
        rt_server.base_url,
        rt_server.queue,
        user=rt_server.user,
        password=rt_server.password,
        staff_group="Support Staff",
    )
    try:
        replies = [e for e in await with_staff.events(created.id) if isinstance(e, ReplyEvent)]
        assert [(e.author, e.by_support) for e in replies][1:] == [
            (new.requester, False),
            (replies[2].author, False),
            ("contractor@example.com", True),
        ]
        missing_group = RequestTrackerQueue(
            rt_server.base_url,
            rt_server.queue,
            user=rt_server.user,
            password=rt_server.password,
            staff_group="No Such Group",
        )
        with pytest.raises(QueueRejected):
            await missing_group.events(created.id)
        await missing_group.close()
    finally:
        await with_staff.close()


@pytest.mark.rt
async def test_ticket_that_left_the_queue_says_where_it_went(
    queue: RequestTrackerQueue, specialist: RtConsole
) -> None:
    from services.queue.base import DeletedEvent, MergedEvent, MovedEvent

    merged, survivor, moved, deleted, staying = [
        (await queue.create_ticket(_new_ticket())).id for _ in range(5)
    ]
    await specialist.merge(merged, survivor)
    await specialist.move(moved, "General")
    await specialist.delete(deleted)

    numbers = [merged, survivor, moved, deleted, staying]
    assert await queue.missing(numbers) == {merged, moved, deleted}
    [went] = await queue.events(merged)
    assert isinstance(went, MergedEvent) and went.into == survivor and went.author == "root"
    # frontdesk's account has no rights on queue General: the ticket is out of its sight.
    [gone] = await queue.events(moved)
    assert isinstance(gone, MovedEvent) and gone.queue is None
    [removed] = await queue.events(deleted)
    assert isinstance(removed, DeletedEvent) and removed.author == "root"
    assert await queue.events(survivor) == []  # its link to itself is no merge of it
    # Seen by an account that may see queue General, the move names it.
    [seen] = await specialist._rt.events(moved)
    assert isinstance(seen, MovedEvent) and seen.queue == "General"


@pytest.mark.rt
async def test_wrong_token_is_rejected(rt_server: RtServer) -> None:
    owner = rt_server.token.split("-")[1]
    adapter = RequestTrackerQueue(rt_server.base_url, rt_server.queue, token=f"1-{owner}-wrong")
    try:
        with pytest.raises(QueueRejected):
            await adapter.find_by_reference("anything")
        with pytest.raises(QueueRejected):
            await adapter.create_ticket(_new_ticket())
    finally:
        await adapter.close()


@pytest.mark.rt
async def test_queue_that_does_not_exist_is_rejected(rt_server: RtServer) -> None:
    adapter = RequestTrackerQueue(
        rt_server.base_url,
        f"No such queue {uuid.uuid4().hex[:6]}",
        user=rt_server.user,
        password=rt_server.password,
    )
    try:
        with pytest.raises(QueueRejected, match="does not exist"):
            await adapter.create_ticket(_new_ticket())
        with pytest.raises(QueueRejected):
            await adapter.changed_since(datetime.now(UTC))
        with pytest.raises(QueueRejected):
            await adapter.missing(["1"])
    finally:
        await adapter.close()


# --- unit: the TicketSQL literal, HTML bodies ---------------------------------------------------


def test_ticket_sql_string_escapes_quotes_and_backslashes() -> None:
    assert ticket_sql_string("plain") == "'plain'"
    assert ticket_sql_string("it's") == "'it\\'s'"
    assert ticket_sql_string("a\\b") == "'a\\\\b'"
    assert ticket_sql_string("\\'") == "'\\\\\\''"


# --- when RT is not there or misbehaves (no RT needed) -----------------------------------------


def _closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


async def test_closed_port_is_unavailable_quickly() -> None:
    adapter = RequestTrackerQueue(
        f"http://127.0.0.1:{_closed_port()}", user="frontdesk", password="x", timeout=5
    )
    try:
        started = time.monotonic()
        with pytest.raises(QueueUnavailable):
            await adapter.get_ticket("1")
        with pytest.raises(QueueUnavailable):
            await adapter.create_ticket(_new_ticket())
        assert time.monotonic() - started < 2
    finally:
        await adapter.close()


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
RELEASE = web.AppKey("release", asyncio.Event)


@pytest.fixture
async def fake_rt() -> AsyncIterator[Callable[[Handler], Awaitable[str]]]:
    """Starts a local server answering every request with the given handler; gives its URL."""
    runners: list[web.AppRunner] = []
    release = asyncio.Event()

    async def start(handler: Handler) -> str:
        async def guarded(request: web.Request) -> web.StreamResponse:
            return await handler(request)

        app = web.Application()
        app[RELEASE] = release
        app.router.add_route("*", "/{tail:.*}", guarded)
        runner = web.AppRunner(app, shutdown_timeout=1)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        port = runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    yield start
    release.set()  # lets a hanging handler finish
    for runner in runners:
        await runner.cleanup()


def _adapter(url: str, timeout: float = 5) -> RequestTrackerQueue:
    return RequestTrackerQueue(url, user="frontdesk", password="x", timeout=timeout)


async def _answer_500(request: web.Request) -> web.Response:
    return web.json_response({"message": "Internal Server Error"}, status=500)


async def _answer_garbage(request: web.Request) -> web.Response:
    return web.Response(text="{not json", content_type="application/json")


async def _answer_html(request: web.Request) -> web.Response:
    return web.Response(text="<html>RT login</html>", content_type="text/html")


async def _answer_wrong_shape(request: web.Request) -> web.Response:
    return web.json_response({"items": "nope", "total": 1})


async def _answer_binary(request: web.Request) -> web.Response:
    return web.Response(body=b"\xff\xfe\x00", content_type="application/json")


@pytest.mark.parametrize(
    "handler",
    [_answer_500, _answer_garbage, _answer_html, _answer_wrong_shape, _answer_binary],
    ids=["500", "malformed-json", "html", "wrong-shape", "not-utf8"],
)
async def test_misbehaving_rt_is_unavailable(
    fake_rt: Callable[[Handler], Awaitable[str]], handler: Handler
) -> None:
    adapter = _adapter(await fake_rt(handler))
    try:
        with pytest.raises(QueueUnavailable):
            await adapter.get_ticket("1")
        with pytest.raises(QueueUnavailable):
            await adapter.events("1")
        with pytest.raises(QueueUnavailable):
            await adapter.create_ticket(_new_ticket())
    finally:
        await adapter.close()


async def test_rt_hanging_past_the_timeout_is_unavailable(
    fake_rt: Callable[[Handler], Awaitable[str]],
) -> None:
    async def hang(request: web.Request) -> web.Response:
        await request.app[RELEASE].wait()
        return web.json_response({})

    adapter = _adapter(await fake_rt(hang), timeout=0.5)
    try:
        started = time.monotonic()
        with pytest.raises(QueueUnavailable, match=r"within 0\.5 s"):
            await adapter.get_ticket("1")
        assert time.monotonic() - started < 2
    finally:
        await adapter.close()


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (400, QueueRejected),
        (401, QueueRejected),
        (403, QueueRejected),
        (404, QueueRejected),  # no such queue, no REST2 there: a wrong RT_URL or RT_QUEUE
        (409, QueueRejected),
        (422, QueueRejected),
        (408, QueueUnavailable),
        (429, QueueUnavailable),
        (500, QueueUnavailable),
        (502, QueueUnavailable),
        (503, QueueUnavailable),
    ],
)
async def test_refusals_are_told_apart_from_outages(
    fake_rt: Callable[[Handler], Awaitable[str]], status: int, error: type[Exception]
) -> None:
    async def refuse(request: web.Request) -> web.Response:
        return web.json_response({"message": "Status 'bogus' isn't a valid status"}, status=status)

    adapter = _adapter(await fake_rt(refuse))
    try:
        with pytest.raises(error):
            await adapter.find_by_reference("fd-1")
        with pytest.raises(error):
            await adapter.create_ticket(_new_ticket())
        with pytest.raises(error):
            await adapter.changed_since(datetime.now(UTC))
    finally:
        await adapter.close()


async def test_missing_ticket_answer_is_not_found(
    fake_rt: Callable[[Handler], Awaitable[str]],
) -> None:
    async def rt(request: web.Request) -> web.Response:
        if request.path.endswith("/tickets"):  # the ticket is there when looked up...
            return web.json_response(
                {
                    "total": 1,
                    "items": [
                        {
                            "id": "7",
                            "Subject": "s",
                            "Status": "open",
                            "Created": "2026-11-25T06:00:00Z",
                            "LastUpdated": "2026-11-25T06:00:00Z",
                            "Owner": {"id": "Nobody"},
                            "Requestor": [{"id": "m@example.com", "EmailAddress": "m@example.com"}],
                            "CustomFields": [],
                        }
                    ],
                }
            )
        return web.json_response({"message": "Not Found"}, status=404)  # ...then gone

    adapter = _adapter(await fake_rt(rt))
    try:
        with pytest.raises(TicketNotFound):
            await adapter.add_comment("7", "hello")
    finally:
        await adapter.close()


async def test_a_given_session_is_left_open(
    fake_rt: Callable[[Handler], Awaitable[str]],
) -> None:
    url = await fake_rt(_answer_500)
    async with aiohttp.ClientSession() as session:
        adapter = RequestTrackerQueue(url, user="u", password="p", session=session)
        with pytest.raises(QueueUnavailable):
            await adapter.get_ticket("1")
        await adapter.close()
        assert not session.closed


def test_credentials_are_required_once() -> None:
    with pytest.raises(ValueError):
        RequestTrackerQueue("http://127.0.0.1:1")
    with pytest.raises(ValueError):
        RequestTrackerQueue("http://127.0.0.1:1", token="1-2-abc", user="u", password="p")
    with pytest.raises(ValueError):
        RequestTrackerQueue("http://127.0.0.1:1", token="not-a-token")
    assert RequestTrackerQueue("http://127.0.0.1:1", token="opaque", account="frontdesk")


def test_base64_helper_roundtrip() -> None:
    # The payload RT receives decodes back to the very bytes.
    from services.queue.rt import attachments_payload

    [payload] = attachments_payload([Attachment("a.bin", "application/octet-stream", PNG)])
    assert base64.b64decode(payload["FileContent"]) == PNG
