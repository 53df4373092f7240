"""Sync back: what support does in the official queue reaches the merchant in Telegram.

A specialist works in the queue; the queue's adapter tells frontdesk what happened to each ticket
as frontdesk's own events (services/queue/base.py): a reply of support (with its files) is
forwarded to the merchant, a status change is announced (and kept on frontdesk's ticket), an
owner change becomes an assignment, and a ticket that left the queue — moved to another queue,
merged into another ticket, deleted — is announced with where it went (a merged ticket's record
follows the surviving number, so later replies there still reach the merchant). Two ways bring
them:

- pull: the `SyncWorker` asks the queue which tickets changed since its cursor (minus an
  overlap: a queue may keep times to the second, and an event's time can precede the ticket's
  update time), reads the events of the tickets frontdesk filed and applies what is new; and it
  asks which of frontdesk's open tickets are no longer in the queue at all (a moved or merged
  ticket no longer shows among the queue's changes), and reads those too;
- push: a queue that calls /queue/events (bot/queue_events.py) names a ticket and an event, and
  the same `TicketSync.sync_ticket` applies that ticket's events up to it.

Every event has a key, ``<queue>:<ticket>:<event id>``, inserted into `applied_queue_events`
(unique) in the transaction that applies it, so an event is applied once whichever way, and
however often, it arrives. The notice for the merchant is written in that same transaction
(services/notices.py) and sent by the delivery worker: applying an event never waits on Telegram.

Who speaks for support is the adapter's call (`ReplyEvent.by_support`: a privileged RT user or a
member of the staff group; in the builtin queue, staff through the console). A message by anyone
else (the requester's own mail, a Cc, a stranger writing in) is NOT forwarded: it is logged and
marked applied, so it is neither shown as support's nor passed on as the merchant's own.

Left out on purpose: frontdesk's own doings (adapters never return them), the specialists'
internal notes, tickets frontdesk did not file, and history older than the sync itself
(`SyncCursor.started_at`): turning the sync on must not replay months of correspondence.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from contextlib import suppress
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from services import assignments, notices
from services.assignments import Labels, TicketUrl
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
from services.leases import Lease
from services.queue.base import (
    BodyFormat,
    DeletedEvent,
    MergedEvent,
    MovedEvent,
    OwnerEvent,
    QueueEvent,
    QueueUnavailable,
    ReplyContent,
    ReplyEvent,
    StatusEvent,
    TicketNotFound,
    TicketQueue,
)

logger = logging.getLogger(__name__)

DEFAULT_OVERLAP = timedelta(seconds=60)
_LOOKUP_CHUNK = 500  # ids per IN (...) query
# frontdesk's tickets still followed in the queue: the ones whose way may still change.
_FOLLOWED = (TicketStatus.REGISTERED, TicketStatus.OPEN, TicketStatus.WAITING)
# As many of them gone at once, and all of them: frontdesk's sight is lost, not the tickets.
_ALL_GONE_GUARD = 5


class EventKind(StrEnum):
    REPLY = "reply"
    NOT_SUPPORT = "not-support"  # a message by someone who does not speak for support
    STATUS = "status"
    OWNER = "owner"
    MOVED = "moved"
    MERGED = "merged"
    DELETED = "deleted"
    BEFORE_MERGE = "before-merge"  # the survivor's history before a merge: not the merchant's


def event_kind(event: QueueEvent) -> EventKind:
    if isinstance(event, ReplyEvent):
        return EventKind.REPLY if event.by_support else EventKind.NOT_SUPPORT
    if isinstance(event, StatusEvent):
        return EventKind.STATUS
    if isinstance(event, OwnerEvent):
        return EventKind.OWNER
    if isinstance(event, MovedEvent):
        return EventKind.MOVED
    if isinstance(event, MergedEvent):
        return EventKind.MERGED
    return EventKind.DELETED


def event_key(queue: str, ticket_id: str, event_id: str) -> str:
    return f"{queue}:{ticket_id}:{event_id}"


@dataclass(frozen=True, slots=True)
class SyncEvent:
    """An event of one of the queue's tickets, ready to apply: a reply carries its content,
    read beforehand (never while a database transaction is open)."""

    queue: str
    event: QueueEvent
    content: ReplyContent | None = None

    @property
    def key(self) -> str:
        return event_key(self.queue, self.event.ticket_id, self.event.id)

    @property
    def kind(self) -> EventKind:
        return event_kind(self.event)


class Outcome(StrEnum):
    APPLIED = "applied"
    IGNORED = "ignored"  # recorded as applied, nobody told (a message not by support)
    DUPLICATE = "duplicate"
    UNKNOWN_TICKET = "unknown ticket"


async def apply_event(
    session: AsyncSession,
    item: SyncEvent,
    *,
    labels: Labels | None = None,
    ticket_url: TicketUrl | None = None,
) -> Outcome:
    """Applies one event exactly once, with the notice it calls for, in one transaction; commits.

    ``labels`` names a ticket's type and category for a specialist (Regulation.labels);
    ``ticket_url`` links the ticket in the queue's web interface on the specialist's card.

    The key is inserted first (ON CONFLICT DO NOTHING): of two concurrent applications of the
    same event, only the one whose insert wins goes on; PostgreSQL makes the other wait for it.
    The notice (services/notices.py) is written under the event's key in the same transaction, so
    the merchant is told exactly once whatever happens to the process after the commit.
    """
    event = item.event
    ticket = await session.scalar(
        select(Ticket)
        .where(Ticket.queue_name == item.queue, Ticket.queue_ticket_id == event.ticket_id)
        .order_by(Ticket.id)
        .limit(1)
        .options(selectinload(Ticket.merchant))
    )
    if ticket is None:
        await session.rollback()
        return Outcome.UNKNOWN_TICKET
    inserted = await session.scalar(
        insert_for(session, AppliedQueueEvent)
        .values(key=item.key, ticket_id=ticket.id, kind=item.kind.value, applied_at=utcnow())
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(AppliedQueueEvent.id)
    )
    if inserted is None:
        await session.rollback()
        return Outcome.DUPLICATE

    number, subject = event.ticket_id, ticket.subject
    body: notices.Body | None = None
    files: tuple[notices.File, ...] = ()
    reacted = (isinstance(event, ReplyEvent) and event.by_support) or isinstance(event, StatusEvent)
    if reacted and ticket.first_reaction_at is None:
        # The first reaction by support: the SLA watch (services/sla_watch.py) stops here.
        ticket.first_reaction_at = event.created_at
    if isinstance(event, ReplyEvent):
        if event.by_support:
            content = item.content or ReplyContent("", BodyFormat.TEXT)
            body = notices.Reply(
                number=number,
                subject=subject,
                author=event.author,
                body=content.body,
                body_format=content.body_format,
                sent_at=event.created_at,
            )
            files = tuple(
                notices.File(filename=f.filename, content_type=f.content_type, content=f.content)
                for f in content.files
            )
        else:
            logger.info(
                # Not the author: a requester's address is personal data.
                "ticket %s: message %s does not speak for support: not forwarded",
                ticket.reference,
                item.key,
            )
    elif isinstance(event, StatusEvent):
        if event.new is not None:
            ticket.status = event.new
        body = notices.StatusChanged(
            number=number, subject=subject, old=event.old, new=event.new, label=event.label
        )
    elif isinstance(event, OwnerEvent):
        # The merchant is not told; the new owner is, when they are a linked staff member.
        ticket.queue_owner = event.new
        if event.new:
            await assignments.tell_owner(
                session,
                ticket,
                event.new,
                number=number,
                key=item.key,
                labels=labels,
                ticket_url=ticket_url,
            )
        logger.info(
            "ticket %s (queue #%s) assigned to %s (was %s) by %s",
            ticket.reference,
            number,
            event.new or "nobody",
            event.old or "nobody",
            event.author,
        )
    elif isinstance(event, MovedEvent):
        body = notices.Moved(number=number, subject=subject, queue=event.queue)
    elif isinstance(event, MergedEvent):
        # Replies now come on the surviving ticket: follow it there.
        ticket.queue_ticket_id = event.into
        body = notices.Merged(number=number, subject=subject, into=event.into)
    else:
        # A deleted ticket will not be worked on: for the merchant it is turned down.
        ticket.status = TicketStatus.REJECTED
        body = notices.Deleted(number=number, subject=subject)
    if body is not None:
        await notices.enqueue(
            session,
            key=f"event:{item.key}",
            chat_id=ticket.merchant.telegram_id,
            locale=ticket.locale,
            ticket_id=ticket.id,
            body=body,
            files=files,
        )
    await session.commit()
    logger.info("applied %s event %s to ticket %s", item.kind.value, item.key, ticket.reference)
    return Outcome.APPLIED if body is not None or isinstance(event, OwnerEvent) else Outcome.IGNORED


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
    reached: bool = True  # the ticket had the event asked for (push)


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
        labels: Labels | None = None,
        ticket_url: TicketUrl | None = None,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.queue = queue
        self.labels = labels
        # The link on a specialist's card: the queue's own unless the operator set another.
        self.ticket_url = ticket_url or queue.ticket_url
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
        """Applies the ticket's events not applied yet, oldest first, up to event `upto` (all
        of them if None). Raises QueueError when the queue fails; what was applied before stays
        applied."""
        if not await self.known_tickets([ticket_id]):
            return TicketSyncResult(known=False)
        if self._started_at is None:
            await self.cursor()
        assert self._started_at is not None
        floor = self._started_at - self.overlap

        try:
            events = await self.queue.events(ticket_id)
        except TicketNotFound:
            # frontdesk filed it and the queue has no such number any more: erased.
            events = [DeletedEvent("gone", ticket_id, self.clock(), "")]
        if upto is not None:
            ids = [event.id for event in events]
            if upto not in ids:
                return TicketSyncResult(reached=False)
            events = events[: ids.index(upto) + 1]
        relevant = [event for event in events if event.created_at >= floor]
        keys = {event.id: event_key(self.queue.name, ticket_id, event.id) for event in relevant}
        async with self.sessionmaker() as session:
            done = set(
                await session.scalars(
                    select(AppliedQueueEvent.key).where(AppliedQueueEvent.key.in_(keys.values()))
                )
            )
        applied = already = 0
        for event in relevant:
            if keys[event.id] in done:
                already += 1
                continue
            content = None
            if isinstance(event, ReplyEvent) and event.by_support:
                content = await event.content()  # read only for what is applied now
            if isinstance(event, MergedEvent):
                await self._skip_survivors_past(ticket_id, event)
            async with self.sessionmaker() as session:
                outcome = await apply_event(
                    session,
                    SyncEvent(self.queue.name, event, content),
                    labels=self.labels,
                    ticket_url=self.ticket_url,
                )
            if outcome in (Outcome.APPLIED, Outcome.IGNORED):
                applied += 1
            elif outcome is Outcome.DUPLICATE:
                already += 1  # the other way (push or pull) was quicker
            if isinstance(event, MergedEvent) and outcome is not Outcome.DUPLICATE:
                break  # what follows is the survivor's business, read under its number
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

    async def _skip_survivors_past(self, ticket_id: str, merge: MergedEvent) -> None:
        """Before the merchant's record follows a merged ticket to the survivor: the
        survivor's events up to the merge belong to its own requester, never to this merchant.
        Marks them applied (for this ticket) so that following it does not replay them."""
        try:
            past = [
                e for e in await self.queue.events(merge.into) if e.created_at <= merge.created_at
            ]
        except TicketNotFound:
            return
        if not past:
            return
        async with self.sessionmaker() as session:
            own = await session.scalar(
                select(Ticket.id)
                .where(Ticket.queue_name == self.queue.name, Ticket.queue_ticket_id == ticket_id)
                .order_by(Ticket.id)
                .limit(1)
            )
            if own is None:
                return
            for event in past:
                await session.execute(
                    insert_for(session, AppliedQueueEvent)
                    .values(
                        key=event_key(self.queue.name, merge.into, event.id),
                        ticket_id=own,
                        kind=EventKind.BEFORE_MERGE.value,
                        applied_at=utcnow(),
                    )
                    .on_conflict_do_nothing(index_elements=["key"])
                )
            await session.commit()

    async def followed(self) -> list[str]:
        """Numbers of frontdesk's tickets in this queue whose way may still change, except
        those known to have left it (moved away or deleted)."""
        left = select(AppliedQueueEvent.ticket_id).where(
            AppliedQueueEvent.kind.in_([EventKind.MOVED.value, EventKind.DELETED.value])
        )
        async with self.sessionmaker() as session:
            rows = await session.scalars(
                select(Ticket.queue_ticket_id).where(
                    Ticket.queue_name == self.queue.name,
                    Ticket.queue_ticket_id.is_not(None),
                    Ticket.status.in_(_FOLLOWED),
                    Ticket.id.not_in(left),
                )
            )
            return sorted({row for row in rows if row is not None})


# --- the worker ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class SyncRound:
    changed: int  # tickets the queue reported changed
    read: int  # of them, frontdesk's, whose events were read
    applied: int
    already_applied: int
    position: datetime
    gone: int = 0  # frontdesk's followed tickets no longer in the queue (moved, merged, deleted)


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
        on_round: Callable[[], None] | None = None,
        lease: Lease | None = None,
    ) -> None:
        self._queue = queue
        self._interval = interval
        # Several processes: only the lease's holder reads the queue (two at once would apply
        # nothing twice, the events' keys see to it, but would read the queue twice as often);
        # the others stand by and take over within the lease's TTL when the holder dies.
        self._lease = lease
        # Told after each successful round (the sync lag metric).
        self._on_round = on_round or (lambda: None)
        self._overlap = overlap
        self.tickets = tickets or TicketSync(sessionmaker, queue, overlap=overlap, clock=clock)
        self._sessionmaker = sessionmaker

    async def run(self) -> None:
        """Until cancelled. A failed round is logged and the next one tries again."""
        try:
            while True:
                try:
                    if await self._leading():
                        await self.run_once()
                        self._on_round()
                except asyncio.CancelledError:
                    raise
                except QueueUnavailable as error:
                    logger.warning("sync %s: the queue is unavailable: %s", self._queue.name, error)
                except Exception:
                    logger.exception("sync %s: round failed; retrying", self._queue.name)
                await asyncio.sleep(self._interval)
        finally:
            if self._lease is not None:
                with suppress(Exception):  # else it lapses within its TTL
                    await self._lease.release()

    async def _leading(self) -> bool:
        """Whether this process reads the queue this round (it holds the lease, or there is
        none)."""
        if self._lease is None:
            return True
        if await self._lease.hold():
            return True
        logger.debug("sync %s: another process reads the queue", self._queue.name)
        return False

    async def run_once(self) -> SyncRound:
        cursor = await self.tickets.cursor()
        changed = await self._queue.changed_since(cursor.position - self._overlap)
        known = await self.tickets.known_tickets(ticket.id for ticket in changed)
        position, held = cursor.position, None
        read = applied = already = 0
        for ticket in changed:  # least recently updated first
            if ticket.id in known:
                read += 1
                result = await self._sync(ticket.id)
                if result is None:  # read it again next round: keep the cursor at it
                    held = ticket.updated_at if held is None else min(held, ticket.updated_at)
                    continue
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

        # A ticket moved to another queue or merged no longer shows among the queue's changes:
        # ask which of frontdesk's are gone, and read those.
        followed = await self.tickets.followed()
        gone = sorted(await self._queue.missing(followed), key=_number)
        if len(gone) >= _ALL_GONE_GUARD and len(gone) == len(followed):
            # Every one of them at once: rather frontdesk lost sight of the queue (rights taken,
            # a renamed queue) than support moved them all. Tell nobody; an operator must look.
            logger.error(
                "sync %s: none of frontdesk's %d open tickets is in the queue any more; "
                "not announcing them as moved: check frontdesk's rights and the queue's name",
                self._queue.name,
                len(followed),
            )
            gone = []
        for number in gone:
            result = await self._sync(number)
            if result is not None:
                applied += result.applied
                already += result.already_applied
        if applied:
            logger.info(
                "sync %s: %d event(s) applied from %d ticket(s)",
                self._queue.name,
                applied,
                read + len(gone),
            )
        return SyncRound(
            changed=len(changed),
            read=read,
            applied=applied,
            already_applied=already,
            position=position,
            gone=len(gone),
        )

    async def _sync(self, number: str) -> TicketSyncResult | None:
        """One ticket's events; None when it is to be read again next round."""
        try:
            return await self.tickets.sync_ticket(number)
        except QueueUnavailable as error:
            logger.warning(
                "sync %s: ticket %s put off: %s: %s",
                self._queue.name,
                number,
                type(error).__name__,
                error,
            )
            return None
        except Exception:  # a bug with one ticket must not stop the others
            logger.exception("sync %s: ticket %s failed", self._queue.name, number)
            return TicketSyncResult()


def _number(ticket_id: str) -> tuple[int, str]:
    return (int(ticket_id), ticket_id) if ticket_id.isdigit() else (0, ticket_id)
