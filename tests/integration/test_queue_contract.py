"""One contract for every TicketQueue adapter: same behaviour, same errors, the same events.

Each adapter comes with its staff console (services/queue/console.py), which plays support."""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest

from services.db.engine import create_engine, create_sessionmaker
from services.db.models import TicketStatus
from services.queue.base import (
    Attachment,
    BodyFormat,
    DeletedEvent,
    MergedEvent,
    MovedEvent,
    NewTicket,
    OwnerEvent,
    Priority,
    QueueRejected,
    ReplyEvent,
    StatusEvent,
    TicketNotFound,
    TicketQueue,
)
from services.queue.builtin import BuiltinQueue
from services.queue.console import BuiltinConsole, RtConsole, StaffConsole
from services.queue.rt import RequestTrackerQueue
from tests.integration.rt_fixture import rt_server  # noqa: F401  (a fixture)


@pytest.fixture(
    params=[
        "builtin-sqlite",
        pytest.param("builtin-postgres", marks=pytest.mark.postgres),
        pytest.param("rt", marks=pytest.mark.rt),
    ]
)
async def adapter(
    request: pytest.FixtureRequest,
) -> AsyncIterator[tuple[TicketQueue, StaffConsole]]:
    """Every adapter behind the same port, with its staff console: the embedded queue (on both
    databases) and a real Request Tracker."""
    if request.param == "rt":
        rt = request.getfixturevalue("rt_server")
        adapter = RequestTrackerQueue(rt.base_url, rt.queue, token=rt.token)
        console = RtConsole(rt.base_url, rt.queue, user=rt.admin_user, password=rt.admin_password)
        yield adapter, console
        await console.close()
        await adapter.close()
        return
    url = request.getfixturevalue(
        "postgres_url" if request.param == "builtin-postgres" else "sqlite_url"
    )
    engine = create_engine(url)
    builtin = BuiltinQueue(create_sessionmaker(engine))
    yield builtin, BuiltinConsole(builtin, "root")
    await engine.dispose()


@pytest.fixture
def queue(adapter: tuple[TicketQueue, StaffConsole]) -> TicketQueue:
    return adapter[0]


@pytest.fixture
def console(adapter: tuple[TicketQueue, StaffConsole]) -> StaffConsole:
    return adapter[1]


def _new_ticket(requester: str | None = None, **overrides: object) -> NewTicket:
    values: dict[str, object] = {
        "reference": uuid.uuid4().hex,
        "requester": requester or f"merchant-{uuid.uuid4().hex[:8]}@example.com",
        "subject": "Не работает оплата картой",
        "body": "При оплате заказа №1024 покупатель видит ошибку 500.",
        "request_type": "technical",
        "category": "payments_delivery",
        "telegram_user_id": 5_000_000_001,
        "store": "shop.example.com",
        "plan": "site",
    }
    values.update(overrides)
    return NewTicket(**values)  # type: ignore[arg-type]


async def test_created_ticket_reads_back(queue: TicketQueue, console: StaffConsole) -> None:
    new = _new_ticket(attachments=(Attachment("screen.txt", "text/plain", "ошибка 500".encode()),))
    created = await queue.create_ticket(new)
    read = await queue.get_ticket(created.id)
    assert read.id == created.id
    assert read.subject == "Не работает оплата картой"
    assert read.requester == new.requester
    assert read.reference == new.reference
    assert read.created_at.tzinfo is not None
    assert read.status is TicketStatus.REGISTERED
    comments = await console.list_messages(created.id)
    # The merchant's words exactly, Cyrillic included (RT must not mangle the encoding).
    assert comments[0].body == "При оплате заказа №1024 покупатель видит ошибку 500."
    assert comments[0].author == new.requester
    assert [a.filename for a in comments[0].attachments] == ["screen.txt"]
    assert comments[0].attachments[0].content == "ошибка 500".encode()


async def test_the_due_date_filed_is_the_due_date_read_back(queue: TicketQueue) -> None:
    """The first-reaction deadline the merchant is told is the queue's due date (RT: Due), to
    the second; a ticket filed without one has none."""
    due = datetime(2026, 11, 26, 9, 30, 15, tzinfo=UTC)
    created = await queue.create_ticket(
        _new_ticket(
            first_reaction_due=due,
            resolution_due=due + timedelta(days=10),
            priority=Priority.HIGH,
            requester_name="Анна Петрова",
            store_name="Цветы",
            request_type_label="Технический вопрос",
            category_label="Оплата и доставка",
        )
    )
    assert created.due == due
    assert (await queue.get_ticket(created.id)).due == due
    found = await queue.find_by_reference(created.reference or "")
    assert found is not None and found.due == due
    assert (await queue.create_ticket(_new_ticket())).due is None


