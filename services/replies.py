"""A merchant's messages on their ticket: replies (text and files), corrections, closing and
reopening, on their way to the official queue; and the ticket's conversation read back.

Every such message goes through an outbox, as filing does (services/filing.py): the handler calls
`add_reply`, which checks the ticket is the merchant's and in a state that takes it, and writes a
`ReplyOutbox` row in one transaction; after the commit the merchant may be told "received, on its
way". The reply worker (`ReplyWorker`) posts each row to the queue, in the order they came for
each ticket, and writes the notice that confirms it (``reply_added:<row>``: "added to ticket #N",
"ticket #N closed", …) in the same transaction as it marks the row done. So a message is never
lost, and never added twice:

- ``key`` (the Telegram update it came from: chat and message id, or the media group) makes a
  retried update or a double tap one row;
- the row's ``reference`` goes to the queue with the message (TicketQueue.add_comment's
  ``reference``), so after a failure the queue may have hidden (a timeout after it accepted) the
  retry finds the message there and does not post it again. Closing and reopening set a status:
  doing it twice does no harm.

A message to a ticket not yet registered in the queue (status pending) waits in the outbox until
the filing worker has registered it, then goes in order.

The rules (services decide, the UI shows only what `actions` allows):

- reply and correction: any ticket not closed (pending, registered, open, waiting);
  a resolved or rejected ticket refuses them (`TicketClosed`): the merchant reopens it first;
- close: a ticket not closed; closing a closed ticket is refused (`TicketClosed`);
- reopen: a resolved ticket only (by the merchant, or by support). A rejected ticket stays so:
  support refused the request, and a new request is the way (`NotReopenable`).

The merchant's own messages are the requester's correspondence in the queue (frontdesk posts them
with its own account, which the sync never takes for support's replies). A correction is a new
message saying so (`CORRECTION_HEADER`), never an edit of what a specialist may have read.
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

from services import notices, outbox
from services.db.base import utcnow
from services.db.dialect import rowcount
from services.db.models import Merchant, ReplyKind, ReplyOutbox, Ticket, TicketStatus
from services.files import MAX_FILES, FileRef, FileSource
from services.merchants import MerchantProfile, requester_of
from services.outbox import FileReadFailed, OutboxWorker, WorkerOptions, read_files
from services.queue.base import (
    Attachment,
    ConversationEntry,
    QueueError,
    QueueRejected,
    TicketNotFound,
    TicketQueue,
)

__all__ = [
    "CORRECTION_HEADER",
    "AcceptedReply",
    "Conversation",
    "EmptyReply",
    "NotReopenable",
    "NotYourTicket",
    "ReplyKind",
    "ReplyNotAccepted",
    "ReplyWorker",
    "TicketClosed",
    "TooManyFiles",
    "WaitingReply",
    "actions",
    "add_reply",
    "read_attachment",
    "read_conversation",
    "retry_refused",
]

logger = logging.getLogger(__name__)

# Statuses that take the merchant's messages, and the one a reopen starts from.
OPEN_STATUSES = frozenset(
    {TicketStatus.PENDING, TicketStatus.REGISTERED, TicketStatus.OPEN, TicketStatus.WAITING}
)
REOPENABLE_STATUSES = frozenset({TicketStatus.RESOLVED})
# The first line of a correction in the queue, for the specialist (who reads Russian: the
# regulation's language). Not shown to the merchant.
CORRECTION_HEADER = "Клиент исправил своё сообщение в Telegram. Исправленный текст:"
KEY_MAX = 200
CONVERSATION_LIMIT = 20

_FILES: TypeAdapter[list[FileRef]] = TypeAdapter(list[FileRef])


# --- what the UI gets -------------------------------------------------------------------------


class ReplyNotAccepted(Exception):
    """Base of the refusals below: the message was not accepted, nothing was written."""


class NotYourTicket(ReplyNotAccepted):
    """No ticket with that id belongs to this merchant (someone else's, or none at all: the
    same answer, so nothing is revealed). The UI refuses it and logs a warning."""

    def __init__(self, ticket_id: int) -> None:
        super().__init__(f"ticket {ticket_id} is not the merchant's")
        self.ticket_id = ticket_id


class TicketClosed(ReplyNotAccepted):
    """The ticket is resolved or rejected: no reply, correction or close (reopen it first,
    when `actions` allows)."""

    def __init__(self, ticket_id: int, status: TicketStatus) -> None:
        super().__init__(f"ticket {ticket_id} is {status.value}")
        self.ticket_id = ticket_id
        self.status = status


class NotReopenable(ReplyNotAccepted):
    """Only a resolved ticket may be reopened (an open one needs no reopening; a rejected one
    stays rejected)."""

    def __init__(self, ticket_id: int, status: TicketStatus) -> None:
        super().__init__(f"ticket {ticket_id} ({status.value}) cannot be reopened")
        self.ticket_id = ticket_id
        self.status = status


class EmptyReply(ReplyNotAccepted):
    """A reply or correction with neither text nor files."""


class TooManyFiles(ReplyNotAccepted):
    """More files than one message takes (MAX_FILES)."""

    def __init__(self, count: int) -> None:
        super().__init__(f"{count} files, at most {MAX_FILES}")
        self.count = count
        self.limit = MAX_FILES


@dataclass(frozen=True, slots=True)
class AcceptedReply:
    """A message accepted into the outbox.

    ``duplicate``: this ``key`` had been accepted before (a retried update, a double tap): nothing
    new was written, the UI may answer as the first time. ``number``: the queue's ticket number,
    None while the ticket waits to be registered (``waits_for_filing``)."""

    id: int
    ticket_id: int
    kind: ReplyKind
    number: str | None
    subject: str
    duplicate: bool
    done: bool

    @property
    def waits_for_filing(self) -> bool:
        return self.number is None


@dataclass(frozen=True, slots=True)
class WaitingReply:
    """A merchant's message accepted but not yet in the queue (shown as "sending…")."""

    id: int
    kind: ReplyKind
    text: str
    files: tuple[FileRef, ...]
    created_at: datetime
    refused: bool


