"""A merchant's messages on their ticket (services/replies.py): accepted into the reply outbox,
posted to the queue by the worker exactly once and in order, confirmed in the chat; and the
conversation read back. On both databases, with the builtin queue (RT: test_replies_rt.py)."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import merchants, replies
from services.db.models import ReplyOutbox, Ticket, TicketStatus
from services.notices import ReplyAdded, ReplyDelayed, ReplyRefused
from services.queue.base import Attachment, QueueRejected, QueueUnavailable
from services.queue.builtin import BuiltinQueue
from services.queue.console import BuiltinConsole
from services.replies import (
    EmptyReply,
    NotReopenable,
    NotYourTicket,
    ReplyKind,
    TicketClosed,
    TooManyFiles,
)
from tests.helpers.filing import Clock, filing_worker, register_merchant, submit_request
from tests.helpers.notices import written
from tests.helpers.replies import FakeFiles, reply_worker

PHOTO = b"\xff\xd8\xff\xe0 a photo of the error"


class FlakyQueue(BuiltinQueue):
    """The builtin queue with faults on demand: ``down`` (nothing reaches it), ``lose_answer``
    (it takes the message, then the answer is lost: a timeout after it accepted), ``refusing``
    (credentials revoked)."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.down = False
        self.lose_answer = False
        self.refusing = False
        self.posts = 0

    async def add_comment(
        self,
        ticket_id: str,
        body: str,
        attachments: Sequence[Attachment] = (),
        *,
        reference: str | None = None,
    ) -> None:
        if self.refusing:
            raise QueueRejected("RT answered POST correspond with 401")
        if self.down:
            raise QueueUnavailable("connection refused")
        self.posts += 1
        await super().add_comment(ticket_id, body, attachments, reference=reference)
        if self.lose_answer:
            raise QueueUnavailable("RT did not answer POST correspond within 10 s")


@pytest.fixture
def queue(sessionmaker: async_sessionmaker[AsyncSession]) -> FlakyQueue:
    return FlakyQueue(sessionmaker)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC) + timedelta(seconds=5))


async def _registered_ticket(
    sessionmaker: async_sessionmaker[AsyncSession], queue: BuiltinQueue, clock: Clock
) -> tuple[merchants.MerchantProfile, int, str]:
    """A merchant's ticket, filed and registered in the queue: (merchant, id, queue number)."""
    filed = await submit_request(sessionmaker, f"ref-{clock.now.timestamp()}")
    assert await filing_worker(sessionmaker, queue, clock).run_once() == 1
    async with sessionmaker() as session:
        merchant = await register_merchant(session)
        ticket = await session.get_one(Ticket, filed.id)
        assert ticket.queue_ticket_id is not None
        return merchant, ticket.id, ticket.queue_ticket_id


async def _rows(sessionmaker: async_sessionmaker[AsyncSession]) -> list[ReplyOutbox]:
    async with sessionmaker() as session:
        return list(await session.scalars(select(ReplyOutbox).order_by(ReplyOutbox.id)))


async def _status(sessionmaker: async_sessionmaker[AsyncSession], ticket_id: int) -> TicketStatus:
    async with sessionmaker() as session:
        return (await session.get_one(Ticket, ticket_id)).status


