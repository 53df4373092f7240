"""Notices: what frontdesk tells a person on its own initiative, as data.

A notice is a row written in the same transaction as the change that causes it (a ticket
accepted, registered or refused by the queue, a specialist's reply, a status change), under a
unique key such as ``registered:<ticket>`` or ``event:<queue>:<ticket>:<event>``: the change
cannot happen without its notice, and the same notice cannot be written twice. The delivery
worker (bot/delivery.py) sends notices to Telegram, each chat's in the order they were written,
and records every part it sends. Services write notices; they never talk to Telegram.

The body of a notice is one of the models below (``Body``), stored as JSON; handlers/notices.py
renders it in the recipient's language at the time of sending.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, time
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter
from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services import staff_notes
from services.db.base import utcnow
from services.db.dialect import insert_for
from services.db.models import (
    Notice,
    NoticeFile,
    NoticeState,
    ReplyKind,
    StaffActionKind,
    TelegramChat,
    TicketStatus,
)
from services.queue.base import BodyFormat
from services.quota import QuotaStatus


class NoticeKind(StrEnum):
    ACCEPTED = "accepted"
    REGISTERED = "registered"
    DELAYED = "delayed"
    REFUSED = "refused"
    REPLY = "reply"
    STATUS = "status"
    MOVED = "moved"
    MERGED = "merged"
    DELETED = "deleted"
    # The merchant's own messages on a ticket (services/replies.py).
    REPLY_ADDED = "reply_added"
    REPLY_DELAYED = "reply_delayed"
    REPLY_REFUSED = "reply_refused"
    # A specialist recorded a modification (services/modification_records.py).
    MODIFICATION = "modification"
    # A lead restricted the user from filing, or lifted it (services/restrictions.py).
    RESTRICTED = "restricted"
    RESTORED = "restored"
    # To staff: a ticket's first-reaction deadline is near or passed (services/sla_watch.py).
    SLA_WARNING = "sla_warning"
    # For staff: a ticket the queue assigned to a linked specialist.
    ASSIGNED = "assigned"
    # For leads: a new ticket nobody owns yet.
    UNASSIGNED = "unassigned"
    # To a specialist: their action from Telegram is in the queue, waits, or was refused
    # (services/staff_actions.py).
    STAFF_ACTION_DONE = "staff_action_done"
    STAFF_ACTION_DELAYED = "staff_action_delayed"
    STAFF_ACTION_REFUSED = "staff_action_refused"


class _Body(BaseModel):
    model_config = ConfigDict(frozen=True)


class Accepted(_Body):
    """The request is saved; its number follows once the queue has it."""

    kind: Literal[NoticeKind.ACCEPTED] = NoticeKind.ACCEPTED
    subject: str


class PaidTerms(BaseModel):
    """The merchant's agreement to pay for a modification, as the ticket stores it."""

    model_config = ConfigDict(frozen=True)

    amount: int
    currency: str
    by: str
    at: datetime


class Registered(_Body):
    """The queue has the ticket: its number, deadlines and, for modifications, the quota; the
    agreement to pay when there was one; the files attached, and those Telegram no longer gave."""

    kind: Literal[NoticeKind.REGISTERED] = NoticeKind.REGISTERED
    number: str
    subject: str
    request_type: str
    category: str
    plan: str | None
    registered_at: datetime
    first_reaction_due: datetime
    resolution_due: datetime | None = None
    quota: QuotaStatus | None = None
    # Set when the deadlines count working days only: the office hours (Moscow time) to say so.
    office_hours: tuple[time, time] | None = None
    paid: PaidTerms | None = None
    files: int = 0
    missing_files: list[str] = Field(default_factory=list)


class Delayed(_Body):
    """The queue did not answer: the request is safe and waits (told once)."""

    kind: Literal[NoticeKind.DELAYED] = NoticeKind.DELAYED
    subject: str


class Refused(_Body):
    """The queue refused the request for good: saved, and support's operators are alerted."""

    kind: Literal[NoticeKind.REFUSED] = NoticeKind.REFUSED
    subject: str


class Reply(_Body):
    """A specialist's reply; its files travel in the notice's files."""

    kind: Literal[NoticeKind.REPLY] = NoticeKind.REPLY
    number: str
    subject: str
    author: str
    body: str
    # The body as the specialist wrote it: plain text, or HTML from the queue's web editor.
    body_format: BodyFormat = BodyFormat.TEXT
    sent_at: datetime


class StatusChanged(_Body):
    kind: Literal[NoticeKind.STATUS] = NoticeKind.STATUS
    number: str
    subject: str
    old: TicketStatus | None
    new: TicketStatus | None
    # The queue's own word for the new status, shown when frontdesk has none for it.
    label: str


class Moved(_Body):
    """The ticket went to another queue (None: one frontdesk may not see)."""

    kind: Literal[NoticeKind.MOVED] = NoticeKind.MOVED
    number: str
    subject: str
    queue: str | None