@dataclass(frozen=True, slots=True)
class Conversation:
    """A ticket's card data: the correspondence read from the queue, latest first (at most
    ``limit`` entries; ``total`` says how many there are), and the merchant's messages still
    on their way. A ticket not yet registered has no correspondence in the queue: ``entries``
    then holds its description alone, from frontdesk's own record."""

    ticket_id: int
    number: str | None
    subject: str
    status: TicketStatus
    entries: list[ConversationEntry]
    total: int
    waiting: list[WaitingReply]
    actions: frozenset[ReplyKind]


def actions(status: TicketStatus) -> frozenset[ReplyKind]:
    """What the merchant may do on a ticket in this status: the buttons a ticket card shows."""
    if status in OPEN_STATUSES:
        return frozenset({ReplyKind.REPLY, ReplyKind.CORRECTION, ReplyKind.CLOSE})
    if status in REOPENABLE_STATUSES:
        return frozenset({ReplyKind.REOPEN})
    return frozenset()


# --- accepting a message ----------------------------------------------------------------------


async def add_reply(
    session: AsyncSession,
    *,
    merchant: MerchantProfile,
    ticket_id: int,
    key: str,
    text: str = "",
    files: Sequence[FileRef] = (),
    kind: ReplyKind = ReplyKind.REPLY,
    locale: str | None = None,
) -> AcceptedReply:
    """Accepts the merchant's message on their ticket ``ticket_id`` (frontdesk's id, not the
    queue's number) into the outbox, and commits.

    ``key`` is the idempotency key of the Telegram input (e.g. ``"<chat>:<message id>"``, an
    album's ``"<chat>:album:<media group id>"``, a button press's ``"<chat>:close:<message
    id>"``): the same key again gives the same AcceptedReply (``duplicate``) and writes nothing.
    It is scoped to the merchant. ``text`` and ``files`` for a reply or correction (at least one
    of them); ignored for close and reopen. ``locale`` of the confirmation; the ticket's if None.

    Raises NotYourTicket, TicketClosed, NotReopenable, EmptyReply, TooManyFiles. The caller wakes
    the reply worker (`ReplyWorker.wake`) after it returns.
    """
    scoped_key = f"{merchant.id}:{key}"[:KEY_MAX]
    existing = await _by_key(session, scoped_key)
    if existing is not None:
        return _accepted(existing, existing.ticket, duplicate=True)
    ticket = await _own_ticket(session, merchant, ticket_id)
    text = (text or "").strip()
    if kind in (ReplyKind.REPLY, ReplyKind.CORRECTION):
        if not text and not files:
            raise EmptyReply("nothing to add")
        if len(files) > MAX_FILES:
            raise TooManyFiles(len(files))
    else:
        text, files = "", ()
    # A close or reopen still on its way counts already: a second tap of Close is the same
    # close, and a reply after it is refused as after any close.
    pending_change = await session.scalar(
        select(ReplyOutbox)
        .where(
            ReplyOutbox.ticket_id == ticket.id,
            ReplyOutbox.kind.in_((ReplyKind.CLOSE, ReplyKind.REOPEN)),
            ReplyOutbox.done_at.is_(None),
            ReplyOutbox.refused_at.is_(None),
        )
        .order_by(ReplyOutbox.id.desc())
        .limit(1)
    )
    if pending_change is not None and pending_change.kind == kind:
        return _accepted(pending_change, ticket, duplicate=True)
    status = ticket.status
    if pending_change is not None:
        status = (
            TicketStatus.RESOLVED if pending_change.kind == ReplyKind.CLOSE else TicketStatus.OPEN
        )
    _check_state(ticket.id, status, kind)
    row = ReplyOutbox(
        key=scoped_key,
        reference=uuid.uuid4().hex,
        ticket_id=ticket.id,
        merchant_id=merchant.id,
        kind=kind,
        text=text,
        files=[f.model_dump(mode="json") for f in files],
        locale=locale or ticket.locale,
        attempts=0,
        next_attempt_at=utcnow(),
        delay_notified=False,
    )
    session.add(row)
    try:
        await session.commit()
    except IntegrityError:
        # The same update handled twice at once: the other one wrote it first.
        await session.rollback()
        existing = await _by_key(session, scoped_key)
        if existing is None:
            raise
        return _accepted(existing, existing.ticket, duplicate=True)
    return _accepted(row, ticket, duplicate=False)


