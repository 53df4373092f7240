"""Request Tracker 5 as the official queue (QUEUE=rt), spoken to through its REST2 API.

A ticket lives in one RT queue (``Support`` by default) and carries frontdesk's data in ticket
custom fields (FrontdeskRef, RequestType, Category, Store, Plan, TelegramUser, and PaidAgreement
for a modification the merchant agreed to pay; for the specialist StoreName, RequestTypeLabel,
CategoryLabel and ResolutionDue); they must apply to that queue (scripts/rt-initialdata.pl sets
them up). All but FrontdeskRef are optional: without one RT drops its value. The merchant is the
ticket's Requestor, filed as ``"Name" <e-mail>`` (RT takes the name as the RealName of a user it
creates); Due is the first-reaction deadline frontdesk tells the merchant, Priority follows the
plan (RT_PRIORITY).

frontdesk talks to RT as one account of its own. RT records who wrote each message, so a message
written by that account is the merchant's (frontdesk posts it on their behalf) and any other
author is a specialist. The account needs, on the queue: SeeQueue, CreateTicket, ShowTicket,
ReplyToTicket, ModifyTicket (the merchant closes and reopens their ticket), SeeCustomField,
SetInitialCustomField. Without ShowTicketComments it never even
sees the specialists' internal comments; they are filtered out here anyway.

REST2 details this module relies on (RT 5.0.3, checked against a running server):
- Ticket reads go through a TicketSQL search (``id = N AND Queue = '...'``): unlike
  ``GET /ticket/N`` it expands the requestor's e-mail address and scopes the read to our queue.
- ``POST /ticket/N/correspond`` on a missing ticket answers 400 "Permission Denied", and
  ``/ticket/N/history`` of a missing ticket answers 200 with no items, so ticket-scoped calls
  look the ticket up first.
- Collections the account cannot see whole (transactions, attachments) come with ``total`` null
  and are filtered *after* paging: a page may hold fewer items than ``per_page`` (even none)
  before the last one. Paging stops on an empty page there, unless the query asks only for rows
  the account always sees (then a short page is the last).
- A non-ASCII attachment file name sent as JSON text makes RT answer 500: it is sent as its
  UTF-8 bytes, one code point each, which RT stores as the right name.
- In a collection, an attachment's ``Content`` is decoded text (binary gets mangled); only
  ``GET /attachment/N`` returns the exact bytes, base64-encoded. Asking a collection for the
  ``Parent`` field crashes REST2 (500) on top-level parts.
- A message posted through ``/ticket/N/correspond`` keeps no header or field of the caller's:
  frontdesk's reference of a merchant's message rides in its HTML as a comment
  (``<!-- frontdesk:REF -->``), which RT's web view and mail readers do not show; a retry looks
  for it among frontdesk's own messages before posting. RT opens a new ticket (as RT_System)
  when frontdesk posts: that is frontdesk's doing, not a specialist's.
- TicketSQL reads dates in the account's time zone (its Timezone preference, else RT's), not
  UTC: ``timezone`` must name it.
- Who speaks for support: a user record (``GET /user/NAME``) shows ``Privileged`` to any
  privileged account. A staff group (``staff_group``) is read as ``GET /group/N``, whose
  ``Members`` need SeeGroup on that group; ``/group/N/members`` would need
  AdminGroupMembership, more than frontdesk should hold.
- Where a ticket went (checked against RT 5.0.3):
  merged: ``GET /ticket/OLD`` answers with the surviving ticket's record (``id`` and
  ``EffectiveId`` the new number); OLD's history ends with ``AddLink``, Field ``MergedInto``,
  NewValue ``fsck.com-rt://NAME/ticket/NEW`` (the survivor records the same link to itself);
  TicketSQL ``id = OLD`` finds nothing.
  moved: a ``Set`` of Field ``Queue`` (Old/New queue ids); an account without rights on the
  new queue gets 403 for the ticket and an empty history.
  deleted: a ``Status`` change to ``deleted``; the ticket still reads, TicketSQL skips it.
"""

from __future__ import annotations

import base64
import binascii
import html
import json
import logging
import re
import time
from collections import OrderedDict
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any, TypeVar
from urllib.parse import quote
from zoneinfo import ZoneInfo

import aiohttp

from services.db.models import TicketStatus
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
    Priority,
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

__all__ = ["RequestTrackerQueue", "attachments_payload", "rt_status", "ticket_sql_string"]

log = logging.getLogger(__name__)

T = TypeVar("T")

REFERENCE_FIELD = "FrontdeskRef"
PAID_AGREEMENT_FIELD = "PaidAgreement"
# What a specialist reads (scripts/rt-initialdata.pl): labels beside the codes the adapters use.
STORE_NAME_FIELD = "StoreName"
TYPE_LABEL_FIELD = "RequestTypeLabel"
CATEGORY_LABEL_FIELD = "CategoryLabel"
# A DateTime field: RT shows it in the reader's zone. It takes a value as local time of the
# account's zone (``timezone``); ISO 8601 with "Z" loses the time of day there.
RESOLUTION_DUE_FIELD = "ResolutionDue"
# RT 5's default PriorityAsString scale: Low 0, Medium 50, High 100.
RT_PRIORITY = {Priority.HIGH: 100, Priority.NORMAL: 50, Priority.LOW: 0}
NOBODY = "Nobody"
# The user RT's scrips act as, and how long after frontdesk's doing theirs follow it.
RT_SYSTEM = "RT_System"
SCRIP_WINDOW = timedelta(seconds=10)
PER_PAGE = 100  # REST2's maximum
MAX_PAGES = 1000  # a runaway guard: 100,000 rows
ATTACHMENT_SEARCH_CHUNK = 50  # transaction ids per attachment search

