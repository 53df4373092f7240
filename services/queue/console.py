"""The staff console: what specialists do in the queue, and what they see of it.

Not part of the TicketQueue port (frontdesk itself never replies as support): tests play the
specialists through it, and staff features of frontdesk will use it. A console acts as one
specialist (`name`), as a specialist's web session in the queue would.

- `BuiltinConsole` works on the builtin queue's tables directly;
- `RtConsole` speaks REST2 as a specialist's RT account (needs the rights a specialist has:
  ReplyToTicket, ModifyTicket, OwnTicket, DeleteTicket, and rights on the target queue to move a
  ticket there).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Any, Protocol, runtime_checkable

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from services.db.base import utcnow
from services.db.models import (
    BuiltinQueueComment,
    BuiltinQueueTicket,
    BuiltinQueueTransaction,
    TicketStatus,
)
from services.queue.base import (
    Attachment,
    BodyFormat,
    QueueComment,
    QueueRejected,
    QueueTicket,
)
from services.queue.builtin import (
    FRONTDESK_ACCOUNT,
    BuiltinQueue,
    Kind,
    comment,
    record,
    row_of,
    write_message,
)
from services.queue.rt import (
    RequestTrackerQueue,
    _parse_time,
    attachments_payload,
    rt_status,
    specialist_of,
    ticket_sql_string,
)


@runtime_checkable
class StaffConsole(Protocol):
    """A specialist at work in the queue."""

    name: str  # the specialist's user name in the queue

    async def list_tickets(self, requester: str) -> list[QueueTicket]:
        """The requester's tickets in frontdesk's queue, newest first."""
        ...

    async def list_messages(self, ticket_id: str) -> list[QueueComment]:
        """The ticket's correspondence, oldest first (internal notes left out). A message
        frontdesk posted for the merchant is the requester's."""
        ...

    async def reply(
        self,
        ticket_id: str,
        body: str,
        attachments: Sequence[Attachment] = (),
        body_format: BodyFormat = BodyFormat.TEXT,
    ) -> None: ...

    async def set_status(self, ticket_id: str, status: TicketStatus) -> None: ...

    async def set_owner(self, ticket_id: str, owner: str | None) -> None: ...

    async def move(self, ticket_id: str, queue: str) -> None: ...

    async def merge(self, ticket_id: str, into: str) -> None: ...

    async def delete(self, ticket_id: str) -> None: ...

    async def close(self) -> None: ...


class BuiltinConsole:
    def __init__(self, queue: BuiltinQueue, name: str) -> None:
        # frontdesk's own account writes the merchant's side only.
        if not name or name == FRONTDESK_ACCOUNT:
            raise QueueRejected(f"a specialist cannot act as {name!r}")
        self._queue = queue
        self._sessionmaker: async_sessionmaker[AsyncSession] = queue._sessionmaker
        self.name = name

    async def list_tickets(self, requester: str) -> list[QueueTicket]:
        async with self._sessionmaker() as session:
            rows = await session.scalars(
                select(BuiltinQueueTicket.id)
                .where(BuiltinQueueTicket.requester == requester, self._queue._in_queue())
                .order_by(BuiltinQueueTicket.id.desc())
            )
            numbers = [str(number) for number in rows]
        return [await self._queue.get_ticket(number) for number in numbers]

    async def list_messages(self, ticket_id: str) -> list[QueueComment]:
        async with self._sessionmaker() as session:
            row = await row_of(session, ticket_id)
            messages = await session.scalars(
                select(BuiltinQueueComment)
                .where(
                    BuiltinQueueComment.ticket_id == row.id,
                    ~BuiltinQueueComment.id.in_(
                        select(BuiltinQueueTransaction.comment_id).where(
                            BuiltinQueueTransaction.kind == Kind.NOTE,
                            BuiltinQueueTransaction.comment_id.is_not(None),
                        )
                    ),
                )
                .options(selectinload(BuiltinQueueComment.attachments))
                .order_by(BuiltinQueueComment.id)
            )
            return [comment(message) for message in messages]

    async def reply(
        self,
        ticket_id: str,
        body: str,
        attachments: Sequence[Attachment] = (),
        body_format: BodyFormat = BodyFormat.TEXT,
    ) -> None:
        await write_message(
            self._sessionmaker, ticket_id, self.name, body, attachments, body_format
        )

    async def set_status(self, ticket_id: str, status: TicketStatus) -> None:
        if status is TicketStatus.PENDING:
            raise QueueRejected("a ticket in the queue cannot be pending")
        await self._change(ticket_id, "status", Kind.STATUS, status.value)

    async def set_owner(self, ticket_id: str, owner: str | None) -> None:
        await self._change(ticket_id, "owner", Kind.OWNER, owner)

    async def move(self, ticket_id: str, queue: str) -> None:
        await self._change(ticket_id, "queue", Kind.MOVED, queue)

    async def _change(self, ticket_id: str, column: str, kind: Kind, value: str | None) -> None:
        """Sets one column of the ticket and records the change, if it is one."""
        async with self._sessionmaker.begin() as session:
            row = await row_of(session, ticket_id, for_update=True)
            old = getattr(row, column)
            if old != value:
                setattr(row, column, value)
                await record(session, row, kind, self.name, old, value)

    async def merge(self, ticket_id: str, into: str) -> None:
        async with self._sessionmaker.begin() as session:
            survivor = await row_of(session, into, for_update=True)
            row = await row_of(session, ticket_id, for_update=True)
            if row.id == survivor.id:
                raise QueueRejected("a ticket cannot be merged into itself")
            row.merged_into = survivor.id
            await record(session, row, Kind.MERGED, self.name, None, str(survivor.id))
            survivor.updated_at = utcnow()

    async def delete(self, ticket_id: str) -> None:
        async with self._sessionmaker.begin() as session:
            row = await row_of(session, ticket_id, for_update=True)
            if row.deleted_at is None:
                row.deleted_at = utcnow()
                await record(session, row, Kind.DELETED, self.name)

    async def close(self) -> None:
        """Nothing of its own to close."""


