"""ORM models. Telegram ids are BigInteger: they outgrew 32 bits long ago."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Double,
    Enum,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    false,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from services.db.base import Base, UTCDateTime, utcnow


def _enum(enum: type[StrEnum]) -> Enum:
    # Stored as the lower-case values, in a VARCHAR with a CHECK: readable and portable.
    return Enum(
        enum,
        native_enum=False,
        length=16,
        values_callable=lambda members: [member.value for member in members],
        name=enum.__name__.lower(),
        create_constraint=True,
    )


class Role(StrEnum):
    OWNER = "owner"
    ADMIN = "admin"


class TicketStatus(StrEnum):
    # Saved locally, not yet registered in the official queue (it does not count yet).
    PENDING = "pending"
    REGISTERED = "registered"
    OPEN = "open"
    WAITING = "waiting"
    RESOLVED = "resolved"
    REJECTED = "rejected"


class Merchant(Base):
    __tablename__ = "merchants"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    full_name: Mapped[str] = mapped_column(String(255))
    username: Mapped[str | None] = mapped_column(String(64))
    # The language the merchant chose with /language; None means "follow Telegram's".
    locale: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    memberships: Mapped[list[Membership]] = relationship(back_populates="merchant")


class Store(Base):
    __tablename__ = "stores"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The store's id on the platform, which links and updates it (POST /api/links,
    # PUT /api/stores/{id}); None for a store entered by hand.
    external_id: Mapped[str | None] = mapped_column(String(64), unique=True)
    domain: Mapped[str] = mapped_column(String(255), unique=True)
    name: Mapped[str] = mapped_column(String(255))
    plan: Mapped[str] = mapped_column(String(32))
    owner_email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    memberships: Mapped[list[Membership]] = relationship(back_populates="store")


class Membership(Base):
    __tablename__ = "memberships"
    __table_args__ = (UniqueConstraint("merchant_id", "store_id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"))
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    role: Mapped[Role] = mapped_column(_enum(Role))
    # The e-mail the platform registered for this user of this store (their link's): the queue's
    # requester of the store's tickets. One person may be a@… at one store and b@… at another.
    # None for a membership granted by hand: the placeholder requester then.
    email: Mapped[str | None] = mapped_column(String(320))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    merchant: Mapped[Merchant] = relationship(back_populates="memberships")
    store: Mapped[Store] = relationship(back_populates="memberships")


class LinkToken(Base):
    """A single-use link the platform asked for (services/links.py): redeeming it with
    `/start <token>` makes the Telegram user a member of the store with the role. Only the
    token's SHA-256 is kept, so a copy of the database links nobody."""

    __tablename__ = "link_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    role: Mapped[Role] = mapped_column(_enum(Role))
    # The e-mail registered on the platform: it becomes the membership's, the queue's requester.
    email: Mapped[str] = mapped_column(String(320))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Set once, by the conditional UPDATE that redeems it: two redeems at once, one wins.
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_by: Mapped[int | None] = mapped_column(ForeignKey("merchants.id", ondelete="SET NULL"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StaffRole(StrEnum):
    SPECIALIST = "specialist"
    LEAD = "lead"


class StaffMember(Base):
    """A specialist or lead of the queue, linked to their Telegram account (services/staff.py).
    One row per queue user; `removed_at` set by `frontdesk staff remove` (kept for the log)."""

    __tablename__ = "staff_members"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    queue_user: Mapped[str] = mapped_column(String(200), unique=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger, unique=True)
    role: Mapped[StaffRole] = mapped_column(_enum(StaffRole))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    removed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The bot set this chat's staff command menu and has not cleared it since: a removed member's
    # menu is cleared by the bot at their next staff command (the CLI cannot call Telegram).
    commands_shown: Mapped[bool] = mapped_column(default=False)
    # The language of the member's Telegram when they linked (None before 0015): the bot's own
    # messages to staff (services/sla_watch.py) use it.
    locale: Mapped[str | None] = mapped_column(String(8))


class FilingRestriction(Base):
    """The log of restrictions on filing (services/restrictions.py): each row a lead restricting
    (``restricted`` true) or lifting the restriction of a Telegram user, with the reason. A user
    is restricted when their latest row restricts."""

    __tablename__ = "filing_restrictions"
    __table_args__ = (Index("ix_filing_restrictions_telegram_id", "telegram_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    telegram_id: Mapped[int] = mapped_column(BigInteger)
    restricted: Mapped[bool] = mapped_column()
    reason: Mapped[str] = mapped_column(Text)
    by_queue_user: Mapped[str] = mapped_column(String(200))
    by_telegram_id: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class StaffLinkToken(Base):
    """A single-use staff link (`frontdesk staff link`), the same mechanism as LinkToken:
    only the SHA-256 is kept, redeemed once by a conditional UPDATE (services/links.py:claim)."""

    __tablename__ = "staff_link_tokens"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    queue_user: Mapped[str] = mapped_column(String(200))
    role: Mapped[StaffRole] = mapped_column(_enum(StaffRole))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    used_by: Mapped[int | None] = mapped_column(BigInteger)  # the Telegram id that redeemed it
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class Ticket(Base):
    """frontdesk's own record of a request; the queue's ticket is the official one."""

    __tablename__ = "tickets"
    # The sync looks tickets up by the queue's number (services/sync.py); the leads' /queue lists
    # open tickets by deadline and /stats counts them by registration (services/lead_views.py).
    __table_args__ = (
        Index("ix_tickets_queue_ticket", "queue_name", "queue_ticket_id"),
        Index("ix_tickets_status_first_reaction_due", "status", "first_reaction_due"),
        Index("ix_tickets_registered_at", "registered_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # Idempotency key, stored in the queue too: a retry looks it up instead of filing twice.
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    merchant_id: Mapped[int] = mapped_column(
        ForeignKey("merchants.id", ondelete="CASCADE"), index=True
    )
    store_id: Mapped[int | None] = mapped_column(ForeignKey("stores.id", ondelete="SET NULL"))
    queue_name: Mapped[str] = mapped_column(String(32))
    queue_ticket_id: Mapped[str | None] = mapped_column(String(64))
    status: Mapped[TicketStatus] = mapped_column(_enum(TicketStatus))
    request_type: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    subject: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)
    registered_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The plan of the store when the request was filed: it decides the SLA and the quota.
    plan: Mapped[str | None] = mapped_column(String(32))
    # The language the merchant filed in: later notices about this ticket use it.
    locale: Mapped[str] = mapped_column(String(8), default="ru", server_default="ru")
    # Deadlines count from registration in the queue, so they are set only then.
    first_reaction_due: Mapped[datetime | None] = mapped_column(UTCDateTime)
    resolution_due: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The specialist who owns the ticket in the queue (its user name), as the sync last saw it.
    queue_owner: Mapped[str | None] = mapped_column(String(255))
    # The first reply or status change by support, as the sync saw it: the SLA watch stops there.
    first_reaction_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # The last SLA warning written (services/sla_watch.py): 0 none, 1 at 80 %, 2 at the breach.
    sla_stage: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # A modification beyond the month's free ones: who agreed to pay, when, and which price
    # (services/tickets.PaidAgreement). All None when nothing was agreed.
    paid_by_merchant_id: Mapped[int | None] = mapped_column(Integer)
    paid_by_name: Mapped[str | None] = mapped_column(String(255))
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    paid_amount: Mapped[int | None] = mapped_column(Integer)
    paid_currency: Mapped[str | None] = mapped_column(String(3))

    merchant: Mapped[Merchant] = relationship()
    store: Mapped[Store | None] = relationship()
    files: Mapped[list[TicketFile]] = relationship(
        order_by="TicketFile.position", cascade="all, delete-orphan"
    )


class TicketFile(Base):
    """A file the merchant attached to the ticket: Telegram keeps the content, this row the
    reference (services.files.FileRef); the filing worker reads the bytes when it files."""

    __tablename__ = "ticket_files"
    __table_args__ = (UniqueConstraint("ticket_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    file_id: Mapped[str] = mapped_column(String(255))
    file_unique_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    size: Mapped[int | None] = mapped_column(BigInteger)


class FilingOutbox(Base):
    """A ticket waiting to be registered in the queue. Written in the same transaction as the
    ticket, deleted in the same transaction as the queue number is saved."""

    __tablename__ = "filing_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("tickets.id", ondelete="CASCADE"), unique=True
    )
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    # A worker holds a row until then; a worker that died lets it go by simply expiring.
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    delay_notified: Mapped[bool] = mapped_column(default=False)
    # The queue refused the ticket for good (credentials revoked, a field rejected): no more
    # retries until an operator re-drives it (`frontdesk outbox retry`).
    refused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    ticket: Mapped[Ticket] = relationship()


class ReplyKind(StrEnum):
    """What a merchant's message on their ticket does (services/replies.py)."""

    REPLY = "reply"
    # An edit of a message after filing: added as new correspondence, never overwriting.
    CORRECTION = "correction"
    # The requester resolves their own ticket.
    CLOSE = "close"
    # The requester reopens their resolved ticket.
    REOPEN = "reopen"


class ReplyOutbox(Base):
    """A merchant's message on a ticket, on its way to the queue (services/replies.py).

    Written when the bot accepts it; the reply worker posts it and stamps ``done_at``. Kept
    afterwards: ``key`` (the Telegram update it came from) makes a retried update or a double
    tap one reply, and ``reference`` (stored in the queue with the message) makes it one
    message in the queue whatever failed in between."""

    __tablename__ = "reply_outbox"
    __table_args__ = (Index("ix_reply_outbox_ticket_id_done_at", "ticket_id", "done_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    merchant_id: Mapped[int] = mapped_column(ForeignKey("merchants.id", ondelete="CASCADE"))
    kind: Mapped[ReplyKind] = mapped_column(_enum(ReplyKind))
    text: Mapped[str] = mapped_column(Text, default="")
    # services.files.FileRef as JSON, read through a FileSource when posted.
    files: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    locale: Mapped[str] = mapped_column(String(8))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    delay_notified: Mapped[bool] = mapped_column(default=False)
    # The queue refused it for good: no more retries until an operator re-drives it.
    refused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    # In the queue: posted (or the status set) and confirmed to the merchant.
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    ticket: Mapped[Ticket] = relationship()


class StaffNoteOutbox(Base):
    """An internal note frontdesk owes a ticket in the queue (services/staff_notes.py): for now,
    that the merchant cannot be reached in Telegram. Written in the same transaction as the
    cause; ``key`` makes it one note per ticket and cause, ``reference`` (stored in the queue
    with the note) one note in the queue whatever failed in between."""

    __tablename__ = "staff_note_outbox"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    text: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    delay_notified: Mapped[bool] = mapped_column(default=False)
    # The queue refused it for good: no more retries until an operator re-drives it.
    refused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    ticket: Mapped[Ticket] = relationship()


class StaffActionKind(StrEnum):
    """What a specialist does on a ticket from Telegram (services/staff_actions.py)."""

    # Correspondence to the requester, as support.
    REPLY = "reply"
    # An internal comment, for the specialists only.
    COMMENT = "comment"
    RESOLVE = "resolve"
    # Assign the ticket to oneself.
    TAKE = "take"
    # Assign the ticket to another linked specialist (``owner``).
    ASSIGN = "assign"


class StaffActionOutbox(Base):
    """A specialist's action on a ticket, taken in Telegram, on its way to the queue
    (services/staff_actions.py). Written when the bot accepts it; the worker writes it to the
    queue on the specialist's behalf and stamps ``done_at`` in the transaction that applies its
    effect here and writes the notices. ``key`` (the Telegram update, scoped to the specialist)
    makes a retried update or a double tap one action; ``reference`` (stored in the queue with a
    reply or comment) one message in the queue whatever failed in between."""

    __tablename__ = "staff_action_outbox"
    __table_args__ = (Index("ix_staff_action_outbox_ticket_id_done_at", "ticket_id", "done_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    reference: Mapped[str] = mapped_column(String(64), unique=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"))
    # Who acts: their Telegram account (told the outcome) and their queue user (the author).
    staff_telegram_id: Mapped[int] = mapped_column(BigInteger)
    queue_user: Mapped[str] = mapped_column(String(200))
    kind: Mapped[StaffActionKind] = mapped_column(_enum(StaffActionKind))
    # The new owner of an assign (a queue user); None otherwise.
    owner: Mapped[str | None] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text, default="")
    # services.files.FileRef as JSON, read through a FileSource when posted.
    files: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    # The specialist's language, for their confirmation.
    locale: Mapped[str] = mapped_column(String(8))
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, index=True)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    delay_notified: Mapped[bool] = mapped_column(default=False)
    # The queue refused it for good (QueueRejected, the ticket gone): the specialist is told.
    refused_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    ticket: Mapped[Ticket] = relationship()


class FsmRecord(Base):
    """aiogram FSM state and data, for deployments without Redis (see bot/fsm_storage.py)."""

    __tablename__ = "fsm_records"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    state: Mapped[str | None] = mapped_column(String(255))
    data: Mapped[dict[str, object]] = mapped_column(JSON, default=dict)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class BuiltinQueueTicket(Base):
    """The embedded official queue (QUEUE=builtin): its own numbering, like a real helpdesk."""

    __tablename__ = "queue_tickets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    reference: Mapped[str | None] = mapped_column(String(64), unique=True)
    requester: Mapped[str] = mapped_column(String(320), index=True)
    subject: Mapped[str] = mapped_column(String(255))
    body: Mapped[str] = mapped_column(Text)
    # frontdesk's own statuses (TicketStatus values): the builtin queue speaks the domain.
    status: Mapped[str] = mapped_column(String(32), default=TicketStatus.REGISTERED.value)
    # The queue the ticket is in; frontdesk files into "Support", staff may move it elsewhere.
    queue: Mapped[str] = mapped_column(String(64), default="Support", server_default="Support")
    merged_into: Mapped[int | None] = mapped_column(Integer)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    request_type: Mapped[str] = mapped_column(String(64))
    category: Mapped[str] = mapped_column(String(64))
    store: Mapped[str | None] = mapped_column(String(255))
    plan: Mapped[str | None] = mapped_column(String(32))
    telegram_user_id: Mapped[int] = mapped_column(BigInteger)
    owner: Mapped[str | None] = mapped_column(String(255))
    # The merchant's agreement to pay for a modification, as frontdesk words it for the queue.
    paid_agreement: Mapped[str | None] = mapped_column(Text)
    # What a specialist reads, as RT shows it (Due, Priority, custom fields): see NewTicket.
    requester_name: Mapped[str | None] = mapped_column(String(255))
    store_name: Mapped[str | None] = mapped_column(String(255))
    request_type_label: Mapped[str | None] = mapped_column(String(255))
    category_label: Mapped[str | None] = mapped_column(String(255))
    priority: Mapped[str | None] = mapped_column(String(16))  # services.queue.base.Priority
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)  # the first reaction
    resolution_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)

    comments: Mapped[list[BuiltinQueueComment]] = relationship(
        back_populates="ticket", order_by="BuiltinQueueComment.id"
    )


class BuiltinQueueComment(Base):
    __tablename__ = "queue_comments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("queue_tickets.id", ondelete="CASCADE"), index=True
    )
    author: Mapped[str] = mapped_column(String(320))
    body: Mapped[str] = mapped_column(Text)
    # "text" or "html" (services.queue.base.BodyFormat)
    body_format: Mapped[str] = mapped_column(String(8), default="text", server_default="text")
    # frontdesk's reference of a merchant's message it posted: the same one is never posted twice.
    reference: Mapped[str | None] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)

    ticket: Mapped[BuiltinQueueTicket] = relationship(back_populates="comments")
    attachments: Mapped[list[BuiltinQueueAttachment]] = relationship(
        order_by="BuiltinQueueAttachment.id"
    )


class BuiltinQueueTransaction(Base):
    """The history of a builtin-queue ticket in frontdesk's own terms: who did what, when."""

    __tablename__ = "queue_transactions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    ticket_id: Mapped[int] = mapped_column(
        ForeignKey("queue_tickets.id", ondelete="CASCADE"), index=True
    )
    # created, message, status, owner, moved, merged or deleted (services/queue/builtin.py)
    kind: Mapped[str] = mapped_column(String(16))
    # A message written for support (by staff through the console), not by the requester.
    by_support: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    old_value: Mapped[str | None] = mapped_column(String(255))
    new_value: Mapped[str | None] = mapped_column(String(255))
    creator: Mapped[str] = mapped_column(String(320))
    # The message of a "created" or "message" transaction.
    comment_id: Mapped[int | None] = mapped_column(
        ForeignKey("queue_comments.id", ondelete="CASCADE")
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class BuiltinQueueAttachment(Base):
    __tablename__ = "queue_attachments"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    comment_id: Mapped[int] = mapped_column(
        ForeignKey("queue_comments.id", ondelete="CASCADE"), index=True
    )
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    content: Mapped[bytes] = mapped_column(LargeBinary)


class Modification(Base):
    """The ledger of small modifications done by specialists, with the charge decided then."""

    __tablename__ = "modifications"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"), index=True)
    ticket_id: Mapped[int | None] = mapped_column(ForeignKey("tickets.id", ondelete="SET NULL"))
    minutes: Mapped[int] = mapped_column(Integer)
    specialist: Mapped[str] = mapped_column(String(255))
    done_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # Start (UTC) of the calendar month, Moscow time, that the modification counts in.
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    charge: Mapped[str] = mapped_column(String(8))
    amount: Mapped[int | None] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QuotaCounter(Base):
    """Free modifications used by a store in a month. One row per store and month, raised by a
    conditional UPDATE, so two modifications recorded at once cannot both take the last slot."""

    __tablename__ = "quota_counters"
    __table_args__ = (UniqueConstraint("store_id", "period_start"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    store_id: Mapped[int] = mapped_column(ForeignKey("stores.id", ondelete="CASCADE"))
    period_start: Mapped[datetime] = mapped_column(UTCDateTime)
    used: Mapped[int] = mapped_column(Integer, default=0)


class SyncCursor(Base):
    """How far the sync worker has read a queue's changes (services/sync.py)."""

    __tablename__ = "sync_cursors"

    queue_name: Mapped[str] = mapped_column(String(32), primary_key=True)
    # The latest `updated_at` of a ticket the worker has read everything of (the queue's clock).
    position: Mapped[datetime] = mapped_column(UTCDateTime)
    # When frontdesk began to sync this queue: older history is never replayed to merchants.
    started_at: Mapped[datetime] = mapped_column(UTCDateTime)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow, onupdate=utcnow)


class AppliedQueueEvent(Base):
    """An event of the queue that frontdesk has applied: the unique key makes it exactly once,
    whether it was pulled by the sync worker or pushed to /queue/events, or both."""

    __tablename__ = "applied_queue_events"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # "<queue>:<ticket id>:<transaction id>"
    key: Mapped[str] = mapped_column(String(160), unique=True)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    kind: Mapped[str] = mapped_column(String(16))
    applied_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class QueueEventDelivery(Base):
    """A signed call of /queue/events already accepted: the same signature again is a replay.
    Kept until its timestamp is out of the accepted window anyway."""

    __tablename__ = "queue_event_deliveries"

    signature: Mapped[str] = mapped_column(String(64), primary_key=True)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)


class NoticeState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    # Telegram refused it for a reason a retry cannot fix (a rendering bug): an operator looks.
    FAILED = "failed"


class Notice(Base):
    """Something frontdesk tells a person on its own initiative (services/notices.py).

    Written in the same transaction as the change that causes it, with a unique key, so it is
    neither lost nor doubled; the delivery worker (bot/delivery.py) sends it part by part and
    records each part, so a crash resumes at the first part not yet sent.
    """

    __tablename__ = "notices"
    __table_args__ = (
        # The delivery worker's claim: the oldest pending notice of each chat.
        Index("ix_notices_state_chat_id", "state", "chat_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(200), unique=True)
    chat_id: Mapped[int] = mapped_column(BigInteger)
    kind: Mapped[str] = mapped_column(String(32))
    ticket_id: Mapped[int | None] = mapped_column(
        ForeignKey("tickets.id", ondelete="SET NULL"), index=True
    )
    locale: Mapped[str] = mapped_column(String(8))
    payload: Mapped[dict[str, object]] = mapped_column(JSON)
    state: Mapped[NoticeState] = mapped_column(_enum(NoticeState), default=NoticeState.PENDING)
    parts_sent: Mapped[int] = mapped_column(Integer, default=0)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    claimed_until: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    files: Mapped[list[NoticeFile]] = relationship(
        order_by="NoticeFile.position", cascade="all, delete-orphan"
    )


class NoticeFile(Base):
    """A file a notice carries (a specialist's attachment), kept until the notice is sent."""

    __tablename__ = "notice_files"
    __table_args__ = (UniqueConstraint("notice_id", "position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    notice_id: Mapped[int] = mapped_column(ForeignKey("notices.id", ondelete="CASCADE"))
    position: Mapped[int] = mapped_column(Integer)
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(128))
    content: Mapped[bytes] = mapped_column(LargeBinary)


class TelegramChat(Base):
    """A chat Telegram refused for good (the person blocked the bot, the chat is gone): notices
    to it wait, undelivered, until the person writes again."""

    __tablename__ = "telegram_chats"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    unreachable_since: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reason: Mapped[str | None] = mapped_column(String(255))


class RateLimitHit(Base):
    """One admitted unit of a moving-window rate limit (services/rate_limit_storage.py): the
    limit's key, when it was admitted and when it stops counting. Short-lived rows."""

    __tablename__ = "rate_limit_hits"
    __table_args__ = (Index("ix_rate_limit_hits_key_at", "key", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    key: Mapped[str] = mapped_column(String(255))
    at: Mapped[float] = mapped_column(Double)  # Unix seconds
    expires_at: Mapped[float] = mapped_column(Double, index=True)


class RateLimitCounter(Base):
    """A fixed-window counter of a rate limit (e.g. a chat's cool-down after a 429)."""

    __tablename__ = "rate_limit_counters"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    value: Mapped[int] = mapped_column(BigInteger)
    expires_at: Mapped[float] = mapped_column(Double, index=True)


class TicketMessage(Base):
    """A Telegram message about a ticket: a notice part or a card the bot sent, or the
    merchant's own message that became the ticket's description or a reply. A Telegram reply to
    it goes to that ticket; an edit of the merchant's own one becomes a correction."""

    __tablename__ = "ticket_messages"

    chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    message_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    ticket_id: Mapped[int] = mapped_column(ForeignKey("tickets.id", ondelete="CASCADE"), index=True)
    # Written by the merchant (a description or a reply), not sent by the bot.
    by_merchant: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=utcnow)


class ProcessLease(Base):
    """A job only one process may do at a time (services/leases.py): the Telegram poller of a
    token, the sync's reading of a queue. Held until `expires_at`, renewed while the holder
    lives; a holder that dies lets it lapse and another process takes over."""

    __tablename__ = "process_leases"

    name: Mapped[str] = mapped_column(String(200), primary_key=True)
    # Host, process id and a random tag: who to look for when a start is refused.
    holder: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