async def test_reply_with_a_photo_reaches_the_queue_as_the_requesters_message_and_is_confirmed(
    sessionmaker: async_sessionmaker[AsyncSession], queue: FlakyQueue, clock: Clock
) -> None:
    merchant, ticket_id, number = await _registered_ticket(sessionmaker, queue, clock)
    files = FakeFiles()
    photo = files.add("photo-1", PHOTO, "photo_1.jpg", "image/jpeg")
    async with sessionmaker() as session:
        accepted = await replies.add_reply(
            session,
            merchant=merchant,
            ticket_id=ticket_id,
            key="chat:101",
            text="Вот скриншот ошибки",
            files=[photo],
        )
    assert (accepted.number, accepted.duplicate, accepted.done) == (number, False, False)
    # A retried update (or a double tap) is the same reply.
    async with sessionmaker() as session:
        again = await replies.add_reply(
            session, merchant=merchant, ticket_id=ticket_id, key="chat:101", text="Вот скриншот"
        )
    assert (again.id, again.duplicate) == (accepted.id, True)

    worker = reply_worker(sessionmaker, queue, files, clock)
    assert await worker.run_once() == 1
    assert await worker.run_once() == 0

    messages = await BuiltinConsole(queue, "root").list_messages(number)
    assert [(m.author, m.body) for m in messages[1:]] == [
        (merchants.requester_for(merchant.telegram_id, None), "Вот скриншот ошибки")
    ]
    assert [(a.filename, a.content) for a in messages[1].attachments] == [("photo_1.jpg", PHOTO)]
    # frontdesk's own: never echoed back as support's reply.
    assert not [e for e in await queue.events(number) if type(e).__name__ == "ReplyEvent"]
    [added] = await written(sessionmaker, "reply_added")
    assert added.body == ReplyAdded(
        number=number, subject="Ошибка 500 в корзине", action=ReplyKind.REPLY, files=1
    )
    assert (added.chat_id, added.ticket_id, added.key) == (
        merchant.telegram_id,
        ticket_id,
        f"reply_added:{accepted.id}",
    )
    [row] = await _rows(sessionmaker)
    assert row.done_at is not None


async def test_another_merchants_ticket_is_refused_and_nothing_written(
    sessionmaker: async_sessionmaker[AsyncSession], queue: FlakyQueue, clock: Clock
) -> None:
    _, ticket_id, _ = await _registered_ticket(sessionmaker, queue, clock)
    async with sessionmaker() as session:
        stranger = await merchants.get_or_register(
            session, telegram_id=7_000_000_999, full_name="Чужой", username=None
        )
        for kind in ReplyKind:
            with pytest.raises(NotYourTicket):
                await replies.add_reply(
                    session,
                    merchant=stranger,
                    ticket_id=ticket_id,
                    key=f"x:{kind}",
                    text="hi",
                    kind=kind,
                )
        with pytest.raises(NotYourTicket):
            await replies.add_reply(
                session, merchant=stranger, ticket_id=987654, key="x:none", text="hi"
            )
        with pytest.raises(NotYourTicket):
            await replies.read_conversation(session, queue, merchant=stranger, ticket_id=ticket_id)
        with pytest.raises(NotYourTicket):
            await replies.read_attachment(
                session, queue, merchant=stranger, ticket_id=ticket_id, attachment_id="1"
            )
    assert await _rows(sessionmaker) == []


async def test_a_reply_to_a_pending_ticket_waits_for_filing_then_follows_it(
    sessionmaker: async_sessionmaker[AsyncSession], queue: FlakyQueue, clock: Clock
) -> None:
    filed = await submit_request(sessionmaker, "pending-then-reply")
    async with sessionmaker() as session:
        merchant = await register_merchant(session)
        accepted = await replies.add_reply(
            session, merchant=merchant, ticket_id=filed.id, key="chat:5", text="И ещё: ошибка 502"
        )
        conversation = await replies.read_conversation(
            session, queue, merchant=merchant, ticket_id=filed.id
        )
    assert accepted.waits_for_filing
    assert conversation.number is None
    assert [e.body for e in conversation.entries] == ["Шаги: открыть корзину."]
    assert [(w.id, w.text) for w in conversation.waiting] == [(accepted.id, "И ещё: ошибка 502")]

    worker = reply_worker(sessionmaker, queue, FakeFiles(), clock)
    assert await worker.run_once() == 0  # not in the queue yet: nothing to add it to
    assert await filing_worker(sessionmaker, queue, clock).run_once() == 1
    assert await worker.run_once() == 1
    async with sessionmaker() as session:
        number = (await session.get_one(Ticket, filed.id)).queue_ticket_id
    assert number is not None
    bodies = [m.body for m in await BuiltinConsole(queue, "root").list_messages(number)]
    assert bodies == ["Шаги: открыть корзину.", "И ещё: ошибка 502"]
    assert [n.body.number for n in await written(sessionmaker, "reply_added")] == [number]  # type: ignore[union-attr]


