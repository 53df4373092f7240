"""The embedded official queue (QUEUE=builtin): tickets live in frontdesk's own SQL database.

It behaves like a real helpdesk behind the same port: its own numbering, statuses, owners and
correspondence, so the rest of frontdesk never knows which queue it talks to. Like RT it keeps a
history of transactions (Create, Correspond, Status, Set of the Owner) written by whoever acted:
frontdesk (account ``frontdesk``) when it files or adds the merchant's messages, a specialist
through the staff operations (`reply_as_staff`, `set_status`, `set_owner`) used by operators'
tools and tests.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

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
)
from services.queue.base import (
    Attachment,
    NewTicket,
    QueueComment,
    QueueRejected,
    QueueTicket,
    QueueTransaction,
    QueueUnavailable,
    TicketNotFound,
)

# The queue user frontdesk acts as, like its account in RT.
FRONTDESK_ACCOUNT = "frontdesk"
# RT's default lifecycle.
STATUSES = ("new", "open", "stalled", "resolved", "rejected", "deleted")


def _ticket(row: BuiltinQueueTicket) -> QueueTicket:
    return QueueTicket(
        id=str(row.id),
        reference=row.reference,
        requester=row.requester,
        subject=row.subject,
        status=row.status,
        created_at=row.created_at,
        updated_at=row.updated_at,
        owner=row.owner,
    )


def _comment(row: BuiltinQueueComment) -> QueueComment:
    return QueueComment(
        ticket_id=str(row.ticket_id),
        author=row.author,
        body=row.body,
        created_at=row.created_at,
        attachments=tuple(
            Attachment(a.filename, a.content_type, a.content) for a in row.attachments
        ),
    )


def _transaction(row: BuiltinQueueTransaction) -> QueueTransaction:
    return QueueTransaction(
        id=str(row.id),
        ticket_id=str(row.ticket_id),
        type=row.type,
        field=row.field,
        old=row.old_value,
        new=row.new_value,
        created_at=row.created_at,
        creator=row.creator,
        by_frontdesk=row.creator == FRONTDESK_ACCOUNT,
    )


def _attachment_rows(attachments: Sequence[Attachment]) -> list[BuiltinQueueAttachment]:
    return [
        BuiltinQueueAttachment(filename=a.filename, content_type=a.content_type, content=a.content)
        for a in attachments
    ]


class BuiltinQueue:
    name = "builtin"

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

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
                )
                # The description is the first message of the correspondence, as in RT.
                description = BuiltinQueueComment(
                    author=ticket.requester,
                    body=ticket.body,
                    attachments=_attachment_rows(ticket.attachments),
                )
                row.comments.append(description)
                session.add(row)
                await session.flush()
                session.add(
                    BuiltinQueueTransaction(
                        ticket_id=row.id,
                        type="Create",
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

    async def find_by_reference(self, reference: str) -> QueueTicket | None:
        async with self._sessionmaker() as session:
            row = await session.scalar(
                select(BuiltinQueueTicket).where(BuiltinQueueTicket.reference == reference)
            )
            return _ticket(row) if row else None

    async def get_ticket(self, ticket_id: str) -> QueueTicket:
        async with self._sessionmaker() as session:
            return _ticket(await self._row(session, ticket_id))

    async def list_tickets(self, requester: str) -> list[QueueTicket]:
        async with self._sessionmaker() as session:
            rows = await session.scalars(
                select(BuiltinQueueTicket)
                .where(BuiltinQueueTicket.requester == requester)
                .order_by(BuiltinQueueTicket.id.desc())
            )
            return [_ticket(row) for row in rows]

    async def add_comment(
        self, ticket_id: str, body: str, attachments: Sequence[Attachment] = ()
    ) -> None:
        await self._correspond(ticket_id, None, body, attachments)

    async def list_comments(self, ticket_id: str) -> list[QueueComment]:
        async with self._sessionmaker() as session:
            row = await self._row(session, ticket_id)
            comments = await session.scalars(
                select(BuiltinQueueComment)
                .where(BuiltinQueueComment.ticket_id == row.id)
                .options(selectinload(BuiltinQueueComment.attachments))
                .order_by(BuiltinQueueComment.id)
            )
            return [_comment(comment) for comment in comments]

    async def history(self, ticket_id: str) -> list[QueueTransaction]:
        async with self._sessionmaker() as session:
            row = await self._row(session, ticket_id)
            rows = await session.scalars(
                select(BuiltinQueueTransaction)
                .where(BuiltinQueueTransaction.ticket_id == row.id)
                .order_by(BuiltinQueueTransaction.id)
            )
            return [_transaction(transaction) for transaction in rows]

    async def changed_since(self, since: datetime) -> list[QueueTicket]:
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        async with self._sessionmaker() as session:
            rows = await session.scalars(
                select(BuiltinQueueTicket)
                .where(BuiltinQueueTicket.updated_at >= since)
                .order_by(BuiltinQueueTicket.updated_at, BuiltinQueueTicket.id)
            )
            return [_ticket(row) for row in rows]

    async def transaction_message(self, ticket_id: str, transaction_id: str) -> QueueComment:
        async with self._sessionmaker() as session:
            row = await self._row(session, ticket_id)
            comment = (
                await session.scalar(
                    select(BuiltinQueueComment)
                    .join(
                        BuiltinQueueTransaction,
                        BuiltinQueueTransaction.comment_id == BuiltinQueueComment.id,
                    )
                    .where(
                        BuiltinQueueTransaction.id == int(transaction_id),
                        BuiltinQueueTransaction.ticket_id == row.id,
                    )
                    .options(selectinload(BuiltinQueueComment.attachments))
                )
                if transaction_id.isdigit()
                else None
            )
            if comment is None:
                raise TicketNotFound(ticket_id)
            return _comment(comment)

    async def close(self) -> None:
        """The engine belongs to the application."""

    # --- the specialists' side (the queue's staff, not the port) -------------------------------

    async def reply_as_staff(
        self, ticket_id: str, author: str, body: str, attachments: Sequence[Attachment] = ()
    ) -> QueueTransaction:
        """A specialist's reply to the merchant."""
        return await self._correspond(ticket_id, self._staff(author), body, attachments)

    async def set_status(self, ticket_id: str, status: str, by: str) -> QueueTransaction | None:
        """Moves the ticket to ``status`` (RT's default lifecycle); None if it is there already."""
        if status not in STATUSES:
            raise QueueRejected(f"unknown status {status!r}; known: {', '.join(STATUSES)}")
        return await self._set(ticket_id, "Status", "Status", status, self._staff(by))

    async def set_owner(
        self, ticket_id: str, owner: str | None, by: str
    ) -> QueueTransaction | None:
        """Gives the ticket to ``owner`` (None: to nobody); None if it is theirs already."""
        return await self._set(ticket_id, "Set", "Owner", owner, self._staff(by))

    @staticmethod
    def _staff(name: str) -> str:
        # frontdesk's own account writes the merchant's side only.
        if not name or name == FRONTDESK_ACCOUNT:
            raise QueueRejected(f"a specialist cannot act as {name!r}")
        return name

    async def _correspond(
        self,
        ticket_id: str,
        author: str | None,
        body: str,
        attachments: Sequence[Attachment],
    ) -> QueueTransaction:
        """A message on the ticket: the merchant's (author None) or a specialist's."""
        async with self._sessionmaker.begin() as session:
            row = await self._row(session, ticket_id)
            comment = BuiltinQueueComment(
                ticket_id=row.id,
                author=author or row.requester,
                body=body,
                attachments=_attachment_rows(attachments),
            )
            session.add(comment)
            await session.flush()
            transaction = BuiltinQueueTransaction(
                ticket_id=row.id,
                type="Correspond",
                creator=author or FRONTDESK_ACCOUNT,
                comment_id=comment.id,
                created_at=comment.created_at,
            )
            session.add(transaction)
            row.updated_at = utcnow()
            await session.flush()
            return _transaction(transaction)

    async def _set(
        self, ticket_id: str, kind: str, field: str, value: str | None, by: str
    ) -> QueueTransaction | None:
        async with self._sessionmaker.begin() as session:
            row = await self._row(session, ticket_id, for_update=True)
            old = row.status if field == "Status" else row.owner
            if old == value:
                return None
            if field == "Status":
                assert value is not None
                row.status = value
            else:
                row.owner = value
            now = utcnow()
            row.updated_at = now
            transaction = BuiltinQueueTransaction(
                ticket_id=row.id,
                type=kind,
                field=field,
                old_value=old,
                new_value=value,
                creator=by,
                created_at=now,
            )
            session.add(transaction)
            await session.flush()
            return _transaction(transaction)

    @staticmethod
    async def _row(
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
