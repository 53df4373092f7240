"""Sync back: what specialists do in the official queue reaches the merchant in Telegram.

A specialist works in the queue (RT's web interface); frontdesk reads each ticket's history and
turns the transactions that matter into events: a reply (correspondence, with its files) is
forwarded to the merchant, a status change is announced (and kept on frontdesk's ticket), an
owner change becomes an assignment. Two ways bring them:

- pull: the `SyncWorker` asks the queue which tickets changed since its cursor (minus an
  overlap: RT keeps times to the second, and a transaction's time can precede the ticket's
  LastUpdated by as long as its scrips run), reads the history of the tickets frontdesk filed
  and applies what is new;
- push: a queue that calls /queue/events (bot/queue_events.py) names a ticket and a
  transaction, and the same `TicketSync.sync_ticket` applies that ticket's history up to it.

Every event has a key, ``<queue>:<ticket>:<transaction>``, inserted into `applied_queue_events`
(unique) in the transaction that applies it, so an event is applied once whichever way, and
however often, it arrives. The notice for the merchant is written in that same transaction
(services/notices.py) and delivered by the delivery worker: applying never waits on Telegram.

Left out on purpose: the ticket's Create (frontdesk wrote it), anything frontdesk's own account
did (the merchant's own messages), the specialists' internal notes (adapters never return them),
tickets frontdesk did not file, and history older than the sync itself (`SyncCursor.started_at`):
turning the sync on must not replay months of correspondence.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from services import notices
from services.db.base import utcnow
from services.db.dialect import insert_for
from services.db.models import (
    AppliedQueueEvent,
    QueueEventDelivery,
    SyncCursor,
    Ticket,
    TicketStatus,
)
from services.event_signature import Verified
from services.queue.base import (
    Attachment,
    QueueTransaction,
    QueueUnavailable,
    TicketNotFound,
    TicketQueue,
)

logger = logging.getLogger(__name__)

DEFAULT_OVERLAP = timedelta(seconds=60)
_LOOKUP_CHUNK = 500  # ids per IN (...) query

# The queue's statuses (RT's default lifecycle) as frontdesk's ticket keeps them.
_LOCAL_STATUS = {
    "new": TicketStatus.REGISTERED,
    "open": TicketStatus.OPEN,
    "stalled": TicketStatus.WAITING,
    "resolved": TicketStatus.RESOLVED,
    "rejected": TicketStatus.REJECTED,
    # A deleted ticket will not be worked on either: for the merchant it is turned down.
    "deleted": TicketStatus.REJECTED,
}
_NOBODY = "Nobody"  # RT's owner of unowned tickets


def local_status(queue_status: str | None) -> TicketStatus | None:
    """frontdesk's status for a queue status; None for one it does not know (a custom
    lifecycle), which leaves the ticket's status as it was."""
    return _LOCAL_STATUS.get((queue_status or "").lower())


class EventKind(StrEnum):
    REPLY = "reply"
    STATUS = "status"
    OWNER = "owner"


@dataclass(frozen=True, slots=True)
class QueueEvent:
    """Something a specialist did to a ticket, that frontdesk applies once."""

    queue: str
    ticket_id: str  # the queue's number
    transaction_id: str
    kind: EventKind
    created_at: datetime
    author: str
    body: str = ""
    attachments: Sequence[Attachment] = field(default=())
    # The body is HTML (the queue's web editor) rather than plain text.
    html: bool = False
    old: str | None = None
    new: str | None = None

    @property
    def key(self) -> str:
        return f"{self.queue}:{self.ticket_id}:{self.transaction_id}"


def event_kind(transaction: QueueTransaction) -> EventKind | None:
    """What a transaction means for the merchant, or None when nothing."""
    if transaction.by_frontdesk:
        return None  # frontdesk did it: the merchant's own message, never echoed back
    if transaction.type == "Correspond":
        return EventKind.REPLY
    if transaction.field == "Status" and transaction.type in ("Status", "Set"):
        return EventKind.STATUS
    # RT records an owner change twice, as the Owner column ("Set") and as the role group
    # ("SetWatcher"): the first one only.
    if transaction.field == "Owner" and transaction.type == "Set":
        return EventKind.OWNER
    return None