async def test_close_then_reopen_by_the_merchant_within_the_rules(
    sessionmaker: async_sessionmaker[AsyncSession], queue: FlakyQueue, clock: Clock
) -> None:
    merchant, ticket_id, number = await _registered_ticket(sessionmaker, queue, clock)
    worker = reply_worker(sessionmaker, queue, FakeFiles(), clock)
    async with sessionmaker() as session:
        with pytest.raises(NotReopenable):  # open: nothing to reopen
            await replies.add_reply(
                session, merchant=merchant, ticket_id=ticket_id, key="r0", kind=ReplyKind.REOPEN
            )
        await replies.add_reply(
            session, merchant=merchant, ticket_id=ticket_id, key="close:1", kind=ReplyKind.CLOSE
        )
    assert await worker.run_once() == 1
    assert await _status(sessionmaker, ticket_id) is TicketStatus.RESOLVED
    assert (await queue.get_ticket(number)).status is TicketStatus.RESOLVED

    async with sessionmaker() as session:
        for kind in (ReplyKind.REPLY, ReplyKind.CORRECTION, ReplyKind.CLOSE):
            with pytest.raises(TicketClosed):
                await replies.add_reply(
                    session,
                    merchant=merchant,
                    ticket_id=ticket_id,
                    key=f"k{kind}",
                    text="a",
                    kind=kind,
                )
        conversation = await replies.read_conversation(
            session, queue, merchant=merchant, ticket_id=ticket_id
        )
        assert conversation.actions == {ReplyKind.REOPEN}
        await replies.add_reply(
            session, merchant=merchant, ticket_id=ticket_id, key="reopen:1", kind=ReplyKind.REOPEN
        )
    assert await worker.run_once() == 1
    assert await _status(sessionmaker, ticket_id) is TicketStatus.OPEN
    assert (await queue.get_ticket(number)).status is TicketStatus.OPEN
    assert [n.body.action for n in await written(sessionmaker, "reply_added")] == [  # type: ignore[union-attr]
        ReplyKind.CLOSE,
        ReplyKind.REOPEN,
    ]
    # Not told back as support's status change.
    assert not [e for e in await queue.events(number) if type(e).__name__ == "StatusEvent"]

    async with sessionmaker() as session:
        ticket = await session.get_one(Ticket, ticket_id)
        ticket.status = TicketStatus.REJECTED
        await session.commit()
        with pytest.raises(NotReopenable):
            await replies.add_reply(
                session,
                merchant=merchant,
                ticket_id=ticket_id,
                key="reopen:2",
                kind=ReplyKind.REOPEN,
            )
    assert replies.actions(TicketStatus.REJECTED) == frozenset()


async def test_a_timeout_after_the_queue_took_the_reply_does_not_post_it_twice(
    sessionmaker: async_sessionmaker[AsyncSession], queue: FlakyQueue, clock: Clock
) -> None:
    merchant, ticket_id, number = await _registered_ticket(sessionmaker, queue, clock)
    async with sessionmaker() as session:
        await replies.add_reply(
            session, merchant=merchant, ticket_id=ticket_id, key="m:1", text="Один раз"
        )
    worker = reply_worker(sessionmaker, queue, FakeFiles(), clock)
    queue.lose_answer = True
    assert await worker.run_once() == 1
    [row] = await _rows(sessionmaker)
    assert row.done_at is None and "QueueUnavailable" in (row.last_error or "")
    [delayed] = await written(sessionmaker, "reply_delayed")
    assert delayed.body == ReplyDelayed(
        number=number, subject="Ошибка 500 в корзине", action=ReplyKind.REPLY
    )

    queue.lose_answer = False
    clock.now += timedelta(minutes=5)
    assert await worker.run_once() == 1
    assert queue.posts == 2  # asked twice...
    bodies = [m.body for m in await BuiltinConsole(queue, "root").list_messages(number)]
    assert bodies.count("Один раз") == 1  # ...posted once
    assert len(await written(sessionmaker, "reply_added")) == 1


