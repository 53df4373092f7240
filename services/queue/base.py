"""The official ticket queue, as frontdesk sees it: a port with one adapter per ticket system.

Only a request registered in the official queue counts (regulation, "Порядок подачи заявки"), so
every adapter must make filing idempotent: a ticket carries frontdesk's own reference, and
`find_by_reference` lets the filing use-case look it up before any re-create after an unclear
failure.

The way back — what support did in the queue — comes as frontdesk's own events, whatever the
queue calls them: `changed_since` says which tickets moved, `missing` which of frontdesk's tickets
left the queue (moved elsewhere, merged, deleted), and `events` lists what happened to one ticket
(services/sync.py applies them). The queue's own vocabulary stays inside its adapter.

A specialist's actions taken in Telegram (services/staff_actions.py) are part of the port too:
frontdesk writes them **on the specialist's behalf with its own queue account** (RT has no way to
act as another user) — a reply to the requester (`reply_as_support`), an internal comment
(`note_as_support`), resolving (`resolve_as_support`) and setting the owner (`assign`). The queue
records the specialist as their author; like all of frontdesk's own doings they are left out of
`events` (the caller tells the merchant itself), while `conversation` shows such a reply as
support's, by that specialist.

What specialists do in the queue's own interface (replying, changing status or owner, merging,
moving) and listing are not part of the port: tests play them through services/queue/console.py.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Protocol, runtime_checkable

from services.db.models import TicketStatus


class QueueError(Exception):
    """Base of every error an adapter raises; never a raw client exception."""


class QueueUnavailable(QueueError):
    """Transient: the queue could not be reached, timed out, was overloaded (5xx, 429) or
    answered garbage. Retrying later may well work."""


class TicketNotFound(QueueError):
    """No ticket with that number in the queue."""

    def __init__(self, ticket_id: str) -> None:
        super().__init__(f"ticket {ticket_id} not found")
        self.ticket_id = ticket_id


class QueueRejected(QueueError):
    """Permanent: the queue refused frontdesk (credentials revoked or wrong: 401/403; the queue
    or the API does not exist: 404; a field refused: other 4xx). Retrying the same call will not
    help until an operator fixes the cause."""


class BodyFormat(StrEnum):
    TEXT = "text"
    HTML = "html"  # as written in the queue's rich-text editor; handlers/rich_text.py renders it


@dataclass(frozen=True, slots=True)
class Attachment:
    filename: str
    content_type: str
    content: bytes


class Priority(StrEnum):
    """How urgent a ticket is, in frontdesk's words (services/regulation.priority_for: by the
    merchant's plan); each adapter maps it to its queue's own scale."""

    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


@dataclass(frozen=True, slots=True)
class NewTicket:
    """What frontdesk files. `reference` is the idempotency key stored in the queue.

    What a specialist reads in the queue comes along: the requester's name, the store's name
    (``store`` is its domain), the type's and category's labels (``request_type``/``category``
    are the catalog's codes), the priority, and the deadlines the merchant is told, computed
    before the ticket is filed: ``first_reaction_due`` becomes the queue's due date, the very
    datetime the merchant's Registered notice names."""

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
    # The merchant's agreement to pay for the modification, one line for the queue's field
    # (RT: custom field PaidAgreement); the body says it in words too. None: nothing agreed.
    paid_agreement: str | None = None
    requester_name: str | None = None
    store_name: str | None = None
    request_type_label: str | None = None
    category_label: str | None = None
    priority: Priority | None = None
    first_reaction_due: datetime | None = None
    resolution_due: datetime | None = None


@dataclass(frozen=True, slots=True)
class QueueTicket:
    id: str
    reference: str | None
    requester: str
    subject: str
    # frontdesk's status; None for one frontdesk does not know (a custom lifecycle)
    status: TicketStatus | None
    created_at: datetime
    updated_at: datetime
    owner: str | None = None
    # The due date the queue shows (the first-reaction deadline frontdesk set); None: not set.
    due: datetime | None = None


@dataclass(frozen=True, slots=True)
class QueueComment:
    """A message on a ticket as the staff console lists it."""

    ticket_id: str
    author: str
    body: str
    created_at: datetime
    attachments: Sequence[Attachment] = field(default=())
    body_format: BodyFormat = BodyFormat.TEXT


# --- the conversation of a ticket, as the merchant may read it --------------------------------


@dataclass(frozen=True, slots=True)
class AttachmentInfo:
    """A file of a message, described; its content is read with ``TicketQueue.attachment``."""

    id: str
    filename: str
    content_type: str
    size: int | None = None


@dataclass(frozen=True, slots=True)
class ConversationEntry:
    """One message of a ticket's correspondence: the description, the merchant's messages
    (frontdesk's posts on their behalf included, with frontdesk's marks taken out) and support's
    replies; never the specialists' internal notes. ``by_support`` as for ReplyEvent; ``author``
    is the name to show (the requester's address for the merchant's own messages)."""

    id: str
    by_support: bool
    author: str
    created_at: datetime
    body: str
    body_format: BodyFormat = BodyFormat.TEXT
    attachments: tuple[AttachmentInfo, ...] = ()


# --- what happened to a ticket, in frontdesk's words ------------------------------------------


@dataclass(frozen=True, slots=True)
class ReplyContent:
    body: str
    body_format: BodyFormat
    files: tuple[Attachment, ...] = ()


async def _no_content() -> ReplyContent:
    return ReplyContent("", BodyFormat.TEXT)


@dataclass(frozen=True, slots=True)
class TicketEvent:
    """Something that happened to a queue ticket. ``id`` is stable within its ticket (RT: the
    transaction id) and, with the queue's name and the ticket's number, makes the key the sync
    applies it under exactly once. ``author`` is the queue user who did it."""

    id: str
    ticket_id: str
    created_at: datetime
    author: str


@dataclass(frozen=True, slots=True)
class ReplyEvent(TicketEvent):
    """A message on the ticket by someone other than frontdesk itself. ``by_support`` is true
    only when its author speaks for support (RT: a privileged user or a member of the staff
    group); the requester's own mail, a Cc or a stranger writing in are not support.

    The text and files are read only when asked (``await event.content()``), so a reader that
    has already applied the event never downloads them again."""

    by_support: bool = False
    content: Callable[[], Awaitable[ReplyContent]] = field(
        default=_no_content, compare=False, repr=False
    )


@dataclass(frozen=True, slots=True)
class StatusEvent(TicketEvent):
    """``old``/``new`` as frontdesk's statuses (None: one frontdesk does not know);
    ``label`` is the queue's own name of the new status, for showing an unknown one."""

    old: TicketStatus | None = None
    new: TicketStatus | None = None
    label: str = ""


@dataclass(frozen=True, slots=True)
class OwnerEvent(TicketEvent):
    """The ticket's owner changed: user names, None for nobody."""

    old: str | None = None
    new: str | None = None


@dataclass(frozen=True, slots=True)
class MovedEvent(TicketEvent):
    """The ticket went to another queue: its name, None when frontdesk may not see it."""

    queue: str | None = None


@dataclass(frozen=True, slots=True)
class MergedEvent(TicketEvent):
    """The ticket was merged into ticket ``into`` (the surviving number)."""

    into: str = ""


@dataclass(frozen=True, slots=True)
class DeletedEvent(TicketEvent):
    """The ticket was deleted."""


QueueEvent = ReplyEvent | StatusEvent | OwnerEvent | MovedEvent | MergedEvent | DeletedEvent


# --- files from the queue -------------------------------------------------------------------

FILENAME_LIMIT = 120  # characters; Telegram shows about 60, file systems take 255 bytes
FALLBACK_FILENAME = "file"


def safe_filename(name: str | None, fallback: str = FALLBACK_FILENAME) -> str:
    """A file name from the queue made safe to hand on: no directories, no control or
    formatting characters, no leading dots, at most FILENAME_LIMIT characters (the extension
    kept), and ``fallback`` when nothing is left."""
    text = unicodedata.normalize("NFC", name or "")
    for separator in ("/", "\\"):
        text = text.rsplit(separator, 1)[-1]
    text = "".join(
        " " if char in "\t\n\r" else char
        for char in text
        if unicodedata.category(char)[0] != "C" or char in "\t\n\r"
    )
    text = " ".join(text.split()).strip(" .")
    if not text:
        return fallback
    if len(text) > FILENAME_LIMIT:
        stem, dot, extension = text.rpartition(".")
        if dot and stem and 0 < len(extension) <= 16:
            text = stem[: FILENAME_LIMIT - len(extension) - 1].rstrip(" .") + "." + extension
        else:
            text = text[:FILENAME_LIMIT].rstrip(" .")
    return text or fallback


@runtime_checkable
class TicketQueue(Protocol):
    """The port. Times are timezone-aware UTC; ticket ids are the queue's own numbers as text."""

    name: str

    async def create_ticket(self, ticket: NewTicket) -> QueueTicket: ...

    async def find_by_reference(self, reference: str) -> QueueTicket | None: ...

    async def get_ticket(self, ticket_id: str) -> QueueTicket:
        """A ticket of the queue; TicketNotFound if there is none (or it left the queue)."""
        ...

    def ticket_url(self, ticket_id: str) -> str | None:
        """The ticket's page in the queue's web interface, for a specialist; None if none."""
        ...

    async def add_comment(
        self,
        ticket_id: str,
        body: str,
        attachments: Sequence[Attachment] = (),
        *,
        reference: str | None = None,
    ) -> None:
        """The merchant's message on the ticket (frontdesk posts it on their behalf), as the
        requester's correspondence. With a ``reference`` it is idempotent: a message carrying
        that reference already on the ticket is not posted again (a retry after a timeout that
        came after the queue took it). TicketNotFound if the ticket is not in the queue."""
        ...

    async def add_internal_note(self, ticket_id: str, body: str, *, reference: str) -> None:
        """frontdesk's own note for the specialists on the ticket (e.g. that the merchant cannot
        be reached in Telegram): internal, never correspondence, so the requester never gets it
        by mail and the merchant never reads it; the sync never takes it for support's doing.
        Idempotent by ``reference``, as add_comment. TicketNotFound if the ticket is not in the
        queue."""
        ...

    async def resolve_by_requester(self, ticket_id: str) -> None:
        """The requester closes their ticket (status resolved). Idempotent: a resolved ticket
        stays as it is. TicketNotFound if the ticket is not in the queue."""
        ...

    async def reopen(self, ticket_id: str) -> None:
        """The requester reopens their ticket (status open). Idempotent: an open ticket stays
        as it is. TicketNotFound if the ticket is not in the queue."""
        ...

    async def reply_as_support(
        self,
        ticket_id: str,
        author: str,
        body: str,
        attachments: Sequence[Attachment] = (),
        *,
        reference: str,
    ) -> None:
        """A specialist's reply to the requester, written by frontdesk for queue user ``author``:
        correspondence the requester gets (RT mails it), attributed to ``author`` in the queue.
        Idempotent by ``reference`` (a retry finds it and does not post twice). Like all of
        frontdesk's own doings it is left out of ``events()`` (the caller tells the merchant), but
        ``conversation()`` shows it as support's (by_support=True, author = the specialist).
        TicketNotFound if the ticket is not in the queue."""
        ...

    async def note_as_support(
        self, ticket_id: str, author: str, body: str, *, reference: str
    ) -> None:
        """A specialist's internal comment (never correspondence, never in conversation()),
        attributed to ``author``; idempotent by ``reference``. TicketNotFound if the ticket is
        not in the queue."""
        ...

    async def resolve_as_support(self, ticket_id: str, author: str) -> None:
        """Status resolved, for ``author``; idempotent (a resolved ticket stays so). Left out of
        events(). TicketNotFound if the ticket is not in the queue."""
        ...

    async def assign(self, ticket_id: str, owner: str | None, *, author: str) -> None:
        """Owner = queue user ``owner`` (None: nobody), for ``author``; idempotent. QueueRejected
        when the queue refuses that owner (RT: the user lacks OwnTicket). Left out of events().
        TicketNotFound if the ticket is not in the queue."""
        ...

    async def conversation(self, ticket_id: str) -> list[ConversationEntry]:
        """The ticket's correspondence, oldest first (see ConversationEntry); files described,
        not downloaded. TicketNotFound if the ticket is not in the queue."""
        ...

    async def attachment(self, ticket_id: str, attachment_id: str) -> Attachment:
        """The content of one file of the ticket's correspondence (an AttachmentInfo's id);
        TicketNotFound if the ticket, or that file on it, is not there."""
        ...

    async def changed_since(self, since: datetime) -> list[QueueTicket]:
        """Tickets of the queue updated at or after ``since``, least recently updated first.

        Inclusive, so a reader that passes the last ``updated_at`` it saw never misses a ticket
        updated within that same instant (it sees that one again).
        """
        ...

    async def missing(self, ticket_ids: Sequence[str]) -> set[str]:
        """Of these numbers, those no longer in the queue: moved to another queue, merged into
        another ticket, deleted (or never there). ``events`` tells which."""
        ...

    async def events(self, ticket_id: str) -> list[QueueEvent]:
        """What happened to the ticket, oldest first, without frontdesk's own doings and the
        specialists' internal notes: replies, status and owner changes, and where the ticket
        went if it left the queue (MovedEvent, MergedEvent, DeletedEvent). Answers for a ticket
        that left the queue too; TicketNotFound for a number the queue never had."""
        ...

    async def close(self) -> None: ...