def event_for(
    queue: str,
    transaction: QueueTransaction,
    *,
    body: str = "",
    attachments: Sequence[Attachment] = (),
) -> QueueEvent | None:
    """The event of a transaction (a reply's text and files given apart), or None."""
    kind = event_kind(transaction)
    if kind is None:
        return None
    old, new = transaction.old, transaction.new
    if kind is EventKind.OWNER:
        old, new = _owner(old), _owner(new)
    return QueueEvent(
        queue=queue,
        ticket_id=transaction.ticket_id,
        transaction_id=transaction.id,
        kind=kind,
        created_at=transaction.created_at,
        author=transaction.creator,
        body=body,
        attachments=tuple(attachments),
        old=old,
        new=new,
    )


def _owner(name: str | None) -> str | None:
    return None if not name or name == _NOBODY else name


class Outcome(StrEnum):
    APPLIED = "applied"
    DUPLICATE = "duplicate"
    UNKNOWN_TICKET = "unknown ticket"


async def apply_event(session: AsyncSession, event: QueueEvent) -> Outcome:
    """Applies one event exactly once, with the notice it calls for, in one transaction; commits.

    The key is inserted first (ON CONFLICT DO NOTHING): of two concurrent applications of the
    same event, only the one whose insert wins goes on; PostgreSQL makes the other wait for it.
    The notice (services/notices.py) is written in the same transaction, under the event's key,
    so the merchant is told exactly once whatever happens to the process after the commit.
    """
    ticket = await session.scalar(
        select(Ticket)
        .where(Ticket.queue_name == event.queue, Ticket.queue_ticket_id == event.ticket_id)
        .order_by(Ticket.id)
        .limit(1)
        .options(selectinload(Ticket.merchant))
    )
    if ticket is None:
        await session.rollback()
        return Outcome.UNKNOWN_TICKET
    inserted = await session.scalar(
        insert_for(session, AppliedQueueEvent)
        .values(key=event.key, ticket_id=ticket.id, kind=event.kind.value, applied_at=utcnow())
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(AppliedQueueEvent.id)
    )
    if inserted is None:
        await session.rollback()
        return Outcome.DUPLICATE

    body: notices.Body | None = None
    files: tuple[notices.File, ...] = ()
    if event.kind is EventKind.REPLY:
        body = notices.Reply(
            number=event.ticket_id,
            subject=ticket.subject,
            author=event.author,
            body=event.body,
            html=event.html,
            sent_at=event.created_at,
        )
        files = tuple(
            notices.File(filename=a.filename, content_type=a.content_type, content=a.content)
            for a in event.attachments
        )
    elif event.kind is EventKind.STATUS:
        old_status = ticket.status
        status = local_status(event.new)
        if status is not None:
            ticket.status = status
        body = notices.StatusChanged(
            number=event.ticket_id,
            subject=ticket.subject,
            old=local_status(event.old) or old_status,
            new=status,
            label=event.new or "",
        )
    else:
        # The specialists' notifications are a feature of their own; the merchant is not told.
        ticket.queue_owner = event.new
        logger.info(
            "ticket %s (queue #%s) assigned to %s (was %s) by %s",
            ticket.reference,
            event.ticket_id,
            event.new or "nobody",
            event.old or "nobody",
            event.author,
        )
    if body is not None:
        await notices.enqueue(
            session,
            key=f"event:{event.key}",
            chat_id=ticket.merchant.telegram_id,
            locale=ticket.locale,
            ticket_id=ticket.id,
            body=body,
            files=files,
        )
    await session.commit()
    logger.info("applied %s event %s to ticket %s", event.kind.value, event.key, ticket.reference)
    return Outcome.APPLIED