async def test_replies_go_in_order_and_a_refusal_is_told_once_and_logged(
    sessionmaker: async_sessionmaker[AsyncSession],
    queue: FlakyQueue,
    clock: Clock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    merchant, ticket_id, number = await _registered_ticket(sessionmaker, queue, clock)
    files = FakeFiles()
    slow = files.add("slow", b"%PDF-1.4", "invoice.pdf", "application/pdf")
    files.failing.add("slow")  # Telegram does not hand it over this time
    async with sessionmaker() as session:
        for n, (text, attached) in enumerate([("первое", [slow]), ("второе", [])]):
            await replies.add_reply(
                session,
                merchant=merchant,
                ticket_id=ticket_id,
                key=f"o:{n}",
                text=text,
                files=attached,
            )
    worker = reply_worker(sessionmaker, queue, files, clock)
    assert await worker.run_once() == 1  # the first only; the second waits its turn
    assert queue.posts == 0
    files.failing.clear()
    clock.now += timedelta(minutes=5)
    assert await worker.run_once() == 1
    assert await worker.run_once() == 1
    bodies = [m.body for m in await BuiltinConsole(queue, "root").list_messages(number)]
    assert bodies[1:] == ["первое", "второе"]

    queue.refusing = True
    async with sessionmaker() as session:
        await replies.add_reply(
            session, merchant=merchant, ticket_id=ticket_id, key="o:3", text="третье"
        )
    with caplog.at_level(logging.ERROR, logger="services.replies"):
        assert await worker.run_once() == 1
    assert "refused" in caplog.text
    clock.now += timedelta(hours=1)
    assert await worker.run_once() == 0  # no retry of a refusal until an operator acts
    [refused] = await written(sessionmaker, "reply_refused")
    assert refused.body == ReplyRefused(
        number=number, subject="Ошибка 500 в корзине", action=ReplyKind.REPLY
    )
    async with sessionmaker() as session:
        conversation = await replies.read_conversation(
            session, queue, merchant=merchant, ticket_id=ticket_id
        )
        assert [(w.text, w.refused) for w in conversation.waiting] == [("третье", True)]
        queue.refusing = False
        assert await replies.retry_refused(session, ticket_id=ticket_id) == 1
    assert await worker.run_once() == 1
    assert len(await written(sessionmaker, "reply_refused")) == 1


async def test_correction_is_a_new_message_and_unreadable_files_are_named(
    sessionmaker: async_sessionmaker[AsyncSession], queue: FlakyQueue, clock: Clock
) -> None:
    merchant, ticket_id, number = await _registered_ticket(sessionmaker, queue, clock)
    files = FakeFiles()
    gone = files.add("gone", b"x", "huge.zip", "application/zip")
    files.gone.add("gone")
    async with sessionmaker() as session:
        await replies.add_reply(
            session,
            merchant=merchant,
            ticket_id=ticket_id,
            key="edit:7",
            text="Ошибка 502, не 500",
            files=[gone],
            kind=ReplyKind.CORRECTION,
        )
    assert await reply_worker(sessionmaker, queue, files, clock).run_once() == 1
    messages = await BuiltinConsole(queue, "root").list_messages(number)
    assert messages[0].body == "Шаги: открыть корзину."  # never overwritten
    assert messages[-1].body.startswith(replies.CORRECTION_HEADER)
    assert "Ошибка 502, не 500" in messages[-1].body and "huge.zip" in messages[-1].body
    assert messages[-1].attachments == ()
    [added] = await written(sessionmaker, "reply_added")
    assert added.body.action is ReplyKind.CORRECTION  # type: ignore[union-attr]
    assert added.body.files == 0  # type: ignore[union-attr]  # the one it could post


async def test_empty_or_overfull_replies_are_refused(
    sessionmaker: async_sessionmaker[AsyncSession], queue: FlakyQueue, clock: Clock
) -> None:
    merchant, ticket_id, _ = await _registered_ticket(sessionmaker, queue, clock)
    files = FakeFiles()
    many = [files.add(f"f{n}", b"x", f"{n}.png", "image/png") for n in range(11)]
    async with sessionmaker() as session:
        with pytest.raises(EmptyReply):
            await replies.add_reply(
                session, merchant=merchant, ticket_id=ticket_id, key="e", text="  "
            )
        with pytest.raises(TooManyFiles):
            await replies.add_reply(
                session, merchant=merchant, ticket_id=ticket_id, key="f", files=many
            )
        assert await session.scalar(select(func.count()).select_from(ReplyOutbox)) == 0


async def test_conversation_latest_first_with_files_to_fetch(
    sessionmaker: async_sessionmaker[AsyncSession], queue: FlakyQueue, clock: Clock
) -> None:
    merchant, ticket_id, number = await _registered_ticket(sessionmaker, queue, clock)
    console = BuiltinConsole(queue, "root")
    await console.reply(
        number, "Пришлите скриншот", [Attachment("how.txt", "text/plain", b"steps")]
    )
    files = FakeFiles()
    photo = files.add("p", PHOTO, "photo.jpg", "image/jpeg")
    async with sessionmaker() as session:
        await replies.add_reply(
            session, merchant=merchant, ticket_id=ticket_id, key="c:1", text="Вот", files=[photo]
        )
    assert await reply_worker(sessionmaker, queue, files, clock).run_once() == 1
    async with sessionmaker() as session:
        conversation = await replies.read_conversation(
            session, queue, merchant=merchant, ticket_id=ticket_id, limit=2
        )
        assert conversation.total == 3 and conversation.waiting == []
        assert [(e.by_support, e.body) for e in conversation.entries] == [
            (False, "Вот"),
            (True, "Пришлите скриншот"),
        ]
        [info] = conversation.entries[0].attachments
        assert (info.filename, info.size) == ("photo.jpg", len(PHOTO))
        fetched = await replies.read_attachment(
            session, queue, merchant=merchant, ticket_id=ticket_id, attachment_id=info.id
        )
        assert fetched.content == PHOTO


async def test_frontdesk_outbox_retry_re_drives_refused_replies_too(
    sqlite_url: str, clock: Clock
) -> None:
    import asyncio
    import os
    import sys

    from services.db.engine import create_engine, create_sessionmaker

    engine = create_engine(sqlite_url)
    sessionmaker = create_sessionmaker(engine)
    try:
        queue = FlakyQueue(sessionmaker)
        merchant, ticket_id, _ = await _registered_ticket(sessionmaker, queue, clock)
        async with sessionmaker() as session:
            await replies.add_reply(
                session, merchant=merchant, ticket_id=ticket_id, key="cli:1", text="текст"
            )
        queue.refusing = True
        assert await reply_worker(sessionmaker, queue, FakeFiles(), clock).run_once() == 1
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "bot",
            "outbox",
            "retry",
            env={**os.environ, "BOT_TOKEN": "123:cli-test", "DATABASE_URL": sqlite_url},
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await process.communicate()
        assert process.returncode == 0, err.decode()
        assert out.decode().splitlines() == [
            "frontdesk: 0 refused filing(s) re-driven",
            "frontdesk: 1 refused reply(ies) re-driven",
        ]
        [row] = await _rows(sessionmaker)
        assert row.refused_at is None
    finally:
        await engine.dispose()


async def test_a_close_on_its_way_counts_already(
    sessionmaker: async_sessionmaker[AsyncSession], queue: FlakyQueue, clock: Clock
) -> None:
    merchant, ticket_id, _ = await _registered_ticket(sessionmaker, queue, clock)
    async with sessionmaker() as session:
        first = await replies.add_reply(
            session, merchant=merchant, ticket_id=ticket_id, key="close:a", kind=ReplyKind.CLOSE
        )
        # Close pressed again on another message before the queue has it: the same close.
        second = await replies.add_reply(
            session, merchant=merchant, ticket_id=ticket_id, key="close:b", kind=ReplyKind.CLOSE
        )
        assert (second.id, second.duplicate) == (first.id, True)
        with pytest.raises(TicketClosed):
            await replies.add_reply(
                session, merchant=merchant, ticket_id=ticket_id, key="late", text="ещё"
            )
        # Reopening right away is taken, in order, after the close.
        await replies.add_reply(
            session, merchant=merchant, ticket_id=ticket_id, key="reopen:a", kind=ReplyKind.REOPEN
        )
    worker = reply_worker(sessionmaker, queue, FakeFiles(), clock)
    assert await worker.run_once() == 1
    assert await worker.run_once() == 1
    assert await _status(sessionmaker, ticket_id) is TicketStatus.OPEN
    assert [n.body.action for n in await written(sessionmaker, "reply_added")] == [  # type: ignore[union-attr]
        ReplyKind.CLOSE,
        ReplyKind.REOPEN,
    ]


async def test_a_worker_dying_after_the_queue_took_the_reply_leaves_it_to_the_next_once(
    sessionmaker: async_sessionmaker[AsyncSession],
    queue: FlakyQueue,
    clock: Clock,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    merchant, ticket_id, number = await _registered_ticket(sessionmaker, queue, clock)
    async with sessionmaker() as session:
        await replies.add_reply(
            session, merchant=merchant, ticket_id=ticket_id, key="crash:1", text="Не дважды"
        )

    async def crash(*args: object, **kwargs: object) -> bool:
        raise RuntimeError("process killed between the queue's answer and the commit")

    monkeypatch.setattr(replies.notices, "enqueue", crash)
    worker = reply_worker(sessionmaker, queue, FakeFiles(), clock)
    with pytest.raises(RuntimeError):
        await worker.run_once()
    monkeypatch.undo()
    assert await worker.run_once() == 0  # its lease still holds the row
    clock.now += timedelta(minutes=3)  # the lease lapsed: another worker takes it up
    assert await reply_worker(sessionmaker, queue, FakeFiles(), clock).run_once() == 1
    bodies = [m.body for m in await BuiltinConsole(queue, "root").list_messages(number)]
    assert bodies.count("Не дважды") == 1 and queue.posts == 2
    assert len(await written(sessionmaker, "reply_added")) == 1


async def test_a_ticket_merged_into_another_requesters_does_not_show_their_conversation(
    sessionmaker: async_sessionmaker[AsyncSession], queue: FlakyQueue, clock: Clock
) -> None:
    from services.queue.base import NewTicket

    merchant, ticket_id, number = await _registered_ticket(sessionmaker, queue, clock)
    other = await queue.create_ticket(
        NewTicket(
            reference="someone-else",
            requester="other@example.com",
            subject="Чужое",
            body="Чужая переписка: пароль 12345",
            request_type="technical",
            category="system_error",
            telegram_user_id=1,
        )
    )
    console = BuiltinConsole(queue, "root")
    await console.merge(number, other.id)
    async with sessionmaker() as session:
        ticket = await session.get_one(Ticket, ticket_id)
        ticket.queue_ticket_id = other.id  # as the sync records a merge
        await session.commit()
        conversation = await replies.read_conversation(
            session, queue, merchant=merchant, ticket_id=ticket_id
        )
        with pytest.raises(NotYourTicket):
            await replies.read_attachment(
                session, queue, merchant=merchant, ticket_id=ticket_id, attachment_id="1"
            )
    assert conversation.entries == [] and conversation.number == other.id