class Merged(_Body):
    """The ticket goes on under the surviving number."""

    kind: Literal[NoticeKind.MERGED] = NoticeKind.MERGED
    number: str
    subject: str
    into: str


class Deleted(_Body):
    kind: Literal[NoticeKind.DELETED] = NoticeKind.DELETED
    number: str
    subject: str


class ReplyAdded(_Body):
    """The merchant's message is in the queue: added to the ticket (``action`` reply or
    correction, with ``files`` files), or the ticket closed or reopened by them."""

    kind: Literal[NoticeKind.REPLY_ADDED] = NoticeKind.REPLY_ADDED
    number: str
    subject: str
    action: ReplyKind
    files: int = 0


class ReplyDelayed(_Body):
    """The queue did not take the merchant's message yet: it is safe and waits (told once)."""

    kind: Literal[NoticeKind.REPLY_DELAYED] = NoticeKind.REPLY_DELAYED
    number: str
    subject: str
    action: ReplyKind


class ReplyRefused(_Body):
    """The queue refused the merchant's message for good: saved, support's operators alerted."""

    kind: Literal[NoticeKind.REPLY_REFUSED] = NoticeKind.REPLY_REFUSED
    number: str
    subject: str
    action: ReplyKind


class ModificationRecorded(_Body):
    """A specialist recorded a modification on the ticket: free or paid (``amount`` in
    ``currency``), and the store's quota after it."""

    kind: Literal[NoticeKind.MODIFICATION] = NoticeKind.MODIFICATION
    number: str
    subject: str
    minutes: int
    free: bool
    amount: int | None
    currency: str
    quota: QuotaStatus


class FilingRestricted(_Body):
    """A lead restricted the user from filing requests, for ``reason``."""

    kind: Literal[NoticeKind.RESTRICTED] = NoticeKind.RESTRICTED
    reason: str


class FilingRestored(_Body):
    """The restriction is lifted: the user may file again."""

    kind: Literal[NoticeKind.RESTORED] = NoticeKind.RESTORED


class SlaWarning(_Body):
    """To a specialist (or the leads): the ticket has had no first reaction and 80 % of its
    window is gone (``breached`` False), or the deadline has passed (True)."""

    kind: Literal[NoticeKind.SLA_WARNING] = NoticeKind.SLA_WARNING
    number: str
    subject: str
    store: str | None
    due: datetime
    breached: bool
    # The ticket in the queue's web interface, when the queue has one.
    url: str | None = None


class TicketCard(BaseModel):
    """A ticket as a specialist triages it (services/assignments.py): the store, the request,
    how many files, the first-reaction deadline (None for a ticket registered before deadlines
    were kept) and the link to the ticket in the queue."""

    model_config = ConfigDict(frozen=True)

    number: str
    subject: str
    excerpt: str
    store_name: str | None
    store_domain: str | None
    plan: str | None
    # The labels a specialist reads (the codes when the catalog no longer knows them).
    request_type: str
    category: str
    files: int = 0
    first_reaction_due: datetime | None = None
    # The ticket's page in the queue's web interface, when it has one (notices written before
    # the card carried it have none).
    url: str | None = None
    # A modification request: a specialist may record the minutes spent on it.
    modification: bool = False


class Assigned(_Body):
    """For a specialist: the queue assigned them a ticket frontdesk filed."""

    kind: Literal[NoticeKind.ASSIGNED] = NoticeKind.ASSIGNED
    card: TicketCard


class Unassigned(_Body):
    """For a lead: a new ticket is registered in the queue and nobody owns it yet."""

    kind: Literal[NoticeKind.UNASSIGNED] = NoticeKind.UNASSIGNED
    card: TicketCard


class StaffActionDone(_Body):
    """To a specialist: their action from Telegram is in the queue (a reply with ``files``
    files, a comment, resolved, taken, or assigned to ``owner``)."""

    kind: Literal[NoticeKind.STAFF_ACTION_DONE] = NoticeKind.STAFF_ACTION_DONE
    number: str
    subject: str
    action: StaffActionKind
    owner: str | None = None
    files: int = 0


class StaffActionDelayed(_Body):
    """To a specialist: the queue did not take their action yet; it is retried (told once)."""

    kind: Literal[NoticeKind.STAFF_ACTION_DELAYED] = NoticeKind.STAFF_ACTION_DELAYED
    number: str
    subject: str
    action: StaffActionKind


class StaffActionRefused(_Body):
    """To a specialist: the queue refused their action for good, and why (its own words)."""

    kind: Literal[NoticeKind.STAFF_ACTION_REFUSED] = NoticeKind.STAFF_ACTION_REFUSED
    number: str
    subject: str
    action: StaffActionKind
    reason: str


EXCERPT = 300