async def first_delivery(session: AsyncSession, verified: Verified, *, now: datetime) -> bool:
    """Remembers a signed call to /queue/events; False if it was seen before (a replay).
    Commits; forgets calls whose signatures have expired."""
    await session.execute(delete(QueueEventDelivery).where(QueueEventDelivery.expires_at < now))
    inserted = await session.scalar(
        insert_for(session, QueueEventDelivery)
        .values(signature=verified.digest, expires_at=verified.expires_at)
        .on_conflict_do_nothing(index_elements=["signature"])
        .returning(QueueEventDelivery.signature)
    )
    await session.commit()
    return inserted is not None


# --- reading a ticket's history -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TicketSyncResult:
    applied: int = 0
    already_applied: int = 0
    known: bool = True  # frontdesk filed this ticket
    reached: bool = True  # the history held the transaction asked for (push)


class TicketSync:
    """Applies what is new in one ticket's history, in order: the one path of both the worker
    (pull) and /queue/events (push)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        queue: TicketQueue,
        *,
        overlap: timedelta = DEFAULT_OVERLAP,
        clock: Callable[[], datetime] = utcnow,
        on_notice: Callable[[], None] | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.queue = queue
        # Called after notices were committed: the delivery worker sends them at once.
        self.on_notice = on_notice or (lambda: None)
        self.overlap = overlap
        self.clock = clock
        self._started_at: datetime | None = None

    async def cursor(self) -> SyncCursor:
        """The queue's cursor; the first call ever starts the sync of this queue now."""
        async with self.sessionmaker() as session:
            now = self.clock()
            await session.execute(
                insert_for(session, SyncCursor)
                .values(queue_name=self.queue.name, position=now, started_at=now, updated_at=now)
                .on_conflict_do_nothing(index_elements=["queue_name"])
            )
            await session.commit()
            cursor = await session.get(SyncCursor, self.queue.name)
            assert cursor is not None
            self._started_at = cursor.started_at
            return cursor

    async def known_tickets(self, ticket_ids: Iterable[str]) -> set[str]:
        """Which of these queue numbers frontdesk filed (in this queue)."""
        ids = sorted(set(ticket_ids))
        known: set[str] = set()
        async with self.sessionmaker() as session:
            for start in range(0, len(ids), _LOOKUP_CHUNK):
                rows = await session.scalars(
                    select(Ticket.queue_ticket_id).where(
                        Ticket.queue_name == self.queue.name,
                        Ticket.queue_ticket_id.in_(ids[start : start + _LOOKUP_CHUNK]),
                    )
                )
                known.update(row for row in rows if row is not None)
        return known

    async def sync_ticket(self, ticket_id: str, *, upto: str | None = None) -> TicketSyncResult:
        """Applies the ticket's events not applied yet, oldest first, up to transaction `upto`
        (all of them if None). Raises QueueError when the queue fails; what was applied before
        stays applied."""
        if not await self.known_tickets([ticket_id]):
            return TicketSyncResult(known=False)
        if self._started_at is None:
            await self.cursor()
        assert self._started_at is not None
        floor = self._started_at - self.overlap

        history = await self.queue.history(ticket_id)
        if upto is not None:
            ids = [transaction.id for transaction in history]
            if upto not in ids:
                return TicketSyncResult(reached=False)
            history = history[: ids.index(upto) + 1]
        relevant = [t for t in history if event_kind(t) is not None and t.created_at >= floor]
        keys = {t.id: f"{self.queue.name}:{ticket_id}:{t.id}" for t in relevant}
        async with self.sessionmaker() as session:
            done = set(
                await session.scalars(
                    select(AppliedQueueEvent.key).where(AppliedQueueEvent.key.in_(keys.values()))
                )
            )
        applied = already = 0
        for transaction in relevant:
            if keys[transaction.id] in done:
                already += 1
                continue
            event = await self._event(transaction)
            async with self.sessionmaker() as session:
                outcome = await apply_event(session, event)
            if outcome is Outcome.APPLIED:
                applied += 1
            elif outcome is Outcome.DUPLICATE:
                already += 1  # the other way (push or pull) was quicker
        if applied:
            self.on_notice()
        logger.debug(
            "sync %s: ticket %s: %d event(s) applied, %d already applied",
            self.queue.name,
            ticket_id,
            applied,
            already,
        )
        return TicketSyncResult(applied=applied, already_applied=already)

    async def _event(self, transaction: QueueTransaction) -> QueueEvent:
        body = ""
        attachments: tuple[Attachment, ...] = ()
        if event_kind(transaction) is EventKind.REPLY:
            message = await self.queue.transaction_message(transaction.ticket_id, transaction.id)
            body, attachments = message.body, tuple(message.attachments)
        event = event_for(self.queue.name, transaction, body=body, attachments=attachments)
        assert event is not None
        return event