# Internal notes of the specialists and copies of outgoing mail: never the merchant's business.
_INTERNAL_TRANSACTION_TYPES = ("Comment", "CommentEmailRecord", "EmailRecord")
_MESSAGE_TRANSACTION_TYPES = ("Create", "Correspond")
MISSING_CHECK_CHUNK = 100  # ticket ids per "which are still here" search
USER_CACHE_SIZE = 1024  # users whose standing (support or not) is remembered
USER_CACHE_SECONDS = 600.0  # how long: a user made privileged counts within 10 minutes
STAFF_GROUP_DEPTH = 5  # nested groups followed

# RT's default lifecycle as frontdesk's statuses. "deleted" is no status for frontdesk: a
# DeletedEvent. A status of a custom lifecycle maps to None (frontdesk keeps its own as it was).
_STATUS_FROM_RT = {
    "new": TicketStatus.REGISTERED,
    "open": TicketStatus.OPEN,
    "stalled": TicketStatus.WAITING,
    "resolved": TicketStatus.RESOLVED,
    "rejected": TicketStatus.REJECTED,
}
_STATUS_TO_RT = {status: name for name, status in _STATUS_FROM_RT.items()}
_DELETED = "deleted"
_MERGE_TARGET = re.compile(r"/ticket/([0-9]+)$")

_TICKET_FIELDS = (
    ("fields", "Subject,Status,Owner,Created,LastUpdated,Due,Requestor,Queue,CustomFields"),
    ("fields[Requestor]", "EmailAddress,Name"),
    ("fields[Queue]", "Name"),
)
_TICKET_ID = re.compile(r"[0-9]{1,18}")
# frontdesk's references (services/replies.py: uuid hex), and their mark in a message.
_REFERENCE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_MARKER = re.compile(r"<!--\s*frontdesk:[A-Za-z0-9_-]{1,64}\s*-->")


def _marker(reference: str) -> str:
    return f"<!-- frontdesk:{reference} -->"


def _marked_html(body: str, reference: str) -> str:
    """The merchant's plain text as HTML (RT's editor shows it as written), with frontdesk's
    reference as a comment no reader displays."""
    text = html.escape(body, quote=False).replace("\r\n", "\n").replace("\n", "<br>\n")
    return f"<div>{text}</div>\n{_marker(reference)}"


# RT::Authen::Token's auth string: "<version>-<user id>-<secret>".
_TOKEN_OWNER = re.compile(r"[0-9]+-([0-9]+)-\S+")


def ticket_sql_string(value: str) -> str:
    """A TicketSQL string literal: RT's parser unescapes backslash-escaped characters."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _parse_time(value: str) -> datetime:
    # REST2 formats every date as ISO 8601 in UTC, e.g. "2026-11-25T06:13:24Z".
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _rt_time(value: datetime) -> str:
    """A date as RT takes it whatever the account's time zone: ISO 8601 with ``Z``."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _optional_time(value: Any) -> datetime | None:
    """A date RT may leave unset: it shows an unset one as the epoch."""
    if not value:
        return None
    parsed = _parse_time(str(value))
    return None if parsed.year <= 1970 else parsed


def requestor_address(email: str, name: str | None) -> str:
    """The requester as RT takes it: ``"Name" <email>``, which RT parses and records as the
    user's RealName when it creates that user (an existing user keeps the name they have)."""
    cleaned = " ".join("".join(c for c in (name or "") if c not in '"\\<>').split())
    return f'"{cleaned}" <{email}>' if cleaned else email


def frontdesk_status(rt_name: str | None) -> TicketStatus | None:
    """frontdesk's status for one of RT's; None for a status frontdesk does not know."""
    return _STATUS_FROM_RT.get((rt_name or "").lower())


def rt_status(status: TicketStatus) -> str:
    """RT's status (default lifecycle) for one of frontdesk's."""
    try:
        return _STATUS_TO_RT[status]
    except KeyError:
        raise QueueRejected(f"RT has no status for {status.value!r}") from None


def _check_ticket_id(ticket_id: str) -> str:
    # Also keeps anything but a number out of the URL path.
    if not isinstance(ticket_id, str) or not _TICKET_ID.fullmatch(ticket_id):
        raise TicketNotFound(str(ticket_id))
    return ticket_id


def attachments_payload(attachments: Sequence[Attachment]) -> list[dict[str, str]]:
    return [
        {
            # RT 5.0.3 decodes the MIME file name from UTF-8 bytes and dies ("Wide character",
            # a 500) on the characters JSON gives it: hand it the UTF-8 bytes as code points.
            "FileName": a.filename.encode("utf-8").decode("latin-1"),
            "FileType": a.content_type,
            "FileContent": base64.b64encode(a.content).decode("ascii"),
        }
        for a in attachments
    ]


class _TicketHidden(TicketNotFound):
    """RT refused frontdesk the ticket (403): it exists, in a place frontdesk may not see."""


class _Expiring(OrderedDict[str, tuple[float, Any]]):
    """A small LRU map whose entries also expire."""

    def __init__(self, size: int, seconds: float) -> None:
        super().__init__()
        self._size, self._seconds = size, seconds

    def lookup(self, key: str) -> tuple[bool, Any]:
        entry = self.get(key)
        if entry is None or entry[0] < time.monotonic():
            self.pop(key, None)
            return False, None
        self.move_to_end(key)
        return True, entry[1]

    def remember(self, key: str, value: Any) -> None:
        self[key] = (time.monotonic() + self._seconds, value)
        self.move_to_end(key)
        while len(self) > self._size:
            self.popitem(last=False)