def excerpt(text: str, limit: int = EXCERPT) -> str:
    """The start of a request's text, cut at a word where it can be."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    cut = text[:limit].rsplit(" ", 1)[0] or text[:limit]
    return cut + "…"


Body = Annotated[
    Accepted
    | Registered
    | Delayed
    | Refused
    | Reply
    | StatusChanged
    | Moved
    | Merged
    | Deleted
    | ReplyAdded
    | ReplyDelayed
    | ReplyRefused
    | ModificationRecorded
    | FilingRestricted
    | FilingRestored
    | SlaWarning
    | Assigned
    | Unassigned
    | StaffActionDone
    | StaffActionDelayed
    | StaffActionRefused,
    Field(discriminator="kind"),
]
_BODY: TypeAdapter[Body] = TypeAdapter(Body)


def parse_body(payload: dict[str, object]) -> Body:
    return _BODY.validate_python(payload)


class File(BaseModel):
    model_config = ConfigDict(frozen=True)

    filename: str
    content_type: str
    content: bytes


async def enqueue(
    session: AsyncSession,
    *,
    key: str,
    chat_id: int,
    locale: str,
    body: Body,
    ticket_id: int | None = None,
    files: Sequence[File] = (),
    now: datetime | None = None,
) -> bool:
    """Adds a notice to the caller's transaction (the caller commits). False when a notice with
    this key exists already: it is never written, nor sent, twice."""
    now = now or utcnow()
    notice_id = await session.scalar(
        insert_for(session, Notice)
        .values(
            key=key,
            chat_id=chat_id,
            kind=body.kind.value,
            ticket_id=ticket_id,
            locale=locale,
            payload=body.model_dump(mode="json"),
            state=NoticeState.PENDING,
            parts_sent=0,
            attempts=0,
            next_attempt_at=now,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["key"])
        .returning(Notice.id)
    )
    if notice_id is None:
        return False
    for position, file in enumerate(files):
        session.add(
            NoticeFile(
                notice_id=notice_id,
                position=position,
                filename=file.filename,
                content_type=file.content_type,
                content=file.content,
            )
        )
    await session.flush()
    return True


# --- chats Telegram refused -----------------------------------------------------------------


async def mark_unreachable(
    session: AsyncSession, chat_id: int, reason: str, *, ticket_id: int | None = None
) -> None:
    """Telegram refused the chat for good: its notices wait until the person writes again; and
    the specialists get an internal note on the merchant's tickets (``ticket_id``: that of the
    refused notice, whatever its status) saying to answer by e-mail, once per ticket and
    unreachable period (services/staff_notes.py). Commits."""
    now = utcnow()
    # A refusal repeated while the chat is unreachable keeps the period's start: it names the
    # period, so its notes are not written again.
    await session.execute(
        insert_for(session, TelegramChat)
        .values(chat_id=chat_id, unreachable_since=now, reason=reason[:255])
        .on_conflict_do_update(index_elements=["chat_id"], set_={"reason": reason[:255]})
    )
    since = await session.scalar(
        select(TelegramChat.unreachable_since).where(TelegramChat.chat_id == chat_id)
    )
    await staff_notes.owe_unreachable_notes(
        session, chat_id, since=since or now, reason=reason, ticket_id=ticket_id
    )
    await session.commit()


async def mark_reachable(session: AsyncSession, chat_id: int) -> bool:
    """The person wrote (or unblocked the bot): their waiting notices go out again, and the
    tickets told they were out of reach get a note that they are back. True when the chat was
    unreachable. Commits only then."""
    # A read first: nearly every chat is reachable, and a write on every update would serialise
    # the updates (on SQLite, and hold a write lock across the handler until its commit).
    since = await session.scalar(
        select(TelegramChat.unreachable_since).where(
            TelegramChat.chat_id == chat_id, TelegramChat.unreachable_since.is_not(None)
        )
    )
    if since is None:
        return False
    await back_in_reach(session, chat_id, since)
    return True


async def back_in_reach(session: AsyncSession, chat_id: int, since: datetime) -> None:
    """The chat Telegram had refused since `since` is reachable again (its person wrote).
    Commits."""
    # The tickets whose specialists were told to write by e-mail learn the merchant is back.
    await staff_notes.owe_reachable_notes(session, chat_id, unreachable_since=since)
    await session.execute(delete(TelegramChat).where(TelegramChat.chat_id == chat_id))
    # Held notices are due now, not after the backoff they had when the chat was refused.
    await session.execute(
        update(Notice)
        .where(Notice.chat_id == chat_id, Notice.state == NoticeState.PENDING)
        .values(next_attempt_at=utcnow())
    )
    await session.commit()


async def is_unreachable(session: AsyncSession, chat_id: int) -> bool:
    return (
        await session.scalar(
            select(TelegramChat.chat_id).where(
                TelegramChat.chat_id == chat_id, TelegramChat.unreachable_since.is_not(None)
            )
        )
    ) is not None
