"""A specialist's actions from Telegram (issue 9, point 3) on the builtin queue, on both
databases: each is written to the queue first (on the specialist's behalf, attributed to them),
then applied here in one transaction with the notices — the merchant gets the reply (with its
files) or the resolve, the first reaction is stamped, the owner follows a take or reassignment —
exactly once whatever fails in between; a queue that does not answer delays it (told once), a
queue that refuses stops it (told honestly)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import staff, staff_actions
from services.db.models import (
    StaffActionKind,
    StaffActionOutbox,
    StaffMember,
    StaffRole,
    Ticket,
    TicketStatus,
)
from services.queue.base import QueueRejected, QueueUnavailable
from services.queue.builtin import BuiltinQueue
from services.queue.console import BuiltinConsole
from services.sync import TicketSync
from tests.helpers.filing import Clock, filing_worker, submit_request
from tests.helpers.notices import written
from tests.helpers.replies import FakeFiles

SPECIALIST_ID = 5_100_001
OTHER_ID = 5_100_002
MERCHANT_ID = 7_000_000_123  # tests/helpers/filing.register_merchant


class FlakyQueue(BuiltinQueue):
    """The builtin queue that may lose its answer after taking a reply, be down, or refuse."""

    def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
        super().__init__(*args, **kwargs)
        self.lose_answer = False
        self.down = False
        self.refusing = False

    async def reply_as_support(self, ticket_id, author, body, attachments=(), *, reference):  # type: ignore[no-untyped-def]
        if self.refusing:
            raise QueueRejected("RT answered POST correspond with 403")
        if self.down:
            raise QueueUnavailable("connection refused")
        await super().reply_as_support(ticket_id, author, body, attachments, reference=reference)
        if self.lose_answer:
            raise QueueUnavailable("RT did not answer POST correspond within 10 s")

    async def assign(self, ticket_id, owner, *, author):  # type: ignore[no-untyped-def]
        if self.refusing:
            raise QueueRejected(f"{owner} lacks OwnTicket")
        await super().assign(ticket_id, owner, author=author)


@pytest.fixture
def queue(sessionmaker: async_sessionmaker[AsyncSession]) -> FlakyQueue:
    return FlakyQueue(sessionmaker)


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC) + timedelta(seconds=5))


def worker(sessionmaker, queue, clock, files=None) -> staff_actions.StaffActionWorker:  # type: ignore[no-untyped-def]
    from services.outbox import RetryPolicy

    return staff_actions.StaffActionWorker(
        sessionmaker,
        queue,
        files or FakeFiles(),
        retry=RetryPolicy(base=timedelta(seconds=2), cap=timedelta(seconds=60)),
        clock=clock,
    )


async def _link(
    sessionmaker: async_sessionmaker[AsyncSession], user: str, telegram_id: int
) -> staff.Staff:
    async with sessionmaker() as session:
        session.add(
            StaffMember(
                queue_user=user,
                telegram_id=telegram_id,
                role=StaffRole.SPECIALIST,
                created_at=datetime.now(UTC),
                commands_shown=False,
            )
        )
        await session.commit()
        member = await staff.member_of(session, telegram_id)
    assert member is not None
    return member


async def _registered(
    sessionmaker: async_sessionmaker[AsyncSession], queue: BuiltinQueue, clock: Clock
) -> tuple[int, str]:
    filed = await submit_request(sessionmaker, "ref-staff-actions")
    assert await filing_worker(sessionmaker, queue, clock).run_once() == 1
    async with sessionmaker() as session:
        number = (await session.get_one(Ticket, filed.id)).queue_ticket_id
    assert number is not None
    return filed.id, number


async def _request(sessionmaker, member, number, kind, key="k1", **kwargs):  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        return await staff_actions.request(
            session, actor=member, number=number, kind=kind, key=key, **kwargs
        )


async def _ticket(sessionmaker: async_sessionmaker[AsyncSession], ticket_id: int) -> Ticket:
    async with sessionmaker() as session:
        return await session.get_one(Ticket, ticket_id)


async def test_a_reply_with_a_file_is_in_the_queue_by_the_specialist_and_reaches_the_merchant(
    sessionmaker: async_sessionmaker[AsyncSession], queue: FlakyQueue, clock: Clock
) -> None:
    ticket_id, number = await _registered(sessionmaker, queue, clock)
    member = await _link(sessionmaker, "ivanov", SPECIALIST_ID)
    files = FakeFiles()
    ref = files.add("f1", b"%PDF-1.4 invoice", "invoice.pdf", "application/pdf")
    accepted = await _request(
        sessionmaker,
        member,
        number,
        StaffActionKind.REPLY,
        text="Исправили, проверьте.",
        files=[ref],
    )
    assert not accepted.duplicate and accepted.number == number

    assert await worker(sessionmaker, queue, clock, files).run_once() == 1

    entries = await queue.conversation(number)
    reply = entries[-1]
    assert reply.by_support and reply.author == "ivanov"
    assert reply.body == "Исправили, проверьте." and reply.attachments[0].filename == "invoice.pdf"
    # frontdesk's own doing: the sync never echoes it back as a second reply.
    assert await queue.events(number) == []
    merchant = [n for n in await written(sessionmaker, "reply") if n.chat_id == MERCHANT_ID]
    assert len(merchant) == 1 and merchant[0].body.body == "Исправили, проверьте."  # type: ignore[union-attr]
    async with sessionmaker() as session:
        from services.db.models import Notice, NoticeFile

        notice_files = list(
            await session.scalars(
                select(NoticeFile).join(Notice).where(Notice.id == merchant[0].id)
            )
        )
    assert [f.content for f in notice_files] == [b"%PDF-1.4 invoice"]
    assert (await _ticket(sessionmaker, ticket_id)).first_reaction_at is not None
    done = await written(sessionmaker, "staff_action_done")
    assert len(done) == 1 and done[0].chat_id == SPECIALIST_ID
    # A later sync round finds nothing new to tell.
    assert (await TicketSync(sessionmaker, queue).sync_ticket(number)).applied == 0
    assert len(await written(sessionmaker, "reply")) == 1


async def test_the_same_key_twice_is_one_action_and_a_lost_answer_one_message(
    sessionmaker: async_sessionmaker[AsyncSession], queue: FlakyQueue, clock: Clock
) -> None:
    _ticket_id, number = await _registered(sessionmaker, queue, clock)
    member = await _link(sessionmaker, "ivanov", SPECIALIST_ID)
    first = await _request(sessionmaker, member, number, StaffActionKind.REPLY, text="Ответ")
    again = await _request(sessionmaker, member, number, StaffActionKind.REPLY, text="Ответ")
    assert again.duplicate and again.id == first.id
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(StaffActionOutbox)) == 1

    queue.lose_answer = True  # the queue takes it, the answer never comes
    assert await worker(sessionmaker, queue, clock).run_once() == 1
    queue.lose_answer = False
    clock.now += timedelta(minutes=5)
    assert await worker(sessionmaker, queue, clock).run_once() == 1

    support = [e for e in await queue.conversation(number) if e.by_support]
    assert len(support) == 1
    assert len(await written(sessionmaker, "staff_action_delayed")) == 1
    assert len(await written(sessionmaker, "reply")) == 1
    assert len(await written(sessionmaker, "staff_action_done")) == 1


async def test_a_queue_down_delays_once_then_succeeds(
    sessionmaker: async_sessionmaker[AsyncSession], queue: FlakyQueue, clock: Clock
) -> None:
    _ticket_id, number = await _registered(sessionmaker, queue, clock)
    member = await _link(sessionmaker, "ivanov", SPECIALIST_ID)
    await _request(sessionmaker, member, number, StaffActionKind.REPLY, text="Ответ")
    queue.down = True
    for _attempt in range(3):
        assert await worker(sessionmaker, queue, clock).run_once() == 1
        clock.now += timedelta(minutes=5)
    delayed = await written(sessionmaker, "staff_action_delayed")
    assert len(delayed) == 1 and delayed[0].chat_id == SPECIALIST_ID
    assert await written(sessionmaker, "reply") == []
    queue.down = False
    assert await worker(sessionmaker, queue, clock).run_once() == 1
    assert len(await written(sessionmaker, "reply")) == 1


async def test_a_refusal_tells_the_specialist_and_stops(
    sessionmaker: async_sessionmaker[AsyncSession], queue: FlakyQueue, clock: Clock
) -> None:
    ticket_id, number = await _registered(sessionmaker, queue, clock)
    member = await _link(sessionmaker, "ivanov", SPECIALIST_ID)
    await _link(sessionmaker, "sidorov", OTHER_ID)
    await _request(sessionmaker, member, number, StaffActionKind.ASSIGN, owner="sidorov")
    queue.refusing = True
    assert await worker(sessionmaker, queue, clock).run_once() == 1
    clock.now += timedelta(minutes=10)
    assert await worker(sessionmaker, queue, clock).run_once() == 0  # stopped for good
    refused = await written(sessionmaker, "staff_action_refused")
    assert len(refused) == 1 and refused[0].chat_id == SPECIALIST_ID
    assert "OwnTicket" in refused[0].body.reason  # type: ignore[union-attr]
    assert (await _ticket(sessionmaker, ticket_id)).queue_owner is None
    assert await written(sessionmaker, "assigned") == []


async def test_resolve_sets_the_status_and_tells_the_merchant(
    sessionmaker: async_sessionmaker[AsyncSession], queue: FlakyQueue, clock: Clock
) -> None:
    ticket_id, number = await _registered(sessionmaker, queue, clock)
    member = await _link(sessionmaker, "ivanov", SPECIALIST_ID)
    await _request(sessionmaker, member, number, StaffActionKind.RESOLVE)
    # A second press while it is on its way is the same resolve; a reply now is refused.
    assert (
        await _request(sessionmaker, member, number, StaffActionKind.RESOLVE, key="k2")
    ).duplicate
    with pytest.raises(staff_actions.ActionRefused) as refused:
        await _request(sessionmaker, member, number, StaffActionKind.REPLY, key="k3", text="x")
    assert refused.value.reason == staff_actions.CLOSED_TICKET

    assert await worker(sessionmaker, queue, clock).run_once() == 1
    assert (await queue.get_ticket(number)).status is TicketStatus.RESOLVED
    ticket = await _ticket(sessionmaker, ticket_id)
    assert ticket.status is TicketStatus.RESOLVED and ticket.first_reaction_at is not None
    status = await written(sessionmaker, "status")
    assert len(status) == 1 and status[0].chat_id == MERCHANT_ID
    assert status[0].body.new is TicketStatus.RESOLVED  # type: ignore[union-attr]
    assert await queue.events(number) == []


async def test_take_and_reassign_set_the_owner_and_tell_the_new_owner(
    sessionmaker: async_sessionmaker[AsyncSession], queue: FlakyQueue, clock: Clock
) -> None:
    ticket_id, number = await _registered(sessionmaker, queue, clock)
    member = await _link(sessionmaker, "ivanov", SPECIALIST_ID)
    await _link(sessionmaker, "sidorov", OTHER_ID)
    await _request(sessionmaker, member, number, StaffActionKind.TAKE)
    assert await worker(sessionmaker, queue, clock).run_once() == 1
    assert (await queue.get_ticket(number)).owner == "ivanov"
    assert (await _ticket(sessionmaker, ticket_id)).queue_owner == "ivanov"
    with pytest.raises(staff_actions.ActionRefused) as again:
        await _request(sessionmaker, member, number, StaffActionKind.TAKE, key="k2")
    assert again.value.reason == staff_actions.ALREADY_YOURS

    await _request(sessionmaker, member, number, StaffActionKind.ASSIGN, key="k3", owner="sidorov")
    assert await worker(sessionmaker, queue, clock).run_once() == 1
    assert (await queue.get_ticket(number)).owner == "sidorov"
    assert (await _ticket(sessionmaker, ticket_id)).queue_owner == "sidorov"
    assigned = await written(sessionmaker, "assigned")
    assert [n.chat_id for n in assigned] == [OTHER_ID]
    assert len(await written(sessionmaker, "staff_action_done")) == 2
    # Neither change comes back through the sync as the queue's doing.
    assert await queue.events(number) == []


async def test_a_comment_is_internal_by_the_specialist(
    sessionmaker: async_sessionmaker[AsyncSession], queue: FlakyQueue, clock: Clock
) -> None:
    _ticket_id, number = await _registered(sessionmaker, queue, clock)
    member = await _link(sessionmaker, "ivanov", SPECIALIST_ID)
    await _request(sessionmaker, member, number, StaffActionKind.COMMENT, text="Проверить логи")
    assert await worker(sessionmaker, queue, clock).run_once() == 1
    assert all("Проверить логи" not in e.body for e in await queue.conversation(number))
    listed = await BuiltinConsole(queue, "petrova").list_messages(number)
    assert all("Проверить логи" not in m.body for m in listed)
    async with sessionmaker() as session:
        from services.db.models import BuiltinQueueComment

        note = await session.scalar(
            select(BuiltinQueueComment).where(BuiltinQueueComment.body == "Проверить логи")
        )
    assert note is not None and note.author == "ivanov"
    assert await written(sessionmaker, "reply") == []
    assert len(await written(sessionmaker, "staff_action_done")) == 1


async def test_refusals_before_anything_is_written(
    sessionmaker: async_sessionmaker[AsyncSession], queue: FlakyQueue, clock: Clock
) -> None:
    _ticket_id, number = await _registered(sessionmaker, queue, clock)
    member = await _link(sessionmaker, "ivanov", SPECIALIST_ID)
    cases = [
        ("999999", StaffActionKind.REPLY, {"text": "x"}, staff_actions.NO_TICKET),
        (number, StaffActionKind.REPLY, {"text": "  "}, staff_actions.EMPTY),
        (number, StaffActionKind.ASSIGN, {"owner": "nobody"}, staff_actions.UNKNOWN_SPECIALIST),
    ]
    for index, (target, kind, kwargs, reason) in enumerate(cases):
        with pytest.raises(staff_actions.ActionRefused) as refused:
            await _request(sessionmaker, member, target, kind, key=f"r{index}", **kwargs)
        assert refused.value.reason == reason
    async with sessionmaker() as session:
        await staff.remove(session, "ivanov", now=datetime.now(UTC))
    with pytest.raises(staff_actions.ActionRefused) as removed:
        await _request(sessionmaker, member, number, StaffActionKind.TAKE, key="r9")
    assert removed.value.reason == staff_actions.NOT_STAFF
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(StaffActionOutbox)) == 0