# --- the worker ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncRound:
    changed: int  # tickets the queue reported changed
    read: int  # of them, frontdesk's, whose history was read
    applied: int
    already_applied: int
    position: datetime


class SyncWorker:
    """Pulls the queue's changes every `interval` seconds (see the module's docstring)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        queue: TicketQueue,
        *,
        interval: float = 30.0,
        overlap: timedelta = DEFAULT_OVERLAP,
        clock: Callable[[], datetime] = utcnow,
        tickets: TicketSync | None = None,
    ) -> None:
        self._queue = queue
        self._interval = interval
        self._overlap = overlap
        self.tickets = tickets or TicketSync(sessionmaker, queue, overlap=overlap, clock=clock)
        self._sessionmaker = sessionmaker

    async def run(self) -> None:
        """Until cancelled. A failed round is logged and the next one tries again."""
        while True:
            try:
                await self.run_once()
            except asyncio.CancelledError:
                raise
            except QueueUnavailable as error:
                logger.warning("sync %s: the queue is unavailable: %s", self._queue.name, error)
            except Exception:
                logger.exception("sync %s: round failed; retrying", self._queue.name)
            await asyncio.sleep(self._interval)

    async def run_once(self) -> SyncRound:
        cursor = await self.tickets.cursor()
        changed = await self._queue.changed_since(cursor.position - self._overlap)
        known = await self.tickets.known_tickets(ticket.id for ticket in changed)
        position, held = cursor.position, None
        read = applied = already = 0
        for ticket in changed:  # least recently updated first
            if ticket.id in known:
                read += 1
                try:
                    result = await self.tickets.sync_ticket(ticket.id)
                except QueueUnavailable as error:
                    # Read it again next round: keep the cursor at it.
                    logger.warning(
                        "sync %s: ticket %s put off: %s: %s",
                        self._queue.name,
                        ticket.id,
                        type(error).__name__,
                        error,
                    )
                    held = ticket.updated_at if held is None else min(held, ticket.updated_at)
                    continue
                except TicketNotFound:
                    logger.info("sync %s: ticket %s is gone", self._queue.name, ticket.id)
                except Exception:  # a bug with one ticket must not stop the others
                    logger.exception("sync %s: ticket %s failed", self._queue.name, ticket.id)
                else:
                    applied += result.applied
                    already += result.already_applied
            position = max(position, ticket.updated_at)
        if held is not None:
            position = min(position, held)
        async with self._sessionmaker() as session:
            await session.execute(
                update(SyncCursor)
                .where(SyncCursor.queue_name == self._queue.name)
                .values(position=position, updated_at=utcnow())
            )
            await session.commit()
        if applied:
            logger.info(
                "sync %s: %d event(s) applied from %d ticket(s)", self._queue.name, applied, read
            )
        return SyncRound(
            changed=len(changed),
            read=read,
            applied=applied,
            already_applied=already,
            position=position,
        )