async def test_longest_subject_and_a_long_description_are_kept_whole(
    queue: TicketQueue, console: StaffConsole
) -> None:
    """What the wizard lets through reaches the queue unchanged: a subject of 100 Cyrillic
    letters (RT keeps 200 bytes of it) and a description far beyond one Telegram message."""
    from services.tickets import DESCRIPTION_MAX, SUBJECT_MAX, SUBJECT_MAX_BYTES

    subject = ("Неоплачиваемыйзаказ" * 6)[:SUBJECT_MAX]
    assert len(subject.encode()) == SUBJECT_MAX_BYTES
    line = "Шаг {}: открыть карточку товара, нажать «Купить», увидеть ошибку 500.\n"
    body = "".join(line.format(i) for i in range(1, 2_000))[: DESCRIPTION_MAX // 4].strip()
    created = await queue.create_ticket(_new_ticket(subject=subject, body=body))
    assert (await queue.get_ticket(created.id)).subject == subject
    comments = await console.list_messages(created.id)
    assert comments[0].body.strip() == body


async def test_same_reference_is_filed_once(queue: TicketQueue, console: StaffConsole) -> None:
    new = _new_ticket()
    first = await queue.create_ticket(new)
    again = await queue.create_ticket(new)
    assert again.id == first.id
    assert [t.id for t in await console.list_tickets(new.requester)] == [first.id]


async def test_find_by_reference(queue: TicketQueue) -> None:
    new = _new_ticket()
    created = await queue.create_ticket(new)
    found = await queue.find_by_reference(new.reference)
    assert found is not None and found.id == created.id
    assert await queue.find_by_reference(uuid.uuid4().hex) is None


async def test_lists_only_the_requesters_tickets_newest_first(
    queue: TicketQueue, console: StaffConsole
) -> None:
    requester = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    first = await queue.create_ticket(_new_ticket(requester))
    second = await queue.create_ticket(_new_ticket(requester, subject="Вторая проблема"))
    await queue.create_ticket(_new_ticket())
    assert [t.id for t in await console.list_tickets(requester)] == [second.id, first.id]


async def test_comment_from_the_merchant_is_kept(queue: TicketQueue, console: StaffConsole) -> None:
    created = await queue.create_ticket(_new_ticket())
    await queue.add_comment(
        created.id, "Скриншот во вложении", [Attachment("a.png", "image/png", b"\x89PNG")]
    )
    comments = await console.list_messages(created.id)
    assert comments[-1].body == "Скриншот во вложении"
    assert comments[-1].attachments[0].content == b"\x89PNG"


async def test_unknown_ticket_is_not_found(queue: TicketQueue) -> None:
    with pytest.raises(TicketNotFound):
        await queue.get_ticket("987654321")
    with pytest.raises(TicketNotFound):
        await queue.add_comment("987654321", "hello")
    with pytest.raises(TicketNotFound):
        await queue.events("not-a-number")
    with pytest.raises(TicketNotFound):
        await queue.events("987654321")


# --- the way back: frontdesk's events ---------------------------------------------------------


async def test_support_work_comes_as_frontdesks_events(
    queue: TicketQueue, console: StaffConsole
) -> None:
    created = await queue.create_ticket(_new_ticket())
    await queue.add_comment(created.id, "Сообщение заявителя")  # frontdesk's own: no event
    await console.reply(
        created.id,
        '<p>См. <a href="https://example.com/x">инструкцию</a></p>',
        [Attachment("../инструкция.txt", "text/plain", "шаги".encode())],
        BodyFormat.HTML,
    )
    await console.set_owner(created.id, console.name)
    await console.set_status(created.id, TicketStatus.WAITING)

    events = await queue.events(created.id)
    replies = [e for e in events if isinstance(e, ReplyEvent)]
    assert [(e.author, e.by_support) for e in replies] == [(console.name, True)]
    content = await replies[0].content()
    assert content.body_format is BodyFormat.HTML
    assert '<a href="https://example.com/x">инструкцию</a>' in content.body
    assert [(f.filename, f.content) for f in content.files] == [("инструкция.txt", "шаги".encode())]
    assert [(e.old, e.new) for e in events if isinstance(e, OwnerEvent)] == [(None, console.name)]
    statuses = [(e.old, e.new) for e in events if isinstance(e, StatusEvent)]
    assert statuses[-1] == (TicketStatus.OPEN, TicketStatus.WAITING) or statuses[-1] == (
        TicketStatus.REGISTERED,
        TicketStatus.WAITING,
    )
    assert all(e.ticket_id == created.id for e in events)
    assert [e.created_at for e in events] == sorted(e.created_at for e in events)
    assert len({e.id for e in events}) == len(events)
    assert await queue.events(created.id) == events  # ids stable between readings


async def test_tickets_that_leave_the_queue_are_missing_and_say_where_they_went(
    queue: TicketQueue, console: StaffConsole
) -> None:
    merged, survivor, moved, deleted, staying = [
        (await queue.create_ticket(_new_ticket())).id for _ in range(5)
    ]
    await console.merge(merged, survivor)
    await console.move(moved, "General")
    await console.delete(deleted)

    assert await queue.missing([merged, survivor, moved, deleted, staying]) == {
        merged,
        moved,
        deleted,
    }
    assert [(type(e), getattr(e, "into", None)) for e in await queue.events(merged)][-1] == (
        MergedEvent,
        survivor,
    )
    assert isinstance((await queue.events(moved))[-1], MovedEvent)
    assert isinstance((await queue.events(deleted))[-1], DeletedEvent)
    for gone in (merged, moved, deleted):
        with pytest.raises(TicketNotFound):
            await queue.get_ticket(gone)
    assert (await queue.get_ticket(staying)).id == staying


# --- the merchant's side: replies, closing, reopening, the conversation ------------------------


async def test_merchant_message_with_a_reference_is_posted_once(
    queue: TicketQueue, console: StaffConsole
) -> None:
    created = await queue.create_ticket(_new_ticket())
    reference = uuid.uuid4().hex
    photo = Attachment("фото.jpg", "image/jpeg", b"\xff\xd8\xff\xe0 jpeg")
    for _ in range(2):  # a retry after a timeout that came after the queue took it
        await queue.add_comment(
            created.id, "Вот скриншот\nвторая строка", [photo], reference=reference
        )
    await queue.add_comment(created.id, "Другое сообщение", reference=uuid.uuid4().hex)

    messages = await console.list_messages(created.id)
    assert len(messages) == 3  # the description and two messages, not three
    assert [a.content for a in messages[1].attachments] == [photo.content]
    # Never taken for support's reply by the sync, nor what the queue does in answer (RT opens
    # a new ticket on correspondence) for a specialist taking the ticket up.
    assert [
        e for e in await queue.events(created.id) if isinstance(e, ReplyEvent | StatusEvent)
    ] == []
    await console.set_status(created.id, TicketStatus.WAITING)  # support's own: seen
    [status] = [e for e in await queue.events(created.id) if isinstance(e, StatusEvent)]
    assert status.new is TicketStatus.WAITING


async def test_frontdesks_internal_note_is_neither_correspondence_nor_an_event(
    queue: TicketQueue, console: StaffConsole
) -> None:
    created = await queue.create_ticket(_new_ticket())
    reference = uuid.uuid4().hex
    note = "Клиент недоступен в Telegram: ответьте по электронной почте"
    try:
        for _ in range(2):  # a retry after a timeout that came after the queue took it
            await queue.add_internal_note(created.id, note, reference=reference)
    except QueueRejected as error:
        # RT without ShowTicketComments for frontdesk: posted once, then refused to go on.
        assert "ShowTicketComments" in str(error)
    messages = await console.list_messages(created.id)
    assert len(messages) == 1 and "недоступен" not in messages[0].body  # the description
    assert all("недоступен" not in e.body for e in await queue.conversation(created.id))
    assert [e for e in await queue.events(created.id) if isinstance(e, ReplyEvent)] == []
    with pytest.raises(TicketNotFound):
        await queue.add_internal_note("987654321", note, reference=uuid.uuid4().hex)


async def test_conversation_reads_both_sides_with_files_described(
    queue: TicketQueue, console: StaffConsole
) -> None:
    new = _new_ticket()
    created = await queue.create_ticket(new)
    await queue.add_comment(
        created.id,
        "Вот скриншот <b>ошибки</b>",
        [Attachment("скрин.png", "image/png", b"\x89PNG\r\n\x1a\n data")],
        reference=uuid.uuid4().hex,
    )
    await console.reply(
        created.id, "Посмотрим", [Attachment("ответ.txt", "text/plain", "шаги".encode())]
    )
    if isinstance(console, RtConsole):
        await console.note(created.id, "внутренняя заметка")  # never the merchant's to read

    entries = await queue.conversation(created.id)
    assert [(e.by_support, e.author) for e in entries] == [
        (False, new.requester),
        (False, new.requester),
        (True, console.name),
    ]
    assert "покупатель видит ошибку 500" in entries[0].body
    reply = entries[1]
    assert "Вот скриншот &lt;b&gt;ошибки&lt;/b&gt;" in reply.body or (
        reply.body == "Вот скриншот <b>ошибки</b>"
    )
    assert "frontdesk:" not in reply.body  # frontdesk's mark is taken out
    assert [a.filename for a in reply.attachments] == ["скрин.png"]
    assert "Посмотрим" in entries[2].body
    assert [e.created_at for e in entries] == sorted(e.created_at for e in entries)

    screenshot = await queue.attachment(created.id, reply.attachments[0].id)
    assert (screenshot.filename, screenshot.content) == ("скрин.png", b"\x89PNG\r\n\x1a\n data")
    [answer] = entries[2].attachments
    assert (await queue.attachment(created.id, answer.id)).content == "шаги".encode()


async def test_a_file_of_another_ticket_is_not_found(queue: TicketQueue) -> None:
    mine = await queue.create_ticket(_new_ticket())
    other = await queue.create_ticket(_new_ticket())
    await queue.add_comment(
        other.id,
        "чужое",
        [Attachment("secret.txt", "text/plain", b"secret")],
        reference=uuid.uuid4().hex,
    )
    [_, message] = await queue.conversation(other.id)
    with pytest.raises(TicketNotFound):
        await queue.attachment(mine.id, message.attachments[0].id)
    with pytest.raises(TicketNotFound):
        await queue.attachment(mine.id, "not-a-number")
    with pytest.raises(TicketNotFound):
        await queue.conversation("987654321")


async def test_requester_closes_and_reopens_without_an_echo(
    queue: TicketQueue, console: StaffConsole
) -> None:
    created = await queue.create_ticket(_new_ticket())
    await queue.resolve_by_requester(created.id)
    await queue.resolve_by_requester(created.id)  # twice: no harm
    assert (await queue.get_ticket(created.id)).status is TicketStatus.RESOLVED
    await queue.reopen(created.id)
    assert (await queue.get_ticket(created.id)).status is TicketStatus.OPEN
    # frontdesk's own doing: never told back to the merchant as support's.
    assert not [e for e in await queue.events(created.id) if isinstance(e, StatusEvent)]
    with pytest.raises(TicketNotFound):
        await queue.resolve_by_requester("987654321")


# --- a specialist's actions from Telegram, written by frontdesk on their behalf ----------------


async def test_a_specialists_reply_is_supports_by_them_once_and_never_an_event(
    queue: TicketQueue, console: StaffConsole
) -> None:
    created = await queue.create_ticket(_new_ticket())
    reference = uuid.uuid4().hex
    invoice = Attachment("счёт.pdf", "application/pdf", b"%PDF-1.4 invoice")
    for _ in range(2):  # a retry after a timeout that came after the queue took it
        await queue.reply_as_support(
            created.id, console.name, "Исправили, проверьте.", [invoice], reference=reference
        )
    support = [e for e in await queue.conversation(created.id) if e.by_support]
    assert len(support) == 1
    # RT keeps frontdesk's posts as HTML (the hidden mark), the builtin queue as text.
    assert re.sub(r"<[^>]+>", "", support[0].body).strip() == "Исправили, проверьте."
    assert [a.filename for a in support[0].attachments] == ["счёт.pdf"]
    if queue.name == "builtin":
        assert support[0].author == console.name
    # frontdesk tells the merchant itself: the sync never sees it.
    assert [e for e in await queue.events(created.id) if isinstance(e, ReplyEvent)] == []
    with pytest.raises(TicketNotFound):
        await queue.reply_as_support("987654321", console.name, "x", reference=uuid.uuid4().hex)


async def test_a_specialists_comment_is_internal_once_and_never_an_event(
    queue: TicketQueue, console: StaffConsole
) -> None:
    created = await queue.create_ticket(_new_ticket())
    reference = uuid.uuid4().hex
    for _ in range(2):
        await queue.note_as_support(created.id, console.name, "Проверить логи", reference=reference)
    assert all("Проверить логи" not in e.body for e in await queue.conversation(created.id))
    assert all("Проверить логи" not in m.body for m in await console.list_messages(created.id))
    assert [e for e in await queue.events(created.id) if isinstance(e, ReplyEvent)] == []
    with pytest.raises(TicketNotFound):
        await queue.note_as_support("987654321", console.name, "x", reference=uuid.uuid4().hex)


async def test_a_specialist_resolves_and_assigns_without_an_echo(
    queue: TicketQueue, console: StaffConsole
) -> None:
    created = await queue.create_ticket(_new_ticket())
    for _ in range(2):  # idempotent
        await queue.assign(created.id, console.name, author=console.name)
    assert (await queue.get_ticket(created.id)).owner == console.name
    for _ in range(2):
        await queue.resolve_as_support(created.id, console.name)
    assert (await queue.get_ticket(created.id)).status is TicketStatus.RESOLVED
    assert [
        e for e in await queue.events(created.id) if isinstance(e, StatusEvent | OwnerEvent)
    ] == []
    await queue.assign(created.id, None, author=console.name)
    assert (await queue.get_ticket(created.id)).owner is None
    with pytest.raises(TicketNotFound):
        await queue.resolve_as_support("987654321", console.name)
    with pytest.raises(TicketNotFound):
        await queue.assign("987654321", console.name, author=console.name)