def _check_state(ticket_id: int, status: TicketStatus, kind: ReplyKind) -> None:
    if kind == ReplyKind.REOPEN:
        if status not in REOPENABLE_STATUSES:
            raise NotReopenable(ticket_id, status)
    elif status not in OPEN_STATUSES:
        raise TicketClosed(ticket_id, status)


async def _own_ticket(session: AsyncSession, merchant: MerchantProfile, ticket_id: int) -> Ticket:
    ticket = await session.scalar(
        select(Ticket).where(Ticket.id == ticket_id, Ticket.merchant_id == merchant.id)
    )
    if ticket is None:
        raise NotYourTicket(ticket_id)
    return ticket


async def _requester(session: AsyncSession, merchant: MerchantProfile, ticket: Ticket) -> str:
    return await requester_of(
        session, merchant_id=merchant.id, telegram_id=merchant.telegram_id, store_id=ticket.store_id
    )


async def _by_key(session: AsyncSession, key: str) -> ReplyOutbox | None:
    return await session.scalar(
        select(ReplyOutbox).where(ReplyOutbox.key == key).options(selectinload(ReplyOutbox.ticket))
    )


def _accepted(row: ReplyOutbox, ticket: Ticket, *, duplicate: bool) -> AcceptedReply:
    return AcceptedReply(
        id=row.id,
        ticket_id=ticket.id,
        kind=row.kind,
        number=ticket.queue_ticket_id,
        subject=ticket.subject,
        duplicate=duplicate,
        done=row.done_at is not None,
    )


def files_of(row: ReplyOutbox) -> list[FileRef]:
    try:
        return _FILES.validate_python(row.files or [])
    except ValidationError:
        # The files' names are the merchant's words: not in the log.
        logger.error("reply %d has unreadable files; posting without them", row.id)
        return []


# --- reading the conversation -----------------------------------------------------------------


async def read_conversation(
    session: AsyncSession,
    queue: TicketQueue,
    *,
    merchant: MerchantProfile,
    ticket_id: int,
    limit: int = CONVERSATION_LIMIT,
) -> Conversation:
    """The ticket card's data (see Conversation), latest entries first. Raises NotYourTicket;
    QueueError when the queue cannot answer (the UI says the conversation is unavailable for
    now); a ticket that left the queue (TicketNotFound) reads as no correspondence."""
    ticket = await _own_ticket(session, merchant, ticket_id)
    waiting = [
        WaitingReply(
            id=row.id,
            kind=row.kind,
            text=row.text,
            files=tuple(files_of(row)),
            created_at=row.created_at,
            refused=row.refused_at is not None,
        )
        for row in await session.scalars(
            select(ReplyOutbox)
            .where(ReplyOutbox.ticket_id == ticket.id, ReplyOutbox.done_at.is_(None))
            .order_by(ReplyOutbox.id.desc())
        )
    ]
    number, subject, status = ticket.queue_ticket_id, ticket.subject, ticket.status
    body, created_at = ticket.body, ticket.created_at
    requester = await _requester(session, merchant, ticket)
    reference = ticket.reference
    # Hold no transaction open while the queue answers.
    await session.commit()
    if number is None:
        entries = [
            ConversationEntry(
                id="description",
                by_support=False,
                author=requester,
                created_at=created_at,
                body=body,
            )
        ]
    else:
        try:
            entries = (
                await queue.conversation(number)
                if await _readable(queue, number, reference, requester)
                else []
            )
        except TicketNotFound:
            entries = []
    latest_first = list(reversed(entries))
    return Conversation(
        ticket_id=ticket_id,
        number=number,
        subject=subject,
        status=status,
        entries=latest_first[:limit],
        total=len(entries),
        waiting=waiting,
        actions=actions(status),
    )


