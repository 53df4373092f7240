"""Internal notes frontdesk owes the specialists on a ticket: that the merchant cannot be
reached in Telegram (issue 9, "a merchant out of reach").

When Telegram refuses a chat for good (the merchant blocked the bot, the chat is gone),
services/notices.mark_unreachable writes, in the same transaction, one `StaffNoteOutbox` row for
each ticket concerned: the merchant's tickets not closed (pending, registered, open, waiting),
and the ticket of the notice Telegram refused whatever its status (the specialist's last word on
it did not arrive). The row's ``key`` is ``unreachable:<ticket>:<since>`` — the ticket and the
start of the unreachable period — so a refusal repeated within one period (retries, a second
process) is one note, and a merchant who comes back and blocks the bot again later gets a new
one. The `StaffNoteWorker` posts each row as an internal note (TicketQueue.add_internal_note:
RT's Comment, the builtin queue's note), never as correspondence: the merchant must not get it
by mail. The row's ``reference`` rides with the note, so a retry after an answer lost on the way
finds it there and does not post it twice.

The note is written in Russian, the regulation's language, which the specialists read.
"""

from __future__ import annotations

import logging
import uuid
from datetime import datetime
from typing import Unpack
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import outbox
from services.db.base import utcnow
from services.db.dialect import insert_for, rowcount
from services.db.models import Membership, Merchant, StaffNoteOutbox, Ticket, TicketStatus
from services.outbox import OutboxWorker, WorkerOptions
from services.queue.base import QueueError, QueueRejected, TicketNotFound, TicketQueue

logger = logging.getLogger(__name__)

MOSCOW = ZoneInfo("Europe/Moscow")
# Tickets a specialist may still answer: the merchant's other tickets get the note too.
NOT_CLOSED = (
    TicketStatus.PENDING,
    TicketStatus.REGISTERED,
    TicketStatus.OPEN,
    TicketStatus.WAITING,
)


def unreachable_text(since: datetime, reason: str, requester: str | None) -> str:
    """The note as the specialist reads it in the queue."""
    lowered = reason.lower()
    why = (
        "клиент заблокировал бота"
        if "block" in lowered or "kicked" in lowered
        else "чат с клиентом недоступен"
    )
    when = since.astimezone(MOSCOW).strftime("%d.%m.%Y %H:%M")
    answer = (
        f"Ответьте клиенту по электронной почте: {requester}."
        if requester
        else "Электронная почта клиента не указана: свяжитесь с ним иначе."
    )
    return (
        f"[frontdesk] Клиент недоступен в Telegram с {when} (МСК): {why}. "
        f"Ответы в Telegram до него не дойдут. {answer}"
    )


async def owe_unreachable_notes(
    session: AsyncSession,
    chat_id: int,
    *,
    since: datetime,
    reason: str,
    ticket_id: int | None = None,
) -> int:
    """Adds to the caller's transaction one note row for each ticket concerned (see the module's
    docstring), once per ticket and unreachable period. Returns how many were new."""
    merchant = await session.scalar(select(Merchant).where(Merchant.telegram_id == chat_id))
    if merchant is None:
        return 0  # not a merchant (a group, a stranger): no ticket to tell about
    condition: ColumnElement[bool] = Ticket.status.in_(NOT_CLOSED)
    if ticket_id is not None:
        condition = or_(condition, Ticket.id == ticket_id)
    tickets = (
        await session.execute(
            select(Ticket.id, Membership.email)
            .outerjoin(
                Membership,
                (Membership.merchant_id == Ticket.merchant_id)
                & (Membership.store_id == Ticket.store_id),
            )
            .where(Ticket.merchant_id == merchant.id, condition)
            .order_by(Ticket.id)
        )
    ).all()
    period = int(since.timestamp() * 1_000_000)
    now = utcnow()
    added = 0
    for ticket, email in tickets:
        # The e-mail registered at the ticket's store; without one the queue knows them by a
        # placeholder: say so instead.
        text = unreachable_text(since, reason, email or None)
        result = await session.execute(
            insert_for(session, StaffNoteOutbox)
            .values(
                key=f"unreachable:{ticket}:{period}",
                reference=uuid.uuid4().hex,
                ticket_id=ticket,
                text=text,
                attempts=0,
                next_attempt_at=now,
                delay_notified=False,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["key"])
        )
        added += rowcount(result)
    return added


def reachable_text(since: datetime) -> str:
    when = since.astimezone(MOSCOW).strftime("%d.%m.%Y %H:%M")
    return (
        f"[frontdesk] Клиент снова доступен в Telegram с {when} (МСК): "
        "ответы в Telegram до него доходят."
    )


