"""The embedded official queue (QUEUE=builtin): tickets live in frontdesk's own SQL database.

It behaves like a real helpdesk behind the same port: its own numbering, statuses, owners and
correspondence, so the rest of frontdesk never knows which queue it talks to.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from services.db.models import BuiltinQueueAttachment, BuiltinQueueComment, BuiltinQueueTicket
from services.queue.base import (
    Attachment,
    NewTicket,
    QueueComment,
    QueueTicket,
    QueueUnavailable,
    TicketNotFound,
)


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
                row.comments.append(
                    BuiltinQueueComment(
                        author=ticket.requester,
                        body=ticket.body,
                        attachments=_attachment_rows(ticket.attachments),
                    )
                )
                session.add(row)
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
        async with self._sessionmaker.begin() as session:
            row = await self._row(session, ticket_id)
            session.add(
                BuiltinQueueComment(
                    ticket_id=row.id,
                    author=row.requester,
                    body=body,
                    attachments=_attachment_rows(attachments),
                )
            )

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

    async def close(self) -> None:
        """The engine belongs to the application."""

    @staticmethod
    async def _row(session: AsyncSession, ticket_id: str) -> BuiltinQueueTicket:
        row = await session.get(BuiltinQueueTicket, int(ticket_id)) if ticket_id.isdigit() else None
        if row is None:
            raise TicketNotFound(ticket_id)
        return row
