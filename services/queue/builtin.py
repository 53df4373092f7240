"""The embedded official queue (QUEUE=builtin): tickets live in frontdesk's own SQL database.

It behaves like a real helpdesk behind the same port: its own numbering, statuses, owners,
queues and correspondence, so the rest of frontdesk never knows which queue it talks to. It keeps
each ticket's history in frontdesk's own terms (services.queue.base's events), written by whoever
acted: frontdesk (account ``frontdesk``) when it files or adds the merchant's messages, a
specialist through the staff console (services/queue/console.py: `BuiltinConsole`).

A specialist's action taken in Telegram (services/staff_actions.py) is written by frontdesk on
their behalf: the message's author is the specialist, the history row's creator frontdesk's
account, so `events` leaves it out (frontdesk tells the merchant itself) while `conversation`
shows a reply as support's, by that specialist.

Who speaks for support: what staff write through the console or frontdesk writes for them; never
the requester.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from services.db.base import utcnow
from services.db.models import (
    BuiltinQueueAttachment,
    BuiltinQueueComment,
    BuiltinQueueTicket,
    BuiltinQueueTransaction,
    TicketStatus,
)
from services.queue.base import (
    Attachment,
    AttachmentInfo,
    BodyFormat,
    ConversationEntry,
    DeletedEvent,
    MergedEvent,
    MovedEvent,
    NewTicket,
    OwnerEvent,
    QueueComment,
    QueueEvent,
    QueueRejected,
    QueueTicket,
    QueueUnavailable,
    ReplyContent,
    ReplyEvent,
    StatusEvent,
    TicketNotFound,
    safe_filename,
)

# The queue user frontdesk acts as, like its account in RT.
FRONTDESK_ACCOUNT = "frontdesk"
DEFAULT_QUEUE = "Support"


class Kind(StrEnum):
    """What a row of a builtin ticket's history records."""

    CREATED = "created"
    MESSAGE = "message"
    # frontdesk's internal note for the specialists: not correspondence, never the merchant's.
    NOTE = "note"
    STATUS = "status"
    OWNER = "owner"
    MOVED = "moved"
    MERGED = "merged"
    DELETED = "deleted"


def _status(value: str | None) -> TicketStatus | None:
    try:
        return TicketStatus(value) if value else None
    except ValueError:
        return None


def _ticket(row: BuiltinQueueTicket) -> QueueTicket:
    return QueueTicket(
        id=str(row.id),
        reference=row.reference,
        requester=row.requester,
        subject=row.subject,
        status=_status(row.status),
        created_at=row.created_at,
        updated_at=row.updated_at,
        owner=row.owner,
        due=row.due_at,
    )


def _files(row: BuiltinQueueComment) -> tuple[Attachment, ...]:
    return tuple(
        Attachment(safe_filename(a.filename), a.content_type, a.content) for a in row.attachments
    )


def comment(row: BuiltinQueueComment) -> QueueComment:
    return QueueComment(
        ticket_id=str(row.ticket_id),
        author=row.author,
        body=row.body,
        created_at=row.created_at,
        attachments=_files(row),
        body_format=BodyFormat(row.body_format),
    )


def attachment_rows(attachments: Sequence[Attachment]) -> list[BuiltinQueueAttachment]:
    return [
        BuiltinQueueAttachment(filename=a.filename, content_type=a.content_type, content=a.content)
        for a in attachments
    ]