class RtConsole:
    """A specialist's RT account over REST2. Replies, changes and listings go through RT as the
    specialist's web session would; listings see what that account sees."""

    def __init__(
        self,
        base_url: str,
        queue: str = "Support",
        *,
        user: str,
        password: str,
        frontdesk_account: str = FRONTDESK_ACCOUNT,
        timeout: float = 30.0,
    ) -> None:
        self.name = user
        # The same REST2 client as the adapter, logged in as the specialist.
        self._rt = RequestTrackerQueue(
            base_url, queue, user=user, password=password, timeout=timeout
        )
        self._queue = queue
        self._frontdesk = frontdesk_account

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        """Any REST2 call as the specialist (QueueRejected/QueueUnavailable on failure)."""
        return await self._rt._request(method, path, json_body=body)

    async def list_tickets(self, requester: str) -> list[QueueTicket]:
        query = (
            f"{self._rt._in_queue()} AND Requestor.EmailAddress = {ticket_sql_string(requester)}"
        )
        return await self._rt._search_tickets(query, order=(("Created", "DESC"), ("id", "DESC")))

    async def list_messages(self, ticket_id: str) -> list[QueueComment]:
        ticket = await self._rt.get_ticket(ticket_id)
        rows = await self._rt._collect(
            "GET",
            "transactions",
            params=[
                (
                    "query",
                    f"ObjectType = 'RT::Ticket' AND ObjectId = {int(ticket_id)} "
                    "AND (Type = 'Create' OR Type = 'Correspond')",
                ),
                ("orderby", "id"),
                ("order", "ASC"),
                ("fields", "Type,Created,Creator"),
            ],
            complete_pages=False,
        )
        messages = []
        for row in rows:
            transaction_id, creator = str(row["id"]), str(row["Creator"]["id"])
            content = await self._rt._reply_content(transaction_id)
            author = creator
            if creator == self._frontdesk:
                # frontdesk writes the merchant's messages, and a specialist's reply from
                # Telegram (its mark names them).
                author = specialist_of(content.body, content.body_format) or ticket.requester
            messages.append(
                QueueComment(
                    ticket_id=ticket_id,
                    author=author,
                    body=content.body,
                    created_at=self._rt._shape(partial(_created, row), "a transaction"),
                    attachments=content.files,
                    body_format=content.body_format,
                )
            )
        return messages

    async def reply(
        self,
        ticket_id: str,
        body: str,
        attachments: Sequence[Attachment] = (),
        body_format: BodyFormat = BodyFormat.TEXT,
    ) -> None:
        payload: dict[str, Any] = {
            "Content": body,
            "ContentType": "text/html" if body_format is BodyFormat.HTML else "text/plain",
        }
        if attachments:
            payload["Attachments"] = attachments_payload(attachments)
        await self.call("POST", f"ticket/{int(ticket_id)}/correspond", payload)

    async def note(self, ticket_id: str, text: str) -> None:
        """An internal comment, for the specialists only."""
        await self.call(
            "POST",
            f"ticket/{int(ticket_id)}/comment",
            {"Content": text, "ContentType": "text/plain"},
        )

    async def set_status(self, ticket_id: str, status: TicketStatus) -> None:
        await self.call("PUT", f"ticket/{int(ticket_id)}", {"Status": rt_status(status)})

    async def set_owner(self, ticket_id: str, owner: str | None) -> None:
        await self.call("PUT", f"ticket/{int(ticket_id)}", {"Owner": owner or "Nobody"})

    async def move(self, ticket_id: str, queue: str) -> None:
        await self.call("PUT", f"ticket/{int(ticket_id)}", {"Queue": queue})

    async def merge(self, ticket_id: str, into: str) -> None:
        await self.call("PUT", f"ticket/{int(ticket_id)}", {"MergeInto": int(into)})

    async def delete(self, ticket_id: str) -> None:
        # REST2's DELETE sets the status "deleted"; the ticket stays readable.
        await self.call("DELETE", f"ticket/{int(ticket_id)}")

    async def custom_fields(self, ticket_id: str) -> dict[str, list[str]]:
        ticket = await self.call("GET", f"ticket/{int(ticket_id)}")
        return {field["name"]: field["values"] for field in ticket["CustomFields"]}

    async def close(self) -> None:
        await self._rt.close()


def _created(row: dict[str, Any]) -> datetime:
    return _parse_time(row["Created"])
