"""The official ticket queue, as frontdesk sees it: a port with one adapter per ticket system.

Only a request registered in the official queue counts (regulation, "Порядок подачи заявки"), so
every adapter must make filing idempotent: a ticket carries frontdesk's own reference, and
`find_by_reference` lets the filing use-case look it up before any re-create after an unclear
failure.

The way back — what specialists did in the queue — is read as each ticket's history: `changed_since`
says which tickets moved, `history` lists their transactions, and `transaction_message` gives the
text and files of one message (services/sync.py turns them into events for the merchant).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol, runtime_checkable


class QueueError(Exception):
    """Base of every error an adapter raises; never a raw client exception."""


class QueueUnavailable(QueueError):
    """The queue could not be reached, timed out or answered garbage: try again later."""


class TicketNotFound(QueueError):
    """No ticket with that number in the queue."""

    def __init__(self, ticket_id: str) -> None:
        super().__init__(f"ticket {ticket_id} not found")
        self.ticket_id = ticket_id


class QueueRejected(QueueError):
    """The queue refused the request itself (validation): retrying the same call will not help."""


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    content: bytes


@dataclass(frozen=True, slots=True)
class NewTicket:
    """What frontdesk files. `reference` is the idempotency key stored in the queue."""

    reference: str
    requester: str
    subject: str
    body: str
    request_type: str
    category: str
    telegram_user_id: int
    store: str | None = None
    plan: str | None = None
    attachments: Sequence[Attachment] = field(default=())


@dataclass(frozen=True, slots=True)
class QueueTicket:
    id: str
    reference: str | None
    requester: str
    subject: str
    status: str
    created_at: datetime
    updated_at: datetime
    owner: str | None = None


@dataclass(frozen=True, slots=True)
class QueueComment:
    ticket_id: str
    author: str
    body: str
    created_at: datetime
    attachments: Sequence[Attachment] = field(default=())


@dataclass(frozen=True, slots=True)
class QueueTransaction:
    """One entry of a ticket's history, in the queue's own terms (RT's, which the builtin queue
    mimics): ``type`` is ``Create``, ``Correspond`` (a message to or from the requester),
    ``Status`` (``field`` "Status") or ``Set`` (``field`` "Owner", user names, RT's "Nobody"
    possibly for none), among others a consumer ignores.

    ``creator`` is the queue user who did it; ``by_frontdesk`` is true when that user is
    frontdesk's own account, i.e. frontdesk did it on the merchant's behalf.
    """

    id: str
    ticket_id: str
    type: str
    field: str | None
    old: str | None
    new: str | None
    created_at: datetime
    creator: str
    by_frontdesk: bool = False


@runtime_checkable
class TicketQueue(Protocol):
    """The port. Times are timezone-aware UTC; ticket ids are the queue's own numbers as text."""

    name: str

    async def create_ticket(self, ticket: NewTicket) -> QueueTicket: ...

    async def find_by_reference(self, reference: str) -> QueueTicket | None: ...

    async def get_ticket(self, ticket_id: str) -> QueueTicket: ...

    async def list_tickets(self, requester: str) -> list[QueueTicket]: ...

    async def add_comment(
        self, ticket_id: str, body: str, attachments: Sequence[Attachment] = ()
    ) -> None: ...

    async def list_comments(self, ticket_id: str) -> list[QueueComment]: ...

    async def history(self, ticket_id: str) -> list[QueueTransaction]:
        """The ticket's transactions, oldest first, without the specialists' internal notes."""
        ...

    async def changed_since(self, since: datetime) -> list[QueueTicket]:
        """Tickets of the queue updated at or after ``since``, least recently updated first.

        Inclusive, so a reader that passes the last ``updated_at`` it saw never misses a ticket
        updated within that same instant (it sees that one again).
        """
        ...

    async def transaction_message(self, ticket_id: str, transaction_id: str) -> QueueComment:
        """The message (text and files) a ``Create`` or ``Correspond`` transaction carries;
        TicketNotFound when the ticket has no such message."""
        ...

    async def close(self) -> None: ...