async def owe_reachable_notes(
    session: AsyncSession, chat_id: int, *, unreachable_since: datetime
) -> int:
    """The merchant is back: the tickets told of this unreachable period (``unreachable_since``)
    are told so too, in the caller's transaction, once. Returns how many were new."""
    period = int(unreachable_since.timestamp() * 1_000_000)
    rows = await session.execute(
        select(StaffNoteOutbox.ticket_id, StaffNoteOutbox.key)
        .join(Ticket, Ticket.id == StaffNoteOutbox.ticket_id)
        .join(Merchant, Merchant.id == Ticket.merchant_id)
        .where(
            Merchant.telegram_id == chat_id,
            StaffNoteOutbox.key.like(f"unreachable:%:{period}"),
        )
        .order_by(StaffNoteOutbox.ticket_id)
    )
    tickets = [t for t, key in rows if key == f"unreachable:{t}:{period}"]
    now = utcnow()
    text = reachable_text(now)
    added = 0
    for ticket in tickets:
        result = await session.execute(
            insert_for(session, StaffNoteOutbox)
            .values(
                key=f"reachable:{ticket}:{period}",
                reference=uuid.uuid4().hex,
                ticket_id=ticket,
                text=text,
                attempts=0,
                next_attempt_at=now,
                delay_notified=False,
                created_at=now,
            )
            .on_conflict_do_nothing(index_elements=["key"])
        )
        added += rowcount(result)
    return added


class StaffNoteWorker(OutboxWorker):
    """Posts owed notes to the queue as internal notes, exactly once (leases, the note's
    reference in the queue). While the queue is unreachable: capped backoff with jitter; refused
    for good (QueueRejected, the ticket gone): the row stops, logged as an ERROR. The merchant is
    never told: the note is the specialists' business."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        queue: TicketQueue,
        **options: Unpack[WorkerOptions],
    ) -> None:
        super().__init__("staff-notes", sessionmaker, queue, **options)

    async def _claim(self) -> list[int]:
        return await self._claim_messages(StaffNoteOutbox, in_order=False)

    async def _deliver(self, row_id: int) -> None:
        async with self._sessionmaker() as session:
            held = await self._hold(session, StaffNoteOutbox, row_id)
            if held is None:
                return
            row, lease = held
            number, text, reference = row.ticket.queue_ticket_id, row.text, row.reference
            attempts = row.attempts
            await session.commit()  # hold no transaction open while the queue answers
            if number is None:  # cannot be: claimed only once registered
                return
            try:
                await self._queue.add_internal_note(number, text, reference=reference)
            except Exception as error:
                await self._failed(session, row_id, number, lease, attempts, error)
                return
            self._health.succeeded()
            done = await session.execute(
                update(StaffNoteOutbox)
                .where(StaffNoteOutbox.id == row_id, StaffNoteOutbox.claimed_until == lease)
                .values(done_at=self._clock(), claimed_until=None, last_error=None)
            )
            if rowcount(done) != 1:
                await session.rollback()
                logger.warning("lease on staff note %d lapsed while posting", row_id)
                return
            await session.commit()
        logger.info("internal note %d added to %s #%s", row_id, self._queue.name, number)

    async def _failed(
        self,
        session: AsyncSession,
        row_id: int,
        number: str,
        lease: datetime,
        attempts: int,
        error: Exception,
    ) -> None:
        described = f"{type(error).__name__}: {error}"
        if not isinstance(error, QueueError):
            logger.exception("posting staff note %d on ticket %s crashed", row_id, number)
        else:
            self._report(error)
        refused = isinstance(error, (QueueRejected, TicketNotFound))
        attempts += 1
        recorded = await self._record_failure(
            session,
            StaffNoteOutbox,
            row_id,
            lease,
            attempts=attempts,
            error=error,
            refused=refused,
            delay_notified=True,
        )
        if recorded is None:
            await session.rollback()
            return
        await session.commit()
        if refused:
            logger.error(
                "queue %s refused the internal note %d on ticket #%s for good: %s; not retrying"
                " until `frontdesk outbox retry`",
                self._queue.name,
                row_id,
                number,
                described,
            )
        else:
            logger.warning(
                "internal note %d on ticket #%s not posted (attempt %d): %s",
                row_id,
                number,
                attempts,
                described,
            )


async def retry_refused(session: AsyncSession, *, ticket_id: int | None = None) -> int:
    """Re-drives notes the queue refused for good (e.g. frontdesk's account lacked the right to
    comment), after an operator fixed the cause. Returns how many; commits."""
    return await outbox.retry_refused(session, StaffNoteOutbox, ticket_id=ticket_id)
