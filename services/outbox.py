"""What the queue's outboxes share — the filing of tickets (services/filing.py), the merchants'
messages on them (services/replies.py), frontdesk's internal notes (services/staff_notes.py) and
the specialists' actions (services/staff_actions.py): rows claimed with leases, a capped backoff,
and one worker loop.

A row is claimed by setting `claimed_until`; a worker that dies lets it go by simply letting the
lease expire. Every claim and renewal is a conditional UPDATE, so two workers (two processes, or
SQLite without row locks) never both hold a row.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TypedDict, TypeVar

from sqlalchemy import Select, bindparam, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased, selectinload

from services.db.base import UTCDateTime, utcnow
from services.db.dialect import rowcount
from services.db.models import (
    FilingOutbox,
    ReplyOutbox,
    StaffActionOutbox,
    StaffNoteOutbox,
    Ticket,
)
from services.files import FileRef, FileSource, FileUnavailable
from services.queue.base import (
    Attachment,
    QueueError,
    QueueRejected,
    TicketNotFound,
    TicketQueue,
)
from services.queue.health import QueueHealth
from services.rounds import Rounds

logger = logging.getLogger(__name__)

OutboxRow = type[FilingOutbox] | type[ReplyOutbox] | type[StaffNoteOutbox] | type[StaffActionOutbox]
# The outboxes whose rows stay once done (`done_at`) and belong to a ticket.
TicketMessage = TypeVar("TicketMessage", ReplyOutbox, StaffNoteOutbox, StaffActionOutbox)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """Exponential backoff with full jitter, capped: the queue is never hammered, and a row
    is retried for as long as it takes (it is never dropped)."""

    base: timedelta = timedelta(seconds=2)
    cap: timedelta = timedelta(minutes=5)

    def delay(self, attempt: int, rng: Callable[[], float] = random.random) -> timedelta:
        ceiling = min(self.cap, self.base * (2 ** min(attempt - 1, 30)))
        # Never zero: a failing queue must not be retried in a tight loop.
        return max(ceiling * rng(), self.base / 2)


async def take_leases(
    session: AsyncSession, model: OutboxRow, ids: Sequence[int], *, now: datetime, until: datetime
) -> list[int]:
    """Of these due rows, those this worker now holds until `until`."""
    taken = []
    for row_id in ids:
        result = await session.execute(
            update(model)
            .where(
                model.id == row_id,
                or_(model.claimed_until.is_(None), model.claimed_until < now),
            )
            .values(claimed_until=until)
        )
        if rowcount(result) == 1:
            taken.append(row_id)
    return taken


async def renew_lease(
    session: AsyncSession, model: OutboxRow, row_id: int, held: datetime, *, until: datetime
) -> bool:
    """Extends a lease this worker holds (`held`: its end as claimed); False if it was lost."""
    renewed = await session.execute(
        update(model)
        .where(model.id == row_id, model.claimed_until == held)
        .values(claimed_until=until)
    )
    return rowcount(renewed) == 1


async def retry_refused(
    session: AsyncSession, model: OutboxRow, *, ticket_id: int | None = None
) -> int:
    """Re-drives the rows the queue refused for good, once an operator has fixed the cause
    (`frontdesk outbox retry`): due at once, attempts counted afresh. Only the given ticket's
    (frontdesk's id) when ``ticket_id`` is set. Returns how many; commits."""
    statement = (
        update(model)
        .where(model.refused_at.is_not(None))
        .values(refused_at=None, next_attempt_at=utcnow(), attempts=0, claimed_until=None)
    )
    if model is not FilingOutbox:  # a refused message is never done, but say so
        statement = statement.where(model.done_at.is_(None))  # type: ignore[union-attr]
    if ticket_id is not None:
        statement = statement.where(model.ticket_id == ticket_id)
    result = await session.execute(statement)
    await session.commit()
    return rowcount(result)


class FileReadFailed(Exception):
    """A file could not be read from Telegram this time (Telegram unreachable): the row is
    retried with the usual backoff. A file that can never be read is FileUnavailable instead."""


async def read_files(
    files: FileSource, refs: Sequence[FileRef], *, what: str
) -> tuple[list[Attachment], list[str]]:
    """The files' content for the queue, and the names of those Telegram will never hand over
    (the message says so instead). Raises FileReadFailed when one may be read later."""
    attachments: list[Attachment] = []
    unreadable: list[str] = []
    for position, ref in enumerate(refs, 1):
        try:
            content = await files.read(ref)
        except FileUnavailable as error:
            # By position and kind: a file's name is the sender's, not for the log.
            logger.warning("file %d of %s cannot be read: %s", position, what, type(error).__name__)
            unreadable.append(ref.filename)
            continue
        except Exception as error:
            raise FileReadFailed(f"{ref.filename}: {type(error).__name__}: {error}") from error
        attachments.append(Attachment(ref.filename, ref.content_type, content))
    return attachments, unreadable


class WorkerOptions(TypedDict, total=False):
    """What every outbox worker takes besides its own: OutboxWorker's keyword arguments, passed
    through by the subclasses (`**options`)."""

    on_notice: Callable[[], None] | None
    health: QueueHealth | None
    retry: RetryPolicy | None
    lease: timedelta
    batch: int
    idle_interval: float
    clock: Callable[[], datetime]


class OutboxWorker:
    """The loop and the settings both outbox workers share; a subclass claims (`_claim`) and
    handles one row (`_deliver`)."""

    def __init__(
        self,
        name: str,
        sessionmaker: async_sessionmaker[AsyncSession],
        queue: TicketQueue,
        *,
        on_notice: Callable[[], None] | None = None,
        health: QueueHealth | None = None,
        retry: RetryPolicy | None = None,
        lease: timedelta = timedelta(minutes=2),
        batch: int = 10,
        idle_interval: float = 2.0,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._queue = queue
        # Called after a notice was committed: the delivery worker sends it at once.
        self._on_notice = on_notice or (lambda: None)
        # What the queue last answered, for /healthz (one per process).
        self._health = health or QueueHealth()
        self._retry = retry or RetryPolicy()
        self._lease = lease
        self._batch = batch
        # The claims' queries, by outbox model and order, built once (they run at every poll).
        self._due_queries: dict[tuple[type, bool], Select[int]] = {}
        self._clock = clock
        self._rounds = Rounds(name, self.run_once, idle_interval=idle_interval)

    def wake(self) -> None:
        """There is work now: do it rather than at the next poll."""
        self._rounds.wake()

    async def run(self) -> None:
        """Until cancelled. A failure of one round is logged and the next round goes on."""
        await self._rounds.run()

    async def run_once(self) -> int:
        claimed = await self._claim()
        for row_id in claimed:
            await self._deliver(row_id)
        return len(claimed)

    async def _claim(self) -> list[int]:
        raise NotImplementedError

    async def _deliver(self, row_id: int) -> None:
        raise NotImplementedError

    def _report(self, error: QueueError) -> None:
        """Tells /healthz what the queue answered: refused for good, no such ticket (the queue
        answered, rightly), or a transient failure."""
        described = f"{type(error).__name__}: {error}"
        if isinstance(error, QueueRejected):
            self._health.refused(described)
        elif isinstance(error, TicketNotFound):
            self._health.not_found()
        else:
            self._health.failed_transiently(described)

    async def _claim_messages(self, model: type[TicketMessage], *, in_order: bool) -> list[int]:
        """Claims due rows of a ticket-message outbox, once their ticket is registered in the
        queue; with ``in_order``, only each ticket's oldest row still on its way (a reply before
        the close that follows it)."""
        now = self._clock()
        key = (model, in_order)
        due = self._due_queries.get(key)
        if due is None:  # built once: the claim runs at every wake and poll
            due = self._due_queries[key] = self._due_query(model, in_order=in_order)
        async with self._sessionmaker.begin() as session:
            ids = list(await session.scalars(due, {"now": now}))
            return await take_leases(session, model, ids, now=now, until=now + self._lease)

    def _due_query(self, model: type[TicketMessage], *, in_order: bool) -> Select[int]:
        now = bindparam("now", type_=UTCDateTime())
        due = (
            select(model.id)
            .join(Ticket, Ticket.id == model.ticket_id)
            .where(
                model.done_at.is_(None),
                model.refused_at.is_(None),
                model.next_attempt_at <= now,
                or_(model.claimed_until.is_(None), model.claimed_until < now),
                Ticket.queue_ticket_id.is_not(None),
            )
            .order_by(model.next_attempt_at, model.id)
            .limit(self._batch)
            .with_for_update(skip_locked=True, of=model)
        )
        if in_order:
            earlier = aliased(model)
            due = due.where(
                ~select(earlier.id)
                .where(
                    earlier.ticket_id == model.ticket_id,
                    earlier.id < model.id,
                    earlier.done_at.is_(None),
                    earlier.refused_at.is_(None),
                )
                .exists()
            )
        return due

    async def _hold(
        self, session: AsyncSession, model: type[TicketMessage], row_id: int
    ) -> tuple[TicketMessage, datetime] | None:
        """A claimed message row with its ticket, under a fresh lease (committed); None if it is
        done already or another worker took it meanwhile."""
        row = await session.scalar(
            select(model).where(model.id == row_id).options(selectinload(model.ticket))
        )
        if row is None or row.claimed_until is None or row.done_at is not None:
            return None
        lease = await self._renew(session, model, row.id, row.claimed_until)
        if lease is None:
            await session.rollback()
            return None
        return row, lease

    async def _record_failure(
        self,
        session: AsyncSession,
        model: OutboxRow,
        row_id: int,
        lease: datetime,
        *,
        attempts: int,
        error: Exception,
        refused: bool,
        delay_notified: bool,
    ) -> tuple[datetime, datetime] | None:
        """Attempt number `attempts` failed: retried after the policy's backoff, or stopped for
        an operator when `refused`. When it was recorded and when the row is due again; None
        (nothing written) if the lease lapsed meanwhile and the row's new owner decides."""
        now = self._clock()
        next_attempt_at = now if refused else now + self._retry.delay(attempts)
        recorded = await record_failure(
            session,
            model,
            row_id,
            lease,
            attempts=attempts,
            next_attempt_at=next_attempt_at,
            error=error,
            delay_notified=delay_notified,
            refused_at=now if refused else None,
        )
        return (now, next_attempt_at) if recorded else None

    async def _renew(
        self, session: AsyncSession, model: OutboxRow, row_id: int, held: datetime
    ) -> datetime | None:
        """A fresh lease on a row before a long call to the queue, committed; None if another
        worker took the row meanwhile."""
        lease = self._clock() + self._lease
        if not await renew_lease(session, model, row_id, held, until=lease):
            return None
        await session.commit()
        return lease


async def record_failure(
    session: AsyncSession,
    model: OutboxRow,
    row_id: int,
    lease: datetime,
    *,
    attempts: int,
    next_attempt_at: datetime,
    error: Exception,
    delay_notified: bool,
    refused_at: datetime | None,
) -> bool:
    """A failed attempt on a row this worker holds, its lease released; False (nothing
    written) if the lease lapsed meanwhile and the row's new owner decides."""
    recorded = await session.execute(
        update(model)
        .where(model.id == row_id, model.claimed_until == lease)
        .values(
            attempts=attempts,
            next_attempt_at=next_attempt_at,
            claimed_until=None,
            last_error=f"{type(error).__name__}: {error}"[:2000],
            delay_notified=delay_notified,
            refused_at=refused_at,
        )
    )
    return rowcount(recorded) == 1
