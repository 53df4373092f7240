"""A merchant out of reach against a real Request Tracker: the note is an RT Comment (internal,
never mailed to the requester), not Correspond; exactly once when RT's answer is lost; the sync
does not echo it back."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import notices
from services.db.models import StaffNoteOutbox, Ticket
from services.queue.base import QueueRejected, ReplyEvent
from services.queue.rt import RequestTrackerQueue
from tests.helpers.filing import AheadClock, filing_worker, submit_request
from tests.helpers.rt_faults import FaultProxy, rt_messages
from tests.helpers.staff_notes import set_email, staff_note_worker
from tests.integration.rt_fixture import RtServer, rt_server

__all__ = ["rt_server"]

pytestmark = [pytest.mark.rt, pytest.mark.xdist_group("rt-faults")]

TELEGRAM_ID = 7_000_000_123  # tests/helpers/filing.register_merchant
EMAIL = "anna@shop.example"


async def _comments_visible(
    queue: RequestTrackerQueue, number: str, reference: str, *, post: bool = False
) -> bool:
    """Whether frontdesk's account reads its own notes back (RT right ShowTicketComments)."""
    if post:
        try:
            await queue.add_internal_note(number, "probe", reference=reference)
        except QueueRejected:
            return False
        return True
    return await queue._has_message(number, reference, transaction_type="Comment")


async def _rows(sessionmaker: async_sessionmaker[AsyncSession]) -> list[StaffNoteOutbox]:
    async with sessionmaker() as session:
        return list(await session.scalars(select(StaffNoteOutbox).order_by(StaffNoteOutbox.id)))


@pytest.fixture
async def proxy(rt_server: RtServer) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(rt_server.base_url) as running:
        yield running


async def _filed(
    sessionmaker: async_sessionmaker[AsyncSession], queue: RequestTrackerQueue, clock: AheadClock
) -> str:
    filed = await submit_request(sessionmaker, f"notes-rt-{uuid.uuid4().hex[:12]}")
    assert await filing_worker(sessionmaker, queue, clock).run_once() == 1
    async with sessionmaker() as session:
        number = (await session.get_one(Ticket, filed.id)).queue_ticket_id
    assert number is not None
    return number


async def test_a_merchant_out_of_reach_becomes_an_rt_comment_not_correspondence(
    sessionmaker: async_sessionmaker[AsyncSession], rt_server: RtServer
) -> None:
    queue = RequestTrackerQueue(rt_server.base_url, rt_server.queue, token=rt_server.token)
    clock = AheadClock(timedelta(seconds=5))  # RT is slow under a loaded suite
    number = await _filed(sessionmaker, queue, clock)
    await set_email(sessionmaker, TELEGRAM_ID, EMAIL)
    async with sessionmaker() as session:
        await notices.mark_unreachable(session, TELEGRAM_ID, "the person blocked the bot")
    worker = staff_note_worker(sessionmaker, queue, clock)
    assert await worker.run_once() == 1

    history = await rt_messages(rt_server, number)
    assert [kind for kind, _ in history] == ["Create", "Comment"]
    [row] = await _rows(sessionmaker)
    if not await _comments_visible(queue, number, row.reference):
        # The account cannot read its notes back: the note is there once, the row stops.
        assert row.refused_at is not None and "ShowTicketComments" in (row.last_error or "")
    else:
        assert row.done_at is not None
    assert await worker.run_once() == 0
    assert [kind for kind, _ in await rt_messages(rt_server, number)] == ["Create", "Comment"]
    note = history[1][1]
    assert "недоступен в Telegram" in note and EMAIL in note
    # Not in the merchant's conversation, not echoed by the sync as support's reply.
    assert all("недоступен" not in e.body for e in await queue.conversation(number))
    assert not [e for e in await queue.events(number) if isinstance(e, ReplyEvent)]
    await queue.close()


async def test_rt_answer_lost_after_it_took_the_note_posts_it_once(
    sessionmaker: async_sessionmaker[AsyncSession], proxy: FaultProxy, rt_server: RtServer
) -> None:
    direct = RequestTrackerQueue(rt_server.base_url, rt_server.queue, token=rt_server.token)
    clock = AheadClock(timedelta(seconds=5))  # RT is slow under a loaded suite
    number = await _filed(sessionmaker, direct, clock)
    async with sessionmaker() as session:
        await notices.mark_unreachable(session, TELEGRAM_ID, "Bad Request: chat not found")
    probe = await _filed(sessionmaker, direct, clock)
    if await _comments_visible(direct, probe, "probe" + uuid.uuid4().hex[:8], post=True):
        queue = RequestTrackerQueue(
            proxy.base_url, rt_server.queue, token=rt_server.token, timeout=3
        )
    else:
        # The shared test server's frontdesk account lacks ShowTicketComments (see README, the
        # RT account's rights): post as an account that has it, RT's superuser.
        queue = RequestTrackerQueue(
            proxy.base_url,
            rt_server.queue,
            user=rt_server.admin_user,
            password=rt_server.admin_password,
            timeout=3,
        )
    worker = staff_note_worker(sessionmaker, queue, clock)
    proxy.mode = "hang_after_comment"
    assert await worker.run_once() == 1  # RT took it; the answer never came
    assert proxy.comments_forwarded == 1

    proxy.mode = "pass"
    clock.ahead += timedelta(minutes=5)
    assert await worker.run_once() == 1
    assert proxy.comments_forwarded == 1  # found in RT's history: not posted again
    history = await rt_messages(rt_server, number)
    assert [kind for kind, _ in history] == ["Create", "Comment"]
    assert "чат с клиентом недоступен" in history[1][1]
    [row] = await _rows(sessionmaker)
    assert row.done_at is not None
    await queue.close()
    await direct.close()
