"""A merchant's messages on their ticket against a real Request Tracker: a reply with a photo
reaches RT as the requester's correspondence with the attachment (RT's history checked as a
specialist sees it), exactly once when RT's answer is lost, close and reopen, the conversation
read back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import replies
from services.db.models import ReplyKind, Ticket, TicketStatus
from services.merchants import requester_for
from services.queue.rt import RequestTrackerQueue
from tests.helpers.filing import AheadClock, filing_worker, register_merchant, submit_request
from tests.helpers.notices import written
from tests.helpers.replies import FakeFiles, reply_worker
from tests.helpers.rt_faults import FaultProxy, rt_correspondence
from tests.integration.rt_fixture import RtServer, RtSpecialist, rt_server

__all__ = ["rt_server"]

pytestmark = [pytest.mark.rt, pytest.mark.xdist_group("rt-faults")]

PHOTO = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00 a photo \x00\xff of the error"


@pytest.fixture
async def proxy(rt_server: RtServer) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(rt_server.base_url) as running:
        yield running


async def _filed(
    sessionmaker: async_sessionmaker[AsyncSession], queue: RequestTrackerQueue, clock: AheadClock
) -> tuple[Any, int, str]:
    filed = await submit_request(sessionmaker, f"replies-rt-{uuid.uuid4().hex[:12]}")
    assert await filing_worker(sessionmaker, queue, clock).run_once() == 1
    async with sessionmaker() as session:
        merchant = await register_merchant(session)
        number = (await session.get_one(Ticket, filed.id)).queue_ticket_id
    assert number is not None
    return merchant, filed.id, number


async def test_reply_with_a_photo_reaches_rt_as_correspondence_with_the_attachment(
    sessionmaker: async_sessionmaker[AsyncSession], rt_server: RtServer
) -> None:
    queue = RequestTrackerQueue(rt_server.base_url, rt_server.queue, token=rt_server.token)
    clock = AheadClock(timedelta(seconds=5))
    merchant, ticket_id, number = await _filed(sessionmaker, queue, clock)
    files = FakeFiles()
    photo = files.add("photo-1", PHOTO, "скриншот.jpg", "image/jpeg")
    async with sessionmaker() as session:
        await replies.add_reply(
            session,
            merchant=merchant,
            ticket_id=ticket_id,
            key="chat:1",
            text="Вот скриншот ошибки",
            files=[photo],
        )
    assert await reply_worker(sessionmaker, queue, files, clock).run_once() == 1

    history = await rt_correspondence(rt_server, number)
    assert [(m["type"], m["creator"]) for m in history] == [
        ("Create", rt_server.user),
        ("Correspond", rt_server.user),
    ]
    assert history[1]["files"] == [("скриншот.jpg", PHOTO)]
    [added] = await written(sessionmaker, "reply_added")
    assert added.body.number == number  # type: ignore[union-attr]

    async with sessionmaker() as session:
        conversation = await replies.read_conversation(
            session, queue, merchant=merchant, ticket_id=ticket_id
        )
        latest = conversation.entries[0]
        assert not latest.by_support and latest.author == requester_for(merchant.telegram_id, None)
        assert "Вот скриншот ошибки" in latest.body and "frontdesk:" not in latest.body
        [info] = latest.attachments
        fetched = await replies.read_attachment(
            session, queue, merchant=merchant, ticket_id=ticket_id, attachment_id=info.id
        )
        assert (fetched.filename, fetched.content) == ("скриншот.jpg", PHOTO)
    # The sync does not take the merchant's own message for support's reply.
    assert not [e for e in await queue.events(number) if type(e).__name__ == "ReplyEvent"]
    await queue.close()


async def test_rt_answer_lost_after_it_took_the_reply_posts_it_once(
    sessionmaker: async_sessionmaker[AsyncSession], proxy: FaultProxy, rt_server: RtServer
) -> None:
    direct = RequestTrackerQueue(rt_server.base_url, rt_server.queue, token=rt_server.token)
    clock = AheadClock(timedelta(seconds=5))
    merchant, ticket_id, number = await _filed(sessionmaker, direct, clock)
    async with sessionmaker() as session:
        await replies.add_reply(
            session, merchant=merchant, ticket_id=ticket_id, key="chat:2", text="Только один раз"
        )
    queue = RequestTrackerQueue(proxy.base_url, rt_server.queue, token=rt_server.token, timeout=3)
    worker = reply_worker(sessionmaker, queue, FakeFiles(), clock)
    proxy.mode = "hang_after_correspond"
    assert await worker.run_once() == 1  # RT took it; the answer never came
    assert proxy.correspondence_forwarded == 1
    assert await written(sessionmaker, "reply_added") == []
    assert len(await written(sessionmaker, "reply_delayed")) == 1

    proxy.mode = "pass"
    clock.ahead += timedelta(minutes=5)
    assert await worker.run_once() == 1
    assert proxy.correspondence_forwarded == 1  # found in RT's history: not posted again
    history = await rt_correspondence(rt_server, number)
    assert [m["type"] for m in history] == ["Create", "Correspond"]
    assert len(await written(sessionmaker, "reply_added")) == 1
    await queue.close()
    await direct.close()


async def test_merchant_closes_and_reopens_in_rt(
    sessionmaker: async_sessionmaker[AsyncSession], rt_server: RtServer
) -> None:
    queue = RequestTrackerQueue(rt_server.base_url, rt_server.queue, token=rt_server.token)
    clock = AheadClock(timedelta(seconds=5))
    merchant, ticket_id, number = await _filed(sessionmaker, queue, clock)
    worker = reply_worker(sessionmaker, queue, FakeFiles(), clock)
    for n, kind, status in (
        (1, ReplyKind.CLOSE, TicketStatus.RESOLVED),
        (2, ReplyKind.REOPEN, TicketStatus.OPEN),
    ):
        async with sessionmaker() as session:
            await replies.add_reply(
                session, merchant=merchant, ticket_id=ticket_id, key=f"b:{n}", kind=kind
            )
        assert await worker.run_once() == 1
        assert (await queue.get_ticket(number)).status is status
        async with sessionmaker() as session:
            assert (await session.get_one(Ticket, ticket_id)).status is status
    async with aiohttp.ClientSession() as http:
        ticket = await RtSpecialist(http, rt_server).call("GET", f"ticket/{number}")
    assert ticket["Status"] == "open"
    assert not [e for e in await queue.events(number) if type(e).__name__ == "StatusEvent"]
    await queue.close()
