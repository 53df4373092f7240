"""A specialist's actions on a ticket, taken in Telegram (issue 9, point 3): Reply (correspondence
to the merchant, with files), Comment (internal), Resolve, Take (assign to oneself) and Reassign
(to another linked specialist).

frontdesk stays no second source of truth: every action is written to the queue first, on the
specialist's behalf with frontdesk's own queue account (the TicketQueue port's
``reply_as_support``, ``note_as_support``, ``resolve_as_support``, ``assign``), and only then does
anything change here. The way is the outbox's, as for the merchant's replies (services/replies.py):

- `request` checks the action (the actor an active staff member, the ticket filed by frontdesk
  and in the queue, not closed for a reply or a resolve, a reply not empty, at most MAX_FILES
  files, a reassignment to an active staff member) and writes a `StaffActionOutbox` row, and
  commits. ``key`` (the Telegram update, scoped to the specialist) makes a retried update or a
  double tap one action.
- `StaffActionWorker` writes each row to the queue, in order per ticket, the row's ``reference``
  riding with a reply or comment so a retry after an answer lost on the way posts nothing twice.
  Once the queue took it, ONE transaction marks the row done, applies the effect here and writes
  the notices: a reply reaches the merchant and a resolve changes the status through
  services/sync.apply_event with a synthetic event (so the first-reaction stamp, the notice key
  and the rendering are those of a reply or status change made in the queue itself); take and
  reassign set the ticket's owner, and a new owner other than the actor gets the assignment card
  (services/assignments.tell_owner); the specialist gets a confirmation.
- A transient failure (the queue unreachable, a file Telegram did not hand over this time) is
  retried with a capped backoff, and the specialist is told once that it is delayed; a refusal
  for good (QueueRejected, TicketNotFound) stops the row and tells the specialist why, honestly.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Unpack

from pydantic import TypeAdapter, ValidationError
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from services import assignments, notices, staff
from services.assignments import Labels
from services.db.base import utcnow
from services.db.dialect import rowcount
from services.db.models import (
    StaffActionKind,
    StaffActionOutbox,
    StaffMember,
    Ticket,
    TicketStatus,
)
from services.files import MAX_FILES, FileRef, FileSource
from services.modification_records import MODIFICATION
from services.outbox import FileReadFailed, OutboxWorker, WorkerOptions, read_files
from services.queue.base import (
    Attachment,
    BodyFormat,
    QueueError,
    QueueRejected,
    ReplyContent,
    ReplyEvent,
    StatusEvent,
    TicketNotFound,
    TicketQueue,
)
from services.sync import Outcome, SyncEvent, apply_event

__all__ = [
    "Accepted",
    "ActionRefused",
    "CardActions",
    "Specialist",
    "StaffActionKind",
    "StaffActionWorker",
    "card_actions",
    "request",
    "specialists",
    "ticket_actions",
]

logger = logging.getLogger(__name__)

KEY_MAX = 200
# Statuses that take no reply and no resolve any more.
CLOSED = frozenset({TicketStatus.RESOLVED, TicketStatus.REJECTED})
STAFF_LOCALE = assignments.STAFF_LOCALE

_FILES: TypeAdapter[list[FileRef]] = TypeAdapter(list[FileRef])


# --- refusals ---------------------------------------------------------------------------------


class ActionRefused(Exception):
    """The action was not accepted and nothing was written; ``reason`` (one of the constants
    below) says why, for the handler to word."""

    def __init__(self, reason: str, number: str = "") -> None:
        super().__init__(f"{reason} (ticket {number!r})")
        self.reason = reason
        self.number = number


NOT_STAFF = "not_staff"  # the actor is not (any more) an active staff member
NO_TICKET = "no_ticket"  # no ticket frontdesk filed has this number in the queue
NOT_FILED = "not_filed"  # frontdesk's ticket, not yet registered in the queue
CLOSED_TICKET = "closed"  # resolved or rejected: no reply, no resolve
EMPTY = "empty"  # a reply or comment with nothing in it
TOO_MANY_FILES = "too_many_files"
NO_FILES_IN_COMMENT = "no_files_in_comment"  # the queue's internal comments take text only
UNKNOWN_SPECIALIST = "unknown_specialist"  # a reassignment to no active staff member
ALREADY_OWNER = "already_owner"  # a reassignment to whoever owns it already
ALREADY_YOURS = "already_yours"  # a take of one's own ticket


@dataclass(frozen=True, slots=True)
class Accepted:
    """An action accepted into the outbox. ``duplicate``: this key was accepted before (a
    retried update, a double tap): nothing new was written."""

    id: int
    number: str
    subject: str
    kind: StaffActionKind
    owner: str | None
    duplicate: bool
    done: bool


@dataclass(frozen=True, slots=True)
class Specialist:
    """An active staff member a ticket may be reassigned to (``id``: the registry's)."""

    id: int
    queue_user: str


# --- what a specialist may do -----------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CardActions:
    """The buttons under a ticket card for a specialist."""

    reply: bool = True
    comment: bool = True
    resolve: bool = True
    modification: bool = False
    take: bool = True
    reassign: bool = True


def card_actions(*, modification: bool, owned_by_reader: bool) -> CardActions:
    """What a ticket card offers: Record modification only on a modification request; Take
    only when the ticket is not the reader's already."""
    return CardActions(modification=modification, take=not owned_by_reader)


async def ticket_actions(session: AsyncSession, actor: staff.Staff, number: str) -> CardActions:
    """What the actor may do on the ticket the queue numbers ``number`` now (the card's buttons
    after an action). Raises ActionRefused(NO_TICKET)."""
    ticket = await _ticket(session, number)
    closed = ticket.status in CLOSED
    return CardActions(
        reply=not closed,
        resolve=not closed,
        modification=ticket.request_type == MODIFICATION,
        take=ticket.queue_owner != actor.queue_user,
    )


async def specialists(session: AsyncSession, *, besides: str | None = None) -> list[Specialist]:
    """Active staff members a ticket may be reassigned to (all but ``besides``), by name."""
    rows = await session.execute(
        select(StaffMember.id, StaffMember.queue_user)
        .where(StaffMember.removed_at.is_(None))
        .order_by(StaffMember.queue_user)
    )
    return [Specialist(row_id, user) for row_id, user in rows if user != besides]


async def specialist(session: AsyncSession, member_id: int) -> Specialist | None:
    row = await session.scalar(
        select(StaffMember).where(StaffMember.id == member_id, StaffMember.removed_at.is_(None))
    )
    return Specialist(row.id, row.queue_user) if row else None


# --- accepting an action ----------------------------------------------------------------------


async def request(
    session: AsyncSession,
    *,
    actor: staff.Staff,
    number: str,
    kind: StaffActionKind,
    key: str,
    text: str = "",
    files: Sequence[FileRef] = (),
    owner: str | None = None,
    locale: str | None = None,
) -> Accepted:
    """Accepts the actor's action on the ticket the queue numbers ``number`` into the outbox, and
    commits. ``key`` identifies the Telegram input (a message, an album, a button press); the
    same key again gives the same Accepted (``duplicate``). ``text``/``files`` for a reply (text
    or files) or a comment (text); ``owner`` the queue user of a reassignment (a take is to the
    actor). ``locale``: the actor's, for their confirmation. Raises ActionRefused. The caller
    wakes the worker (`StaffActionWorker.wake`) after it returns."""
    number = number.strip().lstrip("#")
    member = await staff.member_of(session, actor.telegram_id)
    if member is None:
        raise ActionRefused(NOT_STAFF, number)
    scoped_key = f"{member.telegram_id}:{key}"[:KEY_MAX]
    existing = await _by_key(session, scoped_key)
    if existing is not None:
        return _accepted(existing, duplicate=True)
    ticket = await _ticket(session, number)
    if ticket.queue_ticket_id is None:
        raise ActionRefused(NOT_FILED, number)
    text = (text or "").strip()
    if kind is StaffActionKind.REPLY:
        if not text and not files:
            raise ActionRefused(EMPTY, number)
        if len(files) > MAX_FILES:
            raise ActionRefused(TOO_MANY_FILES, number)
    elif kind is StaffActionKind.COMMENT:
        if files:
            raise ActionRefused(NO_FILES_IN_COMMENT, number)
        if not text:
            raise ActionRefused(EMPTY, number)
    else:
        text, files = "", ()
    if kind in (StaffActionKind.REPLY, StaffActionKind.RESOLVE):
        pending_resolve = await session.scalar(
            select(StaffActionOutbox)
            .where(
                StaffActionOutbox.ticket_id == ticket.id,
                StaffActionOutbox.kind == StaffActionKind.RESOLVE,
                StaffActionOutbox.done_at.is_(None),
                StaffActionOutbox.refused_at.is_(None),
            )
            .limit(1)
        )
        if pending_resolve is not None and kind is StaffActionKind.RESOLVE:
            return _accepted(pending_resolve, duplicate=True)  # the same resolve, on its way
        if ticket.status in CLOSED or pending_resolve is not None:
            raise ActionRefused(CLOSED_TICKET, number)
    if kind is StaffActionKind.TAKE:
        owner = member.queue_user
    elif kind is StaffActionKind.ASSIGN:
        target = await session.scalar(
            select(StaffMember.queue_user).where(
                StaffMember.queue_user == (owner or ""), StaffMember.removed_at.is_(None)
            )
        )
        if target is None:
            raise ActionRefused(UNKNOWN_SPECIALIST, number)
    else:
        owner = None
    if owner is not None and ticket.queue_owner == owner:
        raise ActionRefused(
            ALREADY_YOURS if kind is StaffActionKind.TAKE else ALREADY_OWNER, number
        )
    row = StaffActionOutbox(
        key=scoped_key,
        reference=uuid.uuid4().hex,
        ticket_id=ticket.id,
        staff_telegram_id=member.telegram_id,
        queue_user=member.queue_user,
        kind=kind,
        owner=owner,
        text=text,
        files=[f.model_dump(mode="json") for f in files],
        locale=locale or await staff.locale_of(session, member.telegram_id, STAFF_LOCALE),
        attempts=0,
        next_attempt_at=utcnow(),
        delay_notified=False,
        created_at=utcnow(),
    )
    row.ticket = ticket
    session.add(row)
    try:
        await session.commit()
    except IntegrityError:
        # The same update handled twice at once: the other one wrote it first.
        await session.rollback()
        existing = await _by_key(session, scoped_key)
        if existing is None:
            raise
        return _accepted(existing, duplicate=True)
    return _accepted(row, duplicate=False)


async def _ticket(session: AsyncSession, number: str) -> Ticket:
    number = number.strip().lstrip("#")
    ticket = (
        await session.scalar(
            select(Ticket).where(Ticket.queue_ticket_id == number).order_by(Ticket.id).limit(1)
        )
        if number
        else None
    )
    if ticket is None:
        raise ActionRefused(NO_TICKET, number)
    return ticket


async def _by_key(session: AsyncSession, key: str) -> StaffActionOutbox | None:
    return await session.scalar(
        select(StaffActionOutbox)
        .where(StaffActionOutbox.key == key)
        .options(selectinload(StaffActionOutbox.ticket))
    )


def _accepted(row: StaffActionOutbox, *, duplicate: bool) -> Accepted:
    return Accepted(
        id=row.id,
        number=row.ticket.queue_ticket_id or "",
        subject=row.ticket.subject,
        kind=row.kind,
        owner=row.owner,
        duplicate=duplicate,
        done=row.done_at is not None,
    )


def files_of(row: StaffActionOutbox) -> list[FileRef]:
    try:
        return _FILES.validate_python(row.files or [])
    except ValidationError:
        logger.error("staff action %d has unreadable files", row.id)  # names: not logged
        return []


# --- the worker -------------------------------------------------------------------------------


class StaffActionWorker(OutboxWorker):
    """Writes accepted actions to the queue, exactly once, in order per ticket, and applies
    them here once the queue has them (see the module's docstring)."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        queue: TicketQueue,
        files: FileSource,
        *,
        labels: Labels | None = None,
        **options: Unpack[WorkerOptions],
    ) -> None:
        super().__init__("staff-actions", sessionmaker, queue, **options)
        self._files = files
        self._labels = labels

    async def _claim(self) -> list[int]:
        return await self._claim_messages(StaffActionOutbox, in_order=True)

    async def _deliver(self, row_id: int) -> None:
        async with self._sessionmaker() as session:
            held = await self._hold(session, StaffActionOutbox, row_id)
            if held is None:
                return
            row, lease = held
            number = row.ticket.queue_ticket_id
            kind, author, text, owner = row.kind, row.queue_user, row.text, row.owner
            reference, refs = row.reference, files_of(row)
            await session.commit()  # hold no transaction open while Telegram or the queue answer
            if number is None:  # cannot be: accepted only once registered
                return
            attachments: list[Attachment] = []
            try:
                if kind is StaffActionKind.REPLY:
                    attachments, unreadable = await read_files(
                        self._files, refs, what="a staff reply"
                    )
                    body = _compose(text, unreadable)
                    await self._queue.reply_as_support(
                        number, author, body, attachments, reference=reference
                    )
                elif kind is StaffActionKind.COMMENT:
                    await self._queue.note_as_support(number, author, text, reference=reference)
                elif kind is StaffActionKind.RESOLVE:
                    await self._queue.resolve_as_support(number, author)
                else:
                    await self._queue.assign(number, owner, author=author)
            except Exception as error:
                if isinstance(error, QueueError):
                    self._report(error)
                elif not isinstance(error, FileReadFailed):
                    logger.exception("staff action %d on ticket %s crashed", row_id, number)
                await self._failed(session, row_id, number, lease, error)
                return
            self._health.succeeded()
            await self._done(session, row_id, number, lease, attachments)

    async def _done(
        self,
        session: AsyncSession,
        row_id: int,
        number: str,
        lease: datetime,
        attachments: Sequence[Attachment],
    ) -> None:
        """In one transaction: the row done, the effect here, the notices."""
        now = self._clock()
        done = await session.execute(
            update(StaffActionOutbox)
            .where(StaffActionOutbox.id == row_id, StaffActionOutbox.claimed_until == lease)
            .values(done_at=now, claimed_until=None, last_error=None)
        )
        if rowcount(done) != 1:
            await session.rollback()
            logger.warning("lease on staff action %d lapsed while writing it; left", row_id)
            return
        row = await session.get_one(StaffActionOutbox, row_id, populate_existing=True)
        ticket = await session.get_one(Ticket, row.ticket_id, populate_existing=True)
        key = f"staff-action:{row_id}"
        if row.kind in (StaffActionKind.TAKE, StaffActionKind.ASSIGN):
            # frontdesk's own owner change never comes back through the sync.
            ticket.queue_owner = row.owner
            if row.owner and row.owner != row.queue_user:
                await assignments.tell_owner(
                    session, ticket, row.owner, number=number, key=key, labels=self._labels
                )
        await notices.enqueue(
            session,
            key=f"staff_action_done:{row_id}",
            chat_id=row.staff_telegram_id,
            locale=row.locale,
            body=notices.StaffActionDone(
                number=number,
                subject=ticket.subject,
                action=row.kind,
                owner=row.owner,
                files=len(attachments),
            ),
            now=now,
        )
        kind, author = row.kind, row.queue_user
        event: ReplyEvent | StatusEvent | None = None
        content: ReplyContent | None = None
        if kind is StaffActionKind.REPLY:
            event = ReplyEvent(key, number, now, author, by_support=True)
            content = ReplyContent(row.text, BodyFormat.TEXT, tuple(attachments))
        elif kind is StaffActionKind.RESOLVE:
            event = StatusEvent(
                key,
                number,
                now,
                author,
                old=ticket.status,
                new=TicketStatus.RESOLVED,
                label=TicketStatus.RESOLVED.value,
            )
        if event is None:
            await session.commit()
        else:
            # The merchant's side as if support had done it in the queue: the same notice, key
            # machinery and first-reaction stamp (services/sync.py). It commits the whole.
            outcome = await apply_event(
                session, SyncEvent(self._queue.name, event, content), labels=self._labels
            )
            if outcome in (Outcome.DUPLICATE, Outcome.UNKNOWN_TICKET):
                logger.error(
                    "staff action %d on #%s: the merchant's side not applied (%s)",
                    row_id,
                    number,
                    outcome.value,
                )
                # Rolled back by apply_event: the row is done all the same (the queue has it).
                await session.execute(
                    update(StaffActionOutbox)
                    .where(StaffActionOutbox.id == row_id, StaffActionOutbox.claimed_until == lease)
                    .values(done_at=now, claimed_until=None, last_error=None)
                )
                await session.commit()
        logger.info(
            "staff action %d (%s by %s) written to %s #%s",  # never the ticket's subject
            row_id,
            kind.value,
            author,
            self._queue.name,
            number,
        )
        self._on_notice()

    async def _failed(
        self, session: AsyncSession, row_id: int, number: str, lease: datetime, error: Exception
    ) -> None:
        """Records a failed attempt, and the notice it calls for, in one transaction."""
        row = await session.get_one(StaffActionOutbox, row_id, populate_existing=True)
        ticket = await session.get_one(Ticket, row.ticket_id)
        refused = isinstance(error, (QueueRejected, TicketNotFound))
        first_delay = not row.delay_notified
        attempts = row.attempts + 1
        recorded = await self._record_failure(
            session,
            StaffActionOutbox,
            row_id,
            lease,
            attempts=attempts,
            error=error,
            refused=refused,
            delay_notified=True,
        )
        if recorded is None:
            await session.rollback()
            return  # the lease lapsed meanwhile: the row's new owner decides
        now, next_attempt_at = recorded
        told = False
        if refused:
            reason = ("TicketNotFound" if isinstance(error, TicketNotFound) else str(error))[:500]
            told = await notices.enqueue(
                session,
                key=f"staff_action_refused:{row_id}",
                chat_id=row.staff_telegram_id,
                locale=row.locale,
                body=notices.StaffActionRefused(
                    number=number, subject=ticket.subject, action=row.kind, reason=reason
                ),
                now=now,
            )
        elif first_delay:
            told = await notices.enqueue(
                session,
                key=f"staff_action_delayed:{row_id}",
                chat_id=row.staff_telegram_id,
                locale=row.locale,
                body=notices.StaffActionDelayed(
                    number=number, subject=ticket.subject, action=row.kind
                ),
                now=now,
            )
        await session.commit()
        described = f"{type(error).__name__}: {error}"
        if refused:
            logger.error(
                "queue %s refused staff action %d (%s by %s) on #%s for good: %s",
                self._queue.name,
                row_id,
                row.kind.value,
                row.queue_user,
                number,
                described,
            )
        else:
            logger.warning(
                "staff action %d on #%s not written (attempt %d, next at %s): %s",
                row_id,
                number,
                attempts,
                next_attempt_at.isoformat(timespec="seconds"),
                described,
            )
        if told:
            self._on_notice()


def _compose(text: str, unreadable: Sequence[str] = ()) -> str:
    """The reply as the queue keeps it (files Telegram never gave are named, in Russian: the
    specialists' language)."""
    lines = [text]
    for filename in unreadable:
        lines += ["", f"[Файл «{filename}» не удалось получить из Telegram]"]
    return "\n".join(lines).strip()