class RequestTrackerQueue:
    """The TicketQueue port over RT's REST2 (``{base_url}/REST/2.0/``).

    Authenticate with an RT auth token (``Authorization: token …``) or with a user and password
    (HTTP basic). ``account`` is the RT user name of that login; it is derived from the basic
    user or, for a token, looked up once from the token's owner. Every HTTP call is bounded by
    ``timeout`` seconds. A given ``session`` stays the caller's to close. ``staff_group`` names
    an RT group whose members speak for support besides RT's privileged users.
    """

    name = "rt"

    def __init__(
        self,
        base_url: str,
        queue: str = "Support",
        *,
        token: str | None = None,
        user: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        session: aiohttp.ClientSession | None = None,
        timezone: str = "UTC",
        account: str | None = None,
        staff_group: str | None = None,
    ) -> None:
        if (token is None) == (user is None):
            raise ValueError("give either an RT auth token or a user and password")
        if user is not None and password is None:
            raise ValueError("a password is needed with the user")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._web = base_url.rstrip("/")
        self._api = self._web + "/REST/2.0/"
        self._queue = queue
        self._headers = {"Accept": "application/json"}
        self._token_owner: str | None = None
        if token is not None:
            self._headers["Authorization"] = f"token {token}"
            owner = _TOKEN_OWNER.fullmatch(token)
            if account is None and owner is None:
                raise ValueError("not an RT auth token; give the account name it belongs to")
            self._token_owner = owner.group(1) if owner else None
        else:
            assert user is not None and password is not None
            self._headers["Authorization"] = aiohttp.encode_basic_auth(user, password)
            account = account or user
        self._account = account
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._timeout_seconds = timeout
        self._session = session
        self._owns_session = session is None
        self._timezone = ZoneInfo(timezone)
        self._staff_group = staff_group or None
        self._user_names: dict[str, str] = {}
        self._queue_names: dict[str, str | None] = {}
        self._queue_id_cache: str | None = None
        self._support = _Expiring(USER_CACHE_SIZE, USER_CACHE_SECONDS)
        self._staff = _Expiring(1, USER_CACHE_SECONDS)

    # --- the port --------------------------------------------------------------------------

    async def create_ticket(self, ticket: NewTicket) -> QueueTicket:
        await self._queue_id()  # a queue that does not exist is a refusal, not an outage
        # Filing is idempotent on the reference: a retry after an unclear failure must not
        # open a second ticket.
        existing = await self.find_by_reference(ticket.reference)
        if existing is not None:
            return existing
        custom_fields = {
            REFERENCE_FIELD: ticket.reference,
            "RequestType": ticket.request_type,
            "Category": ticket.category,
            "TelegramUser": str(ticket.telegram_user_id),
        }
        if ticket.store is not None:
            custom_fields["Store"] = ticket.store
        if ticket.plan is not None:
            custom_fields["Plan"] = ticket.plan
        labels = {
            STORE_NAME_FIELD: ticket.store_name,
            TYPE_LABEL_FIELD: ticket.request_type_label,
            CATEGORY_LABEL_FIELD: ticket.category_label,
            RESOLUTION_DUE_FIELD: (
                ticket.resolution_due.astimezone(self._timezone).strftime("%Y-%m-%d %H:%M:%S")
                if ticket.resolution_due is not None
                else None
            ),
        }
        custom_fields.update({name: value for name, value in labels.items() if value})
        if ticket.paid_agreement is not None:
            # Where the field is not set up, RT drops the value silently and files the ticket:
            # the agreement is in the body as well (services/filing.py).
            custom_fields[PAID_AGREEMENT_FIELD] = ticket.paid_agreement
        payload: dict[str, Any] = {
            "Queue": self._queue,
            "Requestor": requestor_address(ticket.requester, ticket.requester_name),
            "Subject": ticket.subject,
            "Content": ticket.body,
            "ContentType": "text/plain",
            "CustomFields": custom_fields,
        }
        if ticket.first_reaction_due is not None:
            payload["Due"] = _rt_time(ticket.first_reaction_due)
        if ticket.priority is not None:
            payload["Priority"] = RT_PRIORITY[ticket.priority]
        if ticket.attachments:
            payload["Attachments"] = attachments_payload(ticket.attachments)
        created = await self._request("POST", "ticket", json_body=payload)
        ticket_id = self._shape(partial(_text_field, created, "id"), "the created ticket")
        log.info("filed RT ticket %s for reference %s", ticket_id, ticket.reference)
        return await self.get_ticket(ticket_id)

    def ticket_url(self, ticket_id: str) -> str | None:
        return f"{self._web}/Ticket/Display.html?id={quote(ticket_id, safe='')}"

    async def find_by_reference(self, reference: str) -> QueueTicket | None:
        query = f"{self._in_queue()} AND CF.{{{REFERENCE_FIELD}}} = {ticket_sql_string(reference)}"
        # The oldest one wins should a duplicate ever exist.
        tickets = await self._search_tickets(query, order=(("id", "ASC"),), limit=1)
        return tickets[0] if tickets else None

    async def get_ticket(self, ticket_id: str) -> QueueTicket:
        _check_ticket_id(ticket_id)
        # A search rather than GET /ticket/N: it expands the requestor's address and keeps a
        # ticket of another queue out of reach (not found, as for a merchant it is).
        tickets = await self._search_tickets(f"id = {ticket_id} AND {self._in_queue()}", limit=1)
        if not tickets:
            raise TicketNotFound(ticket_id)
        return tickets[0]

    async def add_comment(
        self,
        ticket_id: str,
        body: str,
        attachments: Sequence[Attachment] = (),
        *,
        reference: str | None = None,
    ) -> None:
        # REST2 answers a reply to a missing ticket with 400 "Permission Denied": look first.
        await self.get_ticket(ticket_id)
        payload: dict[str, Any] = {"Content": body, "ContentType": "text/plain"}
        if reference is not None:
            # RT keeps no header or field of ours on a message posted through REST2, so the
            # reference rides in the message itself, as an HTML comment: RT's web view and mail
            # readers do not show it, and a retry finds it in the ticket's history.
            if not _REFERENCE.fullmatch(reference):
                raise ValueError(f"not a reference: {reference!r}")
            if await self._has_message(ticket_id, reference):
                log.info(
                    "message %s already on RT ticket %s; not posted again", reference, ticket_id
                )
                return
            payload = {"Content": _marked_html(body, reference), "ContentType": "text/html"}
        if attachments:
            payload["Attachments"] = attachments_payload(attachments)
        # Correspondence, not a comment: RT comments are the specialists' internal notes.
        await self._request(
            "POST", f"ticket/{ticket_id}/correspond", json_body=payload, ticket_id=ticket_id
        )

    async def add_internal_note(self, ticket_id: str, body: str, *, reference: str) -> None:
        await self.get_ticket(ticket_id)
        if not _REFERENCE.fullmatch(reference):
            raise ValueError(f"not a reference: {reference!r}")
        if await self._has_message(ticket_id, reference, transaction_type="Comment"):
            log.info("note %s already on RT ticket %s; not posted again", reference, ticket_id)
            return
        # A comment: RT keeps it for the staff and never mails it to the requester.
        await self._request(
            "POST",
            f"ticket/{ticket_id}/comment",
            json_body={"Content": _marked_html(body, reference), "ContentType": "text/html"},
            ticket_id=ticket_id,
        )
        # Read back: RT answers 200 even when it refused, and an account without
        # ShowTicketComments cannot see its own notes, so a retry would post them twice. Then
        # stop (the note is there once) and say what is missing.
        if not await self._has_message(ticket_id, reference, transaction_type="Comment"):
            raise QueueRejected(
                f"RT did not show frontdesk's note {reference} on ticket {ticket_id} after "
                "posting it: frontdesk's account needs CommentOnTicket and ShowTicketComments"
            )

    async def resolve_by_requester(self, ticket_id: str) -> None:
        await self._set_status(ticket_id, TicketStatus.RESOLVED)

    async def reopen(self, ticket_id: str) -> None:
        await self._set_status(ticket_id, TicketStatus.OPEN)

    # A specialist's actions from Telegram: implemented on branch wt/rtact (the lead replaces
    # these stubs at merge); here they only keep the adapter conforming to the port.
    async def reply_as_support(
        self,
        ticket_id: str,
        author: str,
        body: str,
        attachments: Sequence[Attachment] = (),
        *,
        reference: str,
    ) -> None:
        raise NotImplementedError("implemented on branch wt/rtact")

    async def note_as_support(
        self, ticket_id: str, author: str, body: str, *, reference: str
    ) -> None:
        raise NotImplementedError("implemented on branch wt/rtact")

    async def resolve_as_support(self, ticket_id: str, author: str) -> None:
        raise NotImplementedError("implemented on branch wt/rtact")

    async def assign(self, ticket_id: str, owner: str | None, *, author: str) -> None:
        raise NotImplementedError("implemented on branch wt/rtact")

    async def _set_status(self, ticket_id: str, status: TicketStatus) -> None:
        ticket = await self.get_ticket(ticket_id)
        if ticket.status is status:
            return
        # REST2 answers an update with 200 and a list of messages even when RT refused it
        # (no ModifyTicket right, a transition the lifecycle forbids): read the ticket back.
        answer = await self._request(
            "PUT",
            f"ticket/{ticket_id}",
            json_body={"Status": rt_status(status)},
            ticket_id=ticket_id,
        )
        if (await self.get_ticket(ticket_id)).status is not status:
            raise QueueRejected(
                f"RT did not set ticket {ticket_id} {rt_status(status)} "
                f"(frontdesk's account needs ModifyTicket): {str(answer)[:300]}"
            )

    async def conversation(self, ticket_id: str) -> list[ConversationEntry]:
        ticket = await self.get_ticket(ticket_id)
        rows = await self._collect(
            "GET",
            "transactions",
            params=[
                ("query", self._messages_of(ticket_id)),
                ("orderby", "id"),
                ("order", "ASC"),
                ("fields", "Type,Created,Creator"),
            ],
            complete_pages=False,
        )
        transactions = [self._shape(partial(_transaction_row, row), "history") for row in rows]
        parts = await self._described_parts([t.id for t in transactions])
        account = await self._account_name()
        entries = []
        for txn in transactions:
            own = txn.creator == account
            message_parts = parts.get(txn.id, [])
            body, body_format = self._body(message_parts)
            entries.append(
                ConversationEntry(
                    id=txn.id,
                    by_support=False if own else await self._speaks_for_support(txn.creator),
                    # frontdesk writes the merchant's messages on their behalf.
                    author=ticket.requester if own else txn.creator,
                    created_at=txn.created_at,
                    body=_MARKER.sub("", body).strip() if own else body,
                    body_format=body_format,
                    attachments=tuple(
                        AttachmentInfo(
                            id=self._shape(partial(_text_field, part, "id"), "a part"),
                            filename=safe_filename(part.get("Filename")),
                            content_type=part.get("ContentType") or "application/octet-stream",
                        )
                        for part in message_parts
                        if part.get("Filename")
                    ),
                )
            )
        return entries

    async def attachment(self, ticket_id: str, attachment_id: str) -> Attachment:
        await self.get_ticket(ticket_id)
        if not _TICKET_ID.fullmatch(attachment_id or ""):
            raise TicketNotFound(ticket_id)
        # Only a file of this ticket's correspondence: never another ticket's, nor one of the
        # specialists' internal notes.
        found = await self._collect(
            "GET",
            "transactions",
            params=[
                ("query", self._messages_of(ticket_id)),
                ("fields", "Type"),
            ],
            complete_pages=False,
        )
        messages = {str(row.get("id")) for row in found}
        try:
            data = await self._request("GET", f"attachment/{int(attachment_id)}")
        except QueueRejected:
            raise TicketNotFound(ticket_id) from None
        transaction = self._shape(partial(_text_field, data, "TransactionId"), "an attachment")
        if transaction not in messages or not data.get("Filename"):
            raise TicketNotFound(ticket_id)
        return await self._file({"id": attachment_id, **data})

    async def _described_parts(self, transaction_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """Like _message_parts, but the content of the text parts only: files are described,
        never downloaded (a card with ten photos would otherwise fetch them all)."""
        parts: dict[str, list[dict[str, Any]]] = {}
        texts: dict[str, str] = {}
        for start in range(0, len(transaction_ids), ATTACHMENT_SEARCH_CHUNK):
            chunk = [
                {"field": "TransactionId", "value": int(t)}
                for t in transaction_ids[start : start + ATTACHMENT_SEARCH_CHUNK]
            ]
            described = await self._collect(
                "POST",
                "attachments",
                params=[
                    ("fields", "TransactionId,Filename,ContentType"),
                    ("orderby", "id"),
                    ("order", "ASC"),
                ],
                json_body=chunk,
                complete_pages=True,
            )
            # Conditions on one field are OR-ed, on different fields AND-ed.
            with_text = await self._collect(
                "POST",
                "attachments",
                params=[("fields", "Filename,Content")],
                json_body=[
                    {"field": "ContentType", "value": "text/html"},
                    {"field": "ContentType", "value": "text/plain"},
                    *chunk,
                ],
                complete_pages=True,
            )
            texts.update(
                (str(row["id"]), str(row.get("Content") or ""))
                for row in with_text
                if not row.get("Filename")
            )
            for row in described:
                transaction = self._shape(partial(_text_field, row, "TransactionId"), "a part")
                part = dict(row)
                if not part.get("Filename"):
                    part["Content"] = texts.get(str(row["id"]), "")
                parts.setdefault(transaction, []).append(part)
        return parts

    @staticmethod
    def _messages_of(ticket_id: str) -> str:
        types = " OR ".join(f"Type = '{t}'" for t in _MESSAGE_TRANSACTION_TYPES)
        return f"ObjectType = 'RT::Ticket' AND ObjectId = {int(ticket_id)} AND ({types})"

    async def _has_message(
        self, ticket_id: str, reference: str, *, transaction_type: str = "Correspond"
    ) -> bool:
        """Whether a message of frontdesk's carrying ``reference`` is on the ticket (among its
        transactions of ``transaction_type``: Correspond, or Comment for an internal note)."""
        rows = await self._collect(
            "GET",
            "transactions",
            params=[
                (
                    "query",
                    f"ObjectType = 'RT::Ticket' AND ObjectId = {int(ticket_id)} "
                    f"AND Type = '{transaction_type}'",
                ),
                ("orderby", "id"),
                ("order", "DESC"),
                ("fields", "Type,Created,Creator"),
            ],
            complete_pages=False,
        )
        account = await self._account_name()
        own = [
            txn.id
            for txn in (self._shape(partial(_transaction_row, row), "history") for row in rows)
            if txn.creator == account
        ]
        marker = _marker(reference)
        for start in range(0, len(own), ATTACHMENT_SEARCH_CHUNK):
            chunk = own[start : start + ATTACHMENT_SEARCH_CHUNK]
            # The HTML parts alone (where the mark is), never the files' content. Conditions on
            # one field are OR-ed by REST2's JSON search, on different fields AND-ed.
            rows = await self._collect(
                "POST",
                "attachments",
                params=[("fields", "TransactionId,Filename,Content")],
                json_body=[
                    {"field": "ContentType", "value": "text/html"},
                    *({"field": "TransactionId", "value": int(t)} for t in chunk),
                ],
                complete_pages=True,
            )
            if any(
                not row.get("Filename") and marker in str(row.get("Content") or "") for row in rows
            ):
                return True
        return False

    async def changed_since(self, since: datetime) -> list[QueueTicket]:
        """Tickets of the queue updated at or after ``since`` (to the second), oldest first.

        Inclusive, so a worker that passes the last ``updated_at`` it saw never misses another
        ticket updated within that same second; it sees that one ticket again.
        """
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        await self._queue_id()  # else a wrong queue name reads as "nothing changed"
        since = since.astimezone(UTC).replace(microsecond=0)
        # TicketSQL reads the date in the account's time zone.
        local = since.astimezone(self._timezone).strftime("%Y-%m-%d %H:%M:%S")
        tickets = await self._search_tickets(
            f"{self._in_queue()} AND LastUpdated >= '{local}'",
            order=(("LastUpdated", "ASC"), ("id", "ASC")),
        )
        return [t for t in tickets if t.updated_at >= since]

    async def missing(self, ticket_ids: Sequence[str]) -> set[str]:
        """Numbers TicketSQL no longer finds in the queue: moved, merged (``id = OLD`` finds
        nothing) or deleted (searches skip deleted tickets)."""
        await self._queue_id()  # else every ticket of a wrong queue name would be "missing"
        wanted = sorted({t for t in ticket_ids if _TICKET_ID.fullmatch(str(t))}, key=int)
        present: set[str] = set()
        for start in range(0, len(wanted), MISSING_CHECK_CHUNK):
            chunk = wanted[start : start + MISSING_CHECK_CHUNK]
            ids = " OR ".join(f"id = {t}" for t in chunk)
            rows = await self._collect(
                "GET",
                "tickets",
                params=[("query", f"{self._in_queue()} AND ({ids})"), ("fields", "Status")],
                complete_pages=True,
            )
            present.update(self._shape(partial(_text_field, row, "id"), "a ticket") for row in rows)
        return set(ticket_ids) - present

    async def events(self, ticket_id: str) -> list[QueueEvent]:
        _check_ticket_id(ticket_id)
        queue_id = await self._queue_id()
        try:
            record = await self._request("GET", f"ticket/{ticket_id}", ticket_id=ticket_id)
        except _TicketHidden:
            # It exists, but frontdesk may not see it: moved to a queue out of its reach. Make
            # sure it is the ticket that is out of reach, not the queue (rights revoked).
            await self._queue_id(fresh=True)
            return [MovedEvent("moved", ticket_id, datetime.now(UTC), "", queue=None)]
        effective, queue_now, status_now, updated = self._shape(
            partial(_ticket_whereabouts, record), "a ticket"
        )
        rows = await self._collect(
            "GET",
            "transactions",
            params=[
                ("query", self._transactions_of(ticket_id)),
                ("orderby", "id"),
                ("order", "ASC"),
                ("fields", "Type,Field,OldValue,NewValue,Created,Creator"),
            ],
            # Changes of custom fields the account may not see are filtered after paging.
            complete_pages=False,
        )
        account = await self._account_name()
        events: list[QueueEvent] = []
        # What RT's scrips do in answer to frontdesk's own doing is frontdesk's too: RT opens a
        # new ticket (as RT_System) when frontdesk posts the merchant's reply, and that is no
        # specialist taking the ticket up.
        own_since: datetime | None = None
        for row in rows:
            txn = self._shape(partial(_transaction_row, row), "history")
            if txn.creator == account:
                own_since = txn.created_at
            elif (
                txn.creator == RT_SYSTEM
                and own_since is not None
                and (txn.created_at - own_since) <= SCRIP_WINDOW
            ):
                continue
            else:
                own_since = None
            event = await self._event(ticket_id, queue_id, account, row)
            if event is not None:
                events.append(event)
        # Where the ticket is now, should its history not have said so (no such transaction
        # visible to frontdesk): merged, moved, deleted, in that order of precedence.
        if effective != ticket_id:
            if not any(isinstance(e, MergedEvent) for e in events):
                events.append(MergedEvent(f"merged-{effective}", ticket_id, updated, "", effective))
        elif queue_now != queue_id:
            if not any(isinstance(e, MovedEvent) for e in events):
                name = await self._queue_name(queue_now)
                events.append(MovedEvent(f"moved-{queue_now}", ticket_id, updated, "", name))
        elif status_now == _DELETED and not any(isinstance(e, DeletedEvent) for e in events):
            events.append(DeletedEvent("deleted", ticket_id, updated, ""))
        return events

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    # --- events --------------------------------------------------------------------------------

    @staticmethod
    def _transactions_of(ticket_id: str) -> str:
        excluded = " AND ".join(f"Type != '{t}'" for t in _INTERNAL_TRANSACTION_TYPES)
        return f"ObjectType = 'RT::Ticket' AND ObjectId = {ticket_id} AND {excluded}"

    async def _event(
        self, ticket_id: str, queue_id: str, account: str, row: dict[str, Any]
    ) -> QueueEvent | None:
        """The event of one transaction, or None when it means nothing to frontdesk."""
        txn = self._shape(partial(_transaction_row, row), "history")
        kind, field, old, new = txn.type, txn.field, txn.old, txn.new
        if txn.creator == account:
            return None  # frontdesk's own doing: the merchant's messages, the ticket's creation
        base = (txn.id, ticket_id, txn.created_at, txn.creator)
        if kind == "Correspond":
            return ReplyEvent(
                *base,
                by_support=await self._speaks_for_support(txn.creator),
                content=partial(self._reply_content, txn.id),
            )
        if field == "Status" and kind in ("Status", "Set"):
            if (new or "").lower() == _DELETED:
                return DeletedEvent(*base)
            return StatusEvent(
                *base, old=frontdesk_status(old), new=frontdesk_status(new), label=new or ""
            )
        # RT records an owner change twice, as the Owner column ("Set") and as the role group
        # ("SetWatcher"): the first one only.
        if kind == "Set" and field == "Owner":
            return OwnerEvent(
                *base, old=await self._owner_name(old), new=await self._owner_name(new)
            )
        if kind == "Set" and field == "Queue" and new and new != queue_id:
            return MovedEvent(*base, queue=await self._queue_name(new))
        if kind == "AddLink" and field == "MergedInto":
            # The survivor records the link to itself too: that is no merge of it.
            target = _MERGE_TARGET.search(new or "")
            if target and target.group(1) != ticket_id:
                return MergedEvent(*base, into=target.group(1))
        return None

    async def _reply_content(self, transaction_id: str) -> ReplyContent:
        parts = (await self._message_parts([transaction_id])).get(transaction_id, [])
        body, body_format = self._body(parts)
        files = tuple([await self._file(part) for part in parts if part.get("Filename")])
        return ReplyContent(body, body_format, files)

    async def _speaks_for_support(self, user: str) -> bool:
        """A privileged RT user, or a member of the staff group. Remembered for a while."""
        known, value = self._support.lookup(user)
        if known:
            return bool(value)
        try:
            data = await self._request("GET", f"user/{quote(user, safe='@')}")
            privileged = self._shape(partial(_privileged, data), "a user")
        except QueueRejected as error:
            # A user frontdesk may not see (or one gone): not someone it can vouch for.
            log.warning("RT user %r could not be read (%s): not taken as support", user, error)
            privileged = False
        support = privileged or user in await self._staff_members()
        self._support.remember(user, support)
        return support

    async def _staff_members(self) -> frozenset[str]:
        if self._staff_group is None:
            return frozenset()
        known, value = self._staff.lookup(self._staff_group)
        if known:
            return frozenset(value)
        found = await self._collect(
            "GET",
            "groups",
            params=[
                (
                    "query",
                    json.dumps(
                        [
                            {"field": "Name", "value": self._staff_group},
                            {"field": "Domain", "value": "UserDefined"},
                        ]
                    ),
                )
            ],
            complete_pages=False,
            limit=1,
        )
        if not found:
            raise QueueRejected(
                f"RT has no group {self._staff_group!r} that frontdesk may see "
                "(RT_STAFF_GROUP; frontdesk's account needs SeeGroup on it)"
            )
        members: set[str] = set()
        seen: set[str] = set()
        groups = [self._shape(partial(_text_field, found[0], "id"), "a group")]
        for _ in range(STAFF_GROUP_DEPTH):
            nested: list[str] = []
            for group in groups:
                if group in seen:
                    continue
                seen.add(group)
                data = await self._request("GET", f"group/{int(group)}")
                for kind, member in self._shape(partial(_group_members, data), "a group"):
                    (members.add if kind == "user" else nested.append)(member)
            groups = nested
        self._staff.remember(self._staff_group, frozenset(members))
        return frozenset(members)

    async def _queue_id(self, *, fresh: bool = False) -> str:
        """RT's id of frontdesk's queue; QueueRejected when there is no such queue (or
        frontdesk may no longer see it)."""
        if self._queue_id_cache is None or fresh:
            try:
                data = await self._request("GET", f"queue/{quote(self._queue, safe='')}")
            except QueueRejected as error:
                raise QueueRejected(
                    f"RT queue {self._queue!r} does not exist or frontdesk may not see it: {error}"
                ) from error
            self._queue_id_cache = self._shape(partial(_text_field, data, "id"), "the queue")
        return self._queue_id_cache

    async def _queue_name(self, queue_id: str) -> str | None:
        if queue_id not in self._queue_names:
            try:
                data = await self._request("GET", f"queue/{int(queue_id)}")
                self._queue_names[queue_id] = self._shape(
                    partial(_text_field, data, "Name"), "a queue"
                )
            except (QueueRejected, ValueError):
                self._queue_names[queue_id] = None  # a queue frontdesk may not see
        return self._queue_names[queue_id]

    async def _owner_name(self, user_id: str | None) -> str | None:
        name = await self._user_name(user_id)
        return None if not name or name == NOBODY else name

    # --- REST2 ---------------------------------------------------------------------------------

    def _in_queue(self) -> str:
        return f"Queue = {ticket_sql_string(self._queue)}"

    async def _search_tickets(
        self,
        query: str,
        *,
        order: Sequence[tuple[str, str]] = (),
        limit: int | None = None,
    ) -> list[QueueTicket]:
        params: list[tuple[str, str]] = [("query", query), *_TICKET_FIELDS]
        for field, direction in order:
            params += [("orderby", field), ("order", direction)]
        # Ticket searches are checked for rights in SQL: their pages are exact.
        rows = await self._collect(
            "GET", "tickets", params=params, complete_pages=True, limit=limit
        )
        return [self._shape(partial(_ticket, row), "a ticket") for row in rows]

    async def _message_parts(self, transaction_ids: list[str]) -> dict[str, list[dict[str, Any]]]:
        """The MIME parts of those transactions, in order, grouped by transaction id."""
        parts: dict[str, list[dict[str, Any]]] = {}
        for start in range(0, len(transaction_ids), ATTACHMENT_SEARCH_CHUNK):
            chunk = transaction_ids[start : start + ATTACHMENT_SEARCH_CHUNK]
            # Conditions on one field are OR-ed by REST2's JSON search.
            rows = await self._collect(
                "POST",
                "attachments",
                params=[
                    ("fields", "TransactionId,Filename,ContentType,Content"),
                    ("orderby", "id"),
                    ("order", "ASC"),
                ],
                json_body=[{"field": "TransactionId", "value": int(t)} for t in chunk],
                complete_pages=True,
            )
            for row in rows:
                transaction = self._shape(partial(_text_field, row, "TransactionId"), "a part")
                parts.setdefault(transaction, []).append(row)
        return parts

    @staticmethod
    def _body(parts: list[dict[str, Any]]) -> tuple[str, BodyFormat]:
        """The message's text as written: its HTML part if it has one (RT's editor writes
        HTML, and a mail's HTML alternative keeps the links), else its plain text."""
        inline = [p for p in parts if not p.get("Filename")]
        for wanted, body_format in (
            ("text/html", BodyFormat.HTML),
            ("text/plain", BodyFormat.TEXT),
        ):
            for part in inline:
                if (part.get("ContentType") or "").lower() == wanted:
                    return str(part.get("Content") or ""), body_format
        return "", BodyFormat.TEXT

    async def _file(self, part: dict[str, Any]) -> Attachment:
        # Only the single-attachment endpoint hands over the exact bytes (base64).
        data = await self._request("GET", f"attachment/{int(part['id'])}")
        try:
            content = base64.b64decode(data.get("Content") or "", validate=False)
        except (binascii.Error, ValueError, AttributeError) as error:
            raise QueueUnavailable(f"RT sent attachment {part['id']} undecodable") from error
        return Attachment(
            filename=safe_filename(part.get("Filename")),
            content_type=part.get("ContentType") or "application/octet-stream",
            content=content,
        )

    async def _account_name(self) -> str:
        if self._account is None:
            data = await self._request("GET", f"user/{self._token_owner}")
            self._account = self._shape(partial(_text_field, data, "Name"), "the account")
        return self._account

    async def _user_name(self, user_id: str | None) -> str | None:
        if user_id is None or not user_id.isdigit():
            return user_id
        if user_id not in self._user_names:
            try:
                data = await self._request("GET", f"user/{user_id}")
                self._user_names[user_id] = self._shape(
                    partial(_text_field, data, "Name"), "a user"
                )
            except QueueRejected:
                # The account may not see that user; the id still tells owners apart.
                self._user_names[user_id] = user_id
        return self._user_names[user_id]

    async def _collect(
        self,
        method: str,
        path: str,
        *,
        params: list[tuple[str, str]],
        complete_pages: bool,
        json_body: Any = None,
        limit: int | None = None,
    ) -> list[dict[str, Any]]:
        return [
            row
            async for row in self._pages(
                method,
                path,
                params=params,
                json_body=json_body,
                complete_pages=complete_pages,
                limit=limit,
            )
        ]

    async def _pages(
        self,
        method: str,
        path: str,
        *,
        params: list[tuple[str, str]],
        json_body: Any,
        complete_pages: bool,
        limit: int | None,
    ) -> AsyncIterator[dict[str, Any]]:
        per_page = min(limit, PER_PAGE) if limit else PER_PAGE
        seen = 0
        for page in range(1, MAX_PAGES + 1):
            data = await self._request(
                method,
                path,
                params=[*params, ("per_page", str(per_page)), ("page", str(page))],
                json_body=json_body,
            )
            items, total = self._shape(partial(_page, data), path)
            for item in items:
                if not isinstance(item, dict):
                    raise QueueUnavailable(f"RT answered {path} with a malformed item")
                yield item
                seen += 1
                if limit is not None and seen >= limit:
                    return
            if total is not None:
                # RT counted the rows the account may see: the pages are exact.
                if page * per_page >= int(total):
                    return
            elif not items or (complete_pages and len(items) < per_page):
                return
        raise QueueUnavailable(f"RT kept paging {path} past {MAX_PAGES} pages")

    async def _request(
        self,
        method: str,
        path: str,
        *,
        params: list[tuple[str, str]] | None = None,
        json_body: Any = None,
        ticket_id: str | None = None,
    ) -> Any:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        url = self._api + path
        try:
            async with self._session.request(
                method,
                url,
                params=params,
                json=json_body,
                headers=self._headers,
                timeout=self._timeout,
            ) as response:
                status = response.status
                body = await response.read()
        except TimeoutError as error:
            raise QueueUnavailable(
                f"RT did not answer {method} {path} within {self._timeout_seconds:g} s"
            ) from error
        except aiohttp.ClientError as error:
            raise QueueUnavailable(f"RT unreachable ({method} {path}): {error}") from error

        if 200 <= status < 300:
            if status == 204 or not body.strip():
                return {}  # e.g. DELETE /ticket/N: 204, no body
            try:
                return json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                raise QueueUnavailable(
                    f"RT answered {method} {path} with malformed JSON"
                ) from error
        message = self._error_message(body)
        where = f"RT answered {method} {path} with {status}"
        if ticket_id is not None and status == 403:
            raise _TicketHidden(ticket_id)
        if ticket_id is not None and status == 404:
            raise TicketNotFound(ticket_id)
        # Transient: RT overloaded, restarting or asking to slow down; anything not a 4xx.
        if status in (408, 429) or not 400 <= status < 500:
            raise QueueUnavailable(f"{where}: {message}")
        # Permanent until someone fixes it: credentials (401), rights (403), a queue or an
        # API that does not exist (404: a wrong RT_URL or RT_QUEUE, REST2 off), a refused field.
        if status == 401:
            raise QueueRejected(f"{where}: RT refused frontdesk's credentials")
        raise QueueRejected(f"{where}: {message}")

    @staticmethod
    def _error_message(body: bytes) -> str:
        try:
            message = json.loads(body.decode("utf-8")).get("message")
        except (UnicodeDecodeError, json.JSONDecodeError, AttributeError):
            message = None
        text = str(message) if message else body.decode("utf-8", "replace")
        return text.strip()[:300] or "(no message)"

    @staticmethod
    def _shape(read: Callable[[], T], what: str) -> T:
        """Run ``read`` over an answer; an answer of an unexpected shape is garbage."""
        try:
            return read()
        except (KeyError, TypeError, ValueError, AttributeError, IndexError) as error:
            raise QueueUnavailable(f"RT answered with an unexpected shape of {what}") from error


# --- reading REST2's answers (each raises KeyError, TypeError... on an unexpected shape) -------


def _page(data: Any) -> tuple[list[Any], Any]:
    return list(data["items"]), data.get("total")


def _text_field(data: Any, name: str) -> str:
    value = data[name]
    if isinstance(value, dict):  # a reference to another record: {"id": ..., "type": ...}
        value = value["id"]
    if value is None or isinstance(value, (list, dict)):
        raise TypeError(f"{name} is not a scalar")
    return str(value)


def _privileged(data: Any) -> bool:
    return str(data.get("Privileged") or "0") == "1"


def _group_members(data: Any) -> list[tuple[str, str]]:
    return [(str(m["type"]), str(m["id"])) for m in data.get("Members") or []]


def _ticket_whereabouts(data: Any) -> tuple[str, str, str, datetime]:
    """(effective number, queue id, status, last updated) of a GET /ticket/N answer."""
    return (
        _text_field(data, "EffectiveId"),
        _text_field(data, "Queue"),
        str(data["Status"]),
        _parse_time(data["LastUpdated"]),
    )


def _ticket(row: dict[str, Any]) -> QueueTicket:
    requestors = row.get("Requestor") or []
    requester = ""
    if requestors:
        first = requestors[0]
        requester = first.get("EmailAddress") or first.get("Name") or first["id"]
    reference = None
    for field in row.get("CustomFields") or []:
        if field.get("name") == REFERENCE_FIELD and field.get("values"):
            reference = field["values"][0]
    owner = row.get("Owner") or {}
    owner_name = owner.get("id") if isinstance(owner, dict) else None
    return QueueTicket(
        id=str(row["id"]),
        reference=reference,
        requester=requester,
        subject=row["Subject"],
        status=frontdesk_status(row["Status"]),
        created_at=_parse_time(row["Created"]),
        updated_at=_parse_time(row["LastUpdated"]),
        owner=owner_name if owner_name and owner_name != NOBODY else None,
        due=_optional_time(row.get("Due")),
    )


@dataclass(frozen=True, slots=True)
class _Transaction:
    """One row of a ticket's history, in RT's own terms (never leaves this module)."""

    id: str
    type: str
    field: str | None
    old: str | None
    new: str | None
    created_at: datetime
    creator: str


def _transaction_row(row: dict[str, Any]) -> _Transaction:
    return _Transaction(
        id=str(row["id"]),
        type=str(row["Type"]),
        field=row.get("Field") or None,
        old=row.get("OldValue") or None,
        new=row.get("NewValue") or None,
        created_at=_parse_time(row["Created"]),
        creator=str(row["Creator"]["id"]),
    )