async def read_attachment(
    session: AsyncSession,
    queue: TicketQueue,
    *,
    merchant: MerchantProfile,
    ticket_id: int,
    attachment_id: str,
) -> Attachment:
    """One file of the ticket's conversation (an AttachmentInfo's id), for sending it as a
    document. Raises NotYourTicket (also for a ticket not yet in the queue), TicketNotFound
    for a file not on that ticket, QueueError when the queue cannot answer."""
    ticket = await _own_ticket(session, merchant, ticket_id)
    number, reference = ticket.queue_ticket_id, ticket.reference
    requester = await _requester(session, merchant, ticket)
    await session.commit()
    if number is None or not await _readable(queue, number, reference, requester):
        raise NotYourTicket(ticket_id)
    return await queue.attachment(number, attachment_id)


async def _readable(queue: TicketQueue, number: str, reference: str, requester: str) -> bool:
    """Whether the queue's ticket ``number`` is still the merchant's to read: not when support
    merged their ticket into another requester's (that correspondence is someone else's)."""
    queued = await queue.get_ticket(number)
    if queued.reference != reference and queued.requester != requester:
        logger.warning(
            "ticket %s lives on in %s #%s of another requester: its conversation withheld",
            reference,
            queue.name,
            number,
        )
        return False
    return True


# --- the worker -------------------------------------------------------------------------------


