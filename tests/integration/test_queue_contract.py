"""One contract for every TicketQueue adapter: same behaviour, same errors."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import pytest

from services.db.engine import create_engine, create_sessionmaker
from services.queue.base import Attachment, NewTicket, TicketNotFound, TicketQueue
from services.queue.builtin import BuiltinQueue
from services.queue.rt import RequestTrackerQueue
from tests.integration.rt_fixture import rt_server  # noqa: F401  (a fixture)


@pytest.fixture(
    params=[
        "builtin-sqlite",
        pytest.param("builtin-postgres", marks=pytest.mark.postgres),
        pytest.param("rt", marks=pytest.mark.rt),
    ]
)
async def queue(request: pytest.FixtureRequest) -> AsyncIterator[TicketQueue]:
    """Every adapter behind the same port: the embedded queue (on both databases) and a real
    Request Tracker."""
    if request.param == "rt":
        rt = request.getfixturevalue("rt_server")
        adapter = RequestTrackerQueue(rt.base_url, rt.queue, token=rt.token)
        yield adapter
        await adapter.close()
        return
    url = request.getfixturevalue(
        "postgres_url" if request.param == "builtin-postgres" else "sqlite_url"
    )
    engine = create_engine(url)
    yield BuiltinQueue(create_sessionmaker(engine))
    await engine.dispose()


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


async def test_created_ticket_reads_back(queue: TicketQueue) -> None:
    new = _new_ticket(attachments=(Attachment("screen.txt", "text/plain", "ошибка 500".encode()),))
    created = await queue.create_ticket(new)
    read = await queue.get_ticket(created.id)
    assert read.id == created.id
    assert read.subject == "Не работает оплата картой"
    assert read.requester == new.requester
    assert read.reference == new.reference
    assert read.created_at.tzinfo is not None
    comments = await queue.list_comments(created.id)
    # The merchant's words exactly, Cyrillic included (RT must not mangle the encoding).
    assert comments[0].body == "При оплате заказа №1024 покупатель видит ошибку 500."
    assert [a.filename for a in comments[0].attachments] == ["screen.txt"]
    assert comments[0].attachments[0].content == "ошибка 500".encode()


async def test_same_reference_is_filed_once(queue: TicketQueue) -> None:
    new = _new_ticket()
    first = await queue.create_ticket(new)
    again = await queue.create_ticket(new)
    assert again.id == first.id
    assert [t.id for t in await queue.list_tickets(new.requester)] == [first.id]


async def test_find_by_reference(queue: TicketQueue) -> None:
    new = _new_ticket()
    created = await queue.create_ticket(new)
    found = await queue.find_by_reference(new.reference)
    assert found is not None and found.id == created.id
    assert await queue.find_by_reference(uuid.uuid4().hex) is None


async def test_lists_only_the_requesters_tickets_newest_first(queue: TicketQueue) -> None:
    requester = f"owner-{uuid.uuid4().hex[:8]}@example.com"
    first = await queue.create_ticket(_new_ticket(requester))
    second = await queue.create_ticket(_new_ticket(requester, subject="Вторая проблема"))
    await queue.create_ticket(_new_ticket())
    assert [t.id for t in await queue.list_tickets(requester)] == [second.id, first.id]


async def test_comment_from_the_merchant_is_kept(queue: TicketQueue) -> None:
    created = await queue.create_ticket(_new_ticket())
    await queue.add_comment(
        created.id, "Скриншот во вложении", [Attachment("a.png", "image/png", b"\x89PNG")]
    )
    comments = await queue.list_comments(created.id)
    assert comments[-1].body == "Скриншот во вложении"
    assert comments[-1].attachments[0].content == b"\x89PNG"


async def test_unknown_ticket_is_not_found(queue: TicketQueue) -> None:
    with pytest.raises(TicketNotFound):
        await queue.get_ticket("987654321")
    with pytest.raises(TicketNotFound):
        await queue.add_comment("987654321", "hello")
    with pytest.raises(TicketNotFound):
        await queue.list_comments("not-a-number")