class BuiltinQueue:
    name = "builtin"

    def __init__(
        self, sessionmaker: async_sessionmaker[AsyncSession], queue: str = DEFAULT_QUEUE
    ) -> None:
        self._sessionmaker = sessionmaker
        self.queue = queue

    async def create_ticket(self, ticket: NewTicket) -> QueueTicket:
        try:
            async with self._sessionmaker.begin() as session:
                row = BuiltinQueueTicket(
                    reference=ticket.reference,
                    requester=ticket.requester,
                    subject=ticket.subject,
                    body=ticket.body,
                    request_type=ticket.request_type,
                    category=ticket.category,
                    store=ticket.store,
                    plan=ticket.plan,
                    telegram_user_id=ticket.telegram_user_id,
                    queue=self.queue,
                    paid_agreement=ticket.paid_agreement,
                    requester_name=ticket.requester_name,
                    store_name=ticket.store_name,
                    request_type_label=ticket.request_type_label,
                    category_label=ticket.category_label,
                    priority=ticket.priority.value if ticket.priority else None,
                    due_at=ticket.first_reaction_due,
                    resolution_due_at=ticket.resolution_due,
                )
                # The description is the first message of the correspondence, as in RT.
                description = BuiltinQueueComment(
                    author=ticket.requester,
                    body=ticket.body,
                    attachments=attachment_rows(ticket.attachments),
                )
                row.comments.append(description)
                session.add(row)
                await session.flush()
                session.add(
                    BuiltinQueueTransaction(
                        ticket_id=row.id,
                        kind=Kind.CREATED,
                        creator=FRONTDESK_ACCOUNT,
                        comment_id=description.id,
                        created_at=row.created_at,
                    )
                )
            return _ticket(row)
        except IntegrityError:
            # Same reference filed before: hand back that ticket, never a second one.
            existing = await self.find_by_reference(ticket.reference)
            if existing is None:
                raise
            return existing
        except OperationalError as error:
            raise QueueUnavailable(str(error)) from error

    def _in_queue(self):  # type: ignore[no-untyped-def]
        return (
            (BuiltinQueueTicket.queue == self.queue)
            & BuiltinQueueTicket.merged_into.is_(None)
            & BuiltinQueueTicket.deleted_at.is_(None)
        )

    def ticket_url(self, ticket_id: str) -> str | None:
        return None  # the builtin queue has no web interface

    async def find_by_reference(self, reference: str) -> QueueTicket | None:
        async with self._sessionmaker() as session:
            row = await session.scalar(
                select(BuiltinQueueTicket).where(
                    BuiltinQueueTicket.reference == reference, self._in_queue()
                )
            )
            return _ticket(row) if row else None

    async def get_ticket(self, ticket_id: str) -> QueueTicket:
        async with self._sessionmaker() as session:
            row = await row_of(session, ticket_id)
            if not (row.queue == self.queue and row.merged_into is None and row.deleted_at is None):
                raise TicketNotFound(ticket_id)
            return _ticket(row)

    async def add_comment(
        self,
        ticket_id: str,
        body: str,
        attachments: Sequence[Attachment] = (),
        *,
        reference: str | None = None,
    ) -> None:
        await self.get_ticket(ticket_id)
        if reference is not None:
            async with self._sessionmaker() as session:
                posted = await session.scalar(
                    select(BuiltinQueueComment.id).where(BuiltinQueueComment.reference == reference)
                )
            if posted is not None:
                return  # posted before: a retry after an unclear failure
        try:
            await write_message(
                self._sessionmaker, ticket_id, None, body, attachments, reference=reference
            )
        except IntegrityError:
            if reference is None:
                raise
            # The same message posted at this very moment by another attempt: it is there.
        except OperationalError as error:
            raise QueueUnavailable(str(error)) from error

    async def add_internal_note(self, ticket_id: str, body: str, *, reference: str) -> None:
        await self.get_ticket(ticket_id)
        async with self._sessionmaker() as session:
            posted = await session.scalar(
                select(BuiltinQueueComment.id).where(BuiltinQueueComment.reference == reference)
            )
        if posted is not None:
            return  # posted before: a retry after an unclear failure
        try:
            await write_message(
                self._sessionmaker,
                ticket_id,
                None,
                body,
                (),
                reference=reference,
                kind=Kind.NOTE,
            )
        except IntegrityError:
            pass  # the same note posted at this very moment by another attempt: it is there
        except OperationalError as error:
            raise QueueUnavailable(str(error)) from error

    async def resolve_by_requester(self, ticket_id: str) -> None:
        await self._set_status(ticket_id, TicketStatus.RESOLVED)

    async def reply_as_support(
        self,
        ticket_id: str,
        author: str,
        body: str,
        attachments: Sequence[Attachment] = (),
        *,
        reference: str,
    ) -> None:
        await self._post_for(ticket_id, author, body, attachments, reference, Kind.MESSAGE)

    async def note_as_support(
        self, ticket_id: str, author: str, body: str, *, reference: str
    ) -> None:
        await self._post_for(ticket_id, author, body, (), reference, Kind.NOTE)

    async def _post_for(
        self,
        ticket_id: str,
        author: str,
        body: str,
        attachments: Sequence[Attachment],
        reference: str,
        kind: Kind,
    ) -> None:
        """A specialist's message or note, written by frontdesk for them, once per reference."""
        if not author or author == FRONTDESK_ACCOUNT:
            raise QueueRejected(f"frontdesk cannot write for {author!r}")
        await self.get_ticket(ticket_id)
        async with self._sessionmaker() as session:
            posted = await session.scalar(
                select(BuiltinQueueComment.id).where(BuiltinQueueComment.reference == reference)
            )
        if posted is not None:
            return  # posted before: a retry after an unclear failure
        try:
            await write_message(
                self._sessionmaker,
                ticket_id,
                None,
                body,
                attachments,
                reference=reference,
                kind=kind,
                for_support=author,
            )
        except IntegrityError:
            pass  # the same message posted at this very moment by another attempt: it is there
        except OperationalError as error:
            raise QueueUnavailable(str(error)) from error

    async def resolve_as_support(self, ticket_id: str, author: str) -> None:
        await self._set_status(ticket_id, TicketStatus.RESOLVED)

    async def assign(self, ticket_id: str, owner: str | None, *, author: str) -> None:
        if owner == FRONTDESK_ACCOUNT:
            raise QueueRejected("frontdesk's own account cannot own tickets")
        await self.get_ticket(ticket_id)
        try:
            async with self._sessionmaker.begin() as session:
                row = await row_of(session, ticket_id, for_update=True)
                if row.owner != owner:
                    old, row.owner = row.owner, owner
                    # Written as frontdesk: the sync never echoes it back as support's doing.
                    await record(session, row, Kind.OWNER, FRONTDESK_ACCOUNT, old, owner)
        except OperationalError as error:
            raise QueueUnavailable(str(error)) from error

    async def reopen(self, ticket_id: str) -> None:
        await self._set_status(ticket_id, TicketStatus.OPEN)

    async def _set_status(self, ticket_id: str, status: TicketStatus) -> None:
        await self.get_ticket(ticket_id)
        try:
            async with self._sessionmaker.begin() as session:
                row = await row_of(session, ticket_id, for_update=True)
                if row.status != status.value:
                    old, row.status = row.status, status.value
                    # Written as frontdesk: the sync never echoes it back as support's doing.
                    await record(session, row, Kind.STATUS, FRONTDESK_ACCOUNT, old, status.value)
        except OperationalError as error:
            raise QueueUnavailable(str(error)) from error

    async def conversation(self, ticket_id: str) -> list[ConversationEntry]:
        await self.get_ticket(ticket_id)
        async with self._sessionmaker() as session:
            rows = await session.execute(
                select(BuiltinQueueComment, BuiltinQueueTransaction.by_support)
                .join(
                    BuiltinQueueTransaction,
                    BuiltinQueueTransaction.comment_id == BuiltinQueueComment.id,
                )
                .where(
                    BuiltinQueueComment.ticket_id == int(ticket_id),
                    # Correspondence only: internal notes are never the merchant's.
                    BuiltinQueueTransaction.kind != Kind.NOTE,
                )
                .options(selectinload(BuiltinQueueComment.attachments))
                .order_by(BuiltinQueueComment.id)
            )
            return [
                ConversationEntry(
                    id=str(message.id),
                    by_support=by_support,
                    author=message.author,
                    created_at=message.created_at,
                    body=message.body,
                    body_format=BodyFormat(message.body_format),
                    attachments=tuple(
                        AttachmentInfo(
                            id=str(a.id),
                            filename=safe_filename(a.filename),
                            content_type=a.content_type,
                            size=len(a.content),
                        )
                        for a in message.attachments
                    ),
                )
                for message, by_support in rows
            ]

    async def attachment(self, ticket_id: str, attachment_id: str) -> Attachment:
        await self.get_ticket(ticket_id)
        if not attachment_id.isdigit():
            raise TicketNotFound(ticket_id)
        async with self._sessionmaker() as session:
            row = await session.scalar(
                select(BuiltinQueueAttachment)
                .join(
                    BuiltinQueueComment, BuiltinQueueComment.id == BuiltinQueueAttachment.comment_id
                )
                .where(
                    BuiltinQueueAttachment.id == int(attachment_id),
                    BuiltinQueueComment.ticket_id == int(ticket_id),
                )
            )
            if row is None:
                raise TicketNotFound(ticket_id)
            return Attachment(safe_filename(row.filename), row.content_type, row.content)

    async def changed_since(self, since: datetime) -> list[QueueTicket]:
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        async with self._sessionmaker() as session:
            rows = await session.scalars(
                select(BuiltinQueueTicket)
                .where(BuiltinQueueTicket.updated_at >= since, self._in_queue())
                .order_by(BuiltinQueueTicket.updated_at, BuiltinQueueTicket.id)
            )
            return [_ticket(row) for row in rows]

    async def missing(self, ticket_ids: Sequence[str]) -> set[str]:
        numbers = {int(t) for t in ticket_ids if str(t).isdigit()}
        async with self._sessionmaker() as session:
            present = set(
                await session.scalars(
                    select(BuiltinQueueTicket.id).where(
                        BuiltinQueueTicket.id.in_(numbers), self._in_queue()
                    )
                )
            )
        return {t for t in ticket_ids if not (str(t).isdigit() and int(t) in present)}

    async def events(self, ticket_id: str) -> list[QueueEvent]:
        async with self._sessionmaker() as session:
            row = await row_of(session, ticket_id)
            rows = await session.scalars(
                select(BuiltinQueueTransaction)
                .where(BuiltinQueueTransaction.ticket_id == row.id)
                .order_by(BuiltinQueueTransaction.id)
            )
            events = [self._event(transaction) for transaction in rows]
        return [event for event in events if event is not None]

    async def close(self) -> None:
        """The engine belongs to the application."""

    def _event(self, row: BuiltinQueueTransaction) -> QueueEvent | None:
        if row.creator == FRONTDESK_ACCOUNT:
            return None  # frontdesk's own: the ticket's creation, the merchant's messages
        base = (str(row.id), str(row.ticket_id), row.created_at, row.creator)
        if row.kind == Kind.MESSAGE:
            return ReplyEvent(
                *base, by_support=row.by_support, content=lambda: self._content(row.id)
            )
        if row.kind == Kind.STATUS:
            new = _status(row.new_value)
            return StatusEvent(
                *base, old=_status(row.old_value), new=new, label=row.new_value or ""
            )
        if row.kind == Kind.OWNER:
            return OwnerEvent(*base, old=row.old_value, new=row.new_value)
        if row.kind == Kind.MOVED:
            return MovedEvent(*base, queue=row.new_value)
        if row.kind == Kind.MERGED:
            return MergedEvent(*base, into=row.new_value or "")
        if row.kind == Kind.DELETED:
            return DeletedEvent(*base)
        return None

    async def _content(self, transaction_id: int) -> ReplyContent:
        async with self._sessionmaker() as session:
            message = await session.scalar(
                select(BuiltinQueueComment)
                .join(
                    BuiltinQueueTransaction,
                    BuiltinQueueTransaction.comment_id == BuiltinQueueComment.id,
                )
                .where(BuiltinQueueTransaction.id == transaction_id)
                .options(selectinload(BuiltinQueueComment.attachments))
            )
            if message is None:
                return ReplyContent("", BodyFormat.TEXT)
            return ReplyContent(message.body, BodyFormat(message.body_format), _files(message))