class ReplyWorker(OutboxWorker):
    """Posts accepted messages to the queue, exactly once, in order per ticket (see the module's
    docstring). Like the filing worker: leases, capped backoff with jitter while the queue is
    unreachable, a refusal for good (QueueRejected) stops the row until an operator re-drives it
    (`retry_refused`), logged as an ERROR and told to the merchant once."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        queue: TicketQueue,
        files: FileSource,
        **options: Unpack[WorkerOptions],
    ) -> None:
        super().__init__("replies", sessionmaker, queue, **options)
        self._files = files

    async def _claim(self) -> list[int]:
        return await self._claim_messages(ReplyOutbox, in_order=True)

    async def _deliver(self, outbox_id: int) -> None:
        async with self._sessionmaker() as session:
            held = await self._hold(session, ReplyOutbox, outbox_id)
            if held is None:
                return
            row, lease = held
            ticket = row.ticket
            number = ticket.queue_ticket_id
            kind, text, reference, refs = row.kind, row.text, row.reference, files_of(row)
            await session.commit()  # hold no transaction open while Telegram or the queue answer
            if number is None:  # cannot be: claimed only once registered
                return

            posted_files = 0
            try:
                if kind in (ReplyKind.REPLY, ReplyKind.CORRECTION):
                    attachments, unreadable = await read_files(self._files, refs, what="a reply")
                    posted_files = len(attachments)
                    body = compose(kind, text, unreadable)
                    await self._queue.add_comment(number, body, attachments, reference=reference)
                elif kind == ReplyKind.CLOSE:
                    await self._queue.resolve_by_requester(number)
                else:
                    await self._queue.reopen(number)
            except Exception as error:
                if not isinstance(error, QueueError):
                    if not isinstance(error, FileReadFailed):
                        logger.exception("posting reply %d on ticket %s crashed", row.id, number)
                else:
                    self._report(error)
                await self._failed(session, row.id, lease, error)
                return
            self._health.succeeded()

            now = self._clock()
            done = await session.execute(
                update(ReplyOutbox)
                .where(ReplyOutbox.id == outbox_id, ReplyOutbox.claimed_until == lease)
                .values(done_at=now, claimed_until=None, last_error=None)
            )
            if rowcount(done) != 1:
                await session.rollback()
                logger.warning(
                    "lease on reply %d lapsed while posting; left to its new owner", outbox_id
                )
                return
            ticket = await session.get_one(Ticket, row.ticket_id)
            # frontdesk's own status changes never come back through the sync (they are not
            # support's doing), so the local record follows here.
            if kind == ReplyKind.CLOSE:
                ticket.status = TicketStatus.RESOLVED
            elif kind == ReplyKind.REOPEN:
                ticket.status = TicketStatus.OPEN
            merchant_chat = await self._chat_of(session, row.merchant_id)
            await notices.enqueue(
                session,
                key=f"reply_added:{outbox_id}",
                chat_id=merchant_chat,
                locale=row.locale,
                ticket_id=ticket.id,
                body=notices.ReplyAdded(
                    number=number,
                    subject=ticket.subject,
                    action=kind,
                    files=posted_files,
                ),
                now=now,
            )
            await session.commit()
        logger.info(
            "%s %d of ticket %s added to %s #%s",
            kind.value,
            outbox_id,
            ticket.reference,
            self._queue.name,
            number,
        )
        self._on_notice()

    @staticmethod
    async def _chat_of(session: AsyncSession, merchant_id: int) -> int:
        return (
            await session.scalar(select(Merchant.telegram_id).where(Merchant.id == merchant_id))
            or 0
        )

    async def _failed(
        self, session: AsyncSession, outbox_id: int, lease: datetime, error: Exception
    ) -> None:
        """Records a failed attempt, and the notice it calls for, in one transaction."""
        row = await session.get_one(ReplyOutbox, outbox_id, populate_existing=True)
        ticket = await session.get_one(Ticket, row.ticket_id)
        attempts = row.attempts + 1
        last_error = f"{type(error).__name__}: {error}"[:2000]
        # Refused for good (rights revoked, a field rejected, the ticket gone from the queue):
        # retrying would not help; it waits for an operator (`retry_refused`).
        refused = isinstance(error, (QueueRejected, TicketNotFound))
        first_delay = not row.delay_notified
        recorded = await self._record_failure(
            session,
            ReplyOutbox,
            outbox_id,
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
        number = ticket.queue_ticket_id or ""
        chat_id = await self._chat_of(session, row.merchant_id)
        told = False
        if refused:
            told = await notices.enqueue(
                session,
                key=f"reply_refused:{outbox_id}",
                chat_id=chat_id,
                locale=row.locale,
                ticket_id=ticket.id,
                body=notices.ReplyRefused(number=number, subject=ticket.subject, action=row.kind),
                now=now,
            )
        elif first_delay:
            told = await notices.enqueue(
                session,
                key=f"reply_delayed:{outbox_id}",
                chat_id=chat_id,
                locale=row.locale,
                ticket_id=ticket.id,
                body=notices.ReplyDelayed(number=number, subject=ticket.subject, action=row.kind),
                now=now,
            )
        await session.commit()
        if refused:
            # An error an operator alerts on; a ticket gone from the queue (deleted, moved out
            # of frontdesk's reach) is no fault of the queue's, but still needs a look.
            logger.error(
                "queue %s refused %s %d on ticket #%s for good; not retrying until "
                "`frontdesk outbox retry`: %s",
                self._queue.name,
                row.kind.value,
                outbox_id,
                number,
                last_error,
            )
        else:
            logger.warning(
                "%s %d on ticket #%s not posted (attempt %d, next at %s): %s",
                row.kind.value,
                outbox_id,
                number,
                attempts,
                next_attempt_at.isoformat(timespec="seconds"),
                last_error,
            )
        if told:
            self._on_notice()


def compose(kind: ReplyKind, text: str, unreadable: Sequence[str] = ()) -> str:
    """The message as the specialist reads it in the queue."""
    lines = [CORRECTION_HEADER, "", text] if kind == ReplyKind.CORRECTION else [text]
    for filename in unreadable:
        lines += ["", f"[Файл «{filename}» не удалось получить из Telegram]"]
    return "\n".join(lines).strip()


async def retry_refused(session: AsyncSession, *, ticket_id: int | None = None) -> int:
    """Re-drives messages the queue refused for good, after an operator fixed the cause: due at
    once. Only the given ticket's (frontdesk's id) when ``ticket_id`` is set. Returns how many;
    commits."""
    return await outbox.retry_refused(session, ReplyOutbox, ticket_id=ticket_id)