# --- shared with the staff console --------------------------------------------------------------


async def row_of(
    session: AsyncSession, ticket_id: str, *, for_update: bool = False
) -> BuiltinQueueTicket:
    row = (
        await session.get(BuiltinQueueTicket, int(ticket_id), with_for_update=for_update)
        if isinstance(ticket_id, str) and ticket_id.isdigit()
        else None
    )
    if row is None:
        raise TicketNotFound(ticket_id)
    return row


async def write_message(
    sessionmaker: async_sessionmaker[AsyncSession],
    ticket_id: str,
    author: str | None,
    body: str,
    attachments: Sequence[Attachment],
    body_format: BodyFormat = BodyFormat.TEXT,
    *,
    reference: str | None = None,
    kind: Kind = Kind.MESSAGE,
    for_support: str | None = None,
) -> str:
    """A message on the ticket: the merchant's (author None, frontdesk posts it) or a
    specialist's (for support); with ``kind`` NOTE, frontdesk's internal note. With
    ``for_support`` (and author None), frontdesk writes it for that specialist: their name as
    the author, support's, and frontdesk's account as the history row's creator. Gives the
    history row's id. ``reference``: frontdesk's, unique (IntegrityError when a message with it
    exists)."""
    async with sessionmaker.begin() as session:
        row = await row_of(session, ticket_id)
        default_author = FRONTDESK_ACCOUNT if kind == Kind.NOTE else row.requester
        message = BuiltinQueueComment(
            ticket_id=row.id,
            author=author or for_support or default_author,
            body=body,
            body_format=body_format.value,
            reference=reference,
            attachments=attachment_rows(attachments),
        )
        session.add(message)
        await session.flush()
        transaction = BuiltinQueueTransaction(
            ticket_id=row.id,
            kind=kind,
            creator=author or FRONTDESK_ACCOUNT,
            by_support=author is not None or for_support is not None,
            comment_id=message.id,
            created_at=message.created_at,
        )
        session.add(transaction)
        row.updated_at = utcnow()
        await session.flush()
        return str(transaction.id)


async def record(
    session: AsyncSession,
    row: BuiltinQueueTicket,
    kind: Kind,
    by: str,
    old: str | None = None,
    new: str | None = None,
) -> str:
    """One row of the ticket's history, in the caller's transaction; gives its id."""
    now = utcnow()
    row.updated_at = now
    transaction = BuiltinQueueTransaction(
        ticket_id=row.id, kind=kind, old_value=old, new_value=new, creator=by, created_at=now
    )
    session.add(transaction)
    await session.flush()
    return str(transaction.id)
