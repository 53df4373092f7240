"""Request Tracker 5 as the official queue (QUEUE=rt), spoken to through its REST2 API.

A ticket lives in one RT queue (``Support`` by default) and carries frontdesk's data in ticket
custom fields (FrontdeskRef, RequestType, Category, Store, Plan, TelegramUser); they must apply
to that queue (scripts/rt-initialdata.pl sets them up). The merchant is the ticket's Requestor.

frontdesk talks to RT as one account of its own. RT records who wrote each message, so a message
written by that account is the merchant's (frontdesk posts it on their behalf) and any other
author is a specialist. The account needs, on the queue: SeeQueue, CreateTicket, ShowTicket,
ReplyToTicket, SeeCustomField, SetInitialCustomField. Without ShowTicketComments it never even
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
- TicketSQL reads dates in the account's time zone (its Timezone preference, else RT's), not
  UTC: ``timezone`` must name it.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
import re
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from html.parser import HTMLParser
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import aiohttp

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

__all__ = ["QueueTransaction", "RequestTrackerQueue", "html_to_text", "ticket_sql_string"]

log = logging.getLogger(__name__)

T = TypeVar("T")

REFERENCE_FIELD = "FrontdeskRef"
NOBODY = "Nobody"
PER_PAGE = 100  # REST2's maximum
MAX_PAGES = 1000  # a runaway guard: 100,000 rows
ATTACHMENT_SEARCH_CHUNK = 50  # transaction ids per attachment search

# Internal notes of the specialists and copies of outgoing mail: never the merchant's business.
_INTERNAL_TRANSACTION_TYPES = ("Comment", "CommentEmailRecord", "EmailRecord")
_MESSAGE_TRANSACTION_TYPES = ("Create", "Correspond")
_OWNER_FIELD = "Owner"

_TICKET_FIELDS = (
    ("fields", "Subject,Status,Owner,Created,LastUpdated,Requestor,Queue,CustomFields"),
    ("fields[Requestor]", "EmailAddress,Name"),
    ("fields[Queue]", "Name"),
)
_TICKET_ID = re.compile(r"[0-9]{1,18}")
# RT::Authen::Token's auth string: "<version>-<user id>-<secret>".
_TOKEN_OWNER = re.compile(r"[0-9]+-([0-9]+)-\S+")


def ticket_sql_string(value: str) -> str:
    """A TicketSQL string literal: RT's parser unescapes backslash-escaped characters."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def _parse_time(value: str) -> datetime:
    # REST2 formats every date as ISO 8601 in UTC, e.g. "2026-11-25T06:13:24Z".
    return datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(UTC)


def _check_ticket_id(ticket_id: str) -> str:
    # Also keeps anything but a number out of the URL path.
    if not isinstance(ticket_id, str) or not _TICKET_ID.fullmatch(ticket_id):
        raise TicketNotFound(str(ticket_id))
    return ticket_id


def _attachments_payload(attachments: Sequence[Attachment]) -> list[dict[str, str]]:
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


class _HtmlText(HTMLParser):
    """Plain text of an HTML message body (specialists reply from RT's rich-text editor)."""

    _BREAKS = frozenset({"br", "p", "div", "li", "tr", "h1", "h2", "h3", "h4", "h5", "h6"})
    _SKIPPED = frozenset({"script", "style", "head", "title"})

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skipping = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in self._SKIPPED:
            self._skipping += 1
        elif tag == "br":
            self.parts.append("\n")

    def handle_endtag(self, tag: str) -> None:
        if tag in self._SKIPPED:
            self._skipping = max(0, self._skipping - 1)
        elif tag in self._BREAKS:
            self.parts.append("\n")

    def handle_data(self, data: str) -> None:
        if not self._skipping:
            self.parts.append(data)


def html_to_text(html: str) -> str:
    parser = _HtmlText()
    parser.feed(html)
    parser.close()
    text = "".join(parser.parts)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


class RequestTrackerQueue:
    """The TicketQueue port over RT's REST2 (``{base_url}/REST/2.0/``).

    Authenticate with an RT auth token (``Authorization: token …``) or with a user and password
    (HTTP basic). ``account`` is the RT user name of that login; it is derived from the basic
    user or, for a token, looked up once from the token's owner. Every HTTP call is bounded by
    ``timeout`` seconds. A given ``session`` stays the caller's to close.
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
    ) -> None:
        if (token is None) == (user is None):
            raise ValueError("give either an RT auth token or a user and password")
        if user is not None and password is None:
            raise ValueError("a password is needed with the user")
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._api = base_url.rstrip("/") + "/REST/2.0/"
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
        self._user_names: dict[str, str] = {}

    # --- the port --------------------------------------------------------------------------

    async def create_ticket(self, ticket: NewTicket) -> QueueTicket:
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
        payload: dict[str, Any] = {
            "Queue": self._queue,
            "Requestor": ticket.requester,
            "Subject": ticket.subject,
            "Content": ticket.body,
            "ContentType": "text/plain",
            "CustomFields": custom_fields,
        }
        if ticket.attachments:
            payload["Attachments"] = _attachments_payload(ticket.attachments)
        created = await self._request("POST", "ticket", json_body=payload)
        ticket_id = self._shape(lambda: str(created["id"]), "the created ticket")
        log.info("filed RT ticket %s for reference %s", ticket_id, ticket.reference)
        return await self.get_ticket(ticket_id)

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

    async def list_tickets(self, requester: str) -> list[QueueTicket]:
        query = f"{self._in_queue()} AND Requestor.EmailAddress = {ticket_sql_string(requester)}"
        return await self._search_tickets(query, order=(("Created", "DESC"), ("id", "DESC")))

    async def add_comment(
        self, ticket_id: str, body: str, attachments: Sequence[Attachment] = ()
    ) -> None:
        # REST2 answers a reply to a missing ticket with 400 "Permission Denied": look first.
        await self.get_ticket(ticket_id)
        payload: dict[str, Any] = {"Content": body, "ContentType": "text/plain"}
        if attachments:
            payload["Attachments"] = _attachments_payload(attachments)
        # Correspondence, not a comment: RT comments are the specialists' internal notes.
        await self._request(
            "POST", f"ticket/{ticket_id}/correspond", json_body=payload, ticket_id=ticket_id
        )

    async def list_comments(self, ticket_id: str) -> list[QueueComment]:
        ticket = await self.get_ticket(ticket_id)
        types = " OR ".join(f"Type = '{t}'" for t in _MESSAGE_TRANSACTION_TYPES)
        transactions = await self._collect(
            "GET",
            "transactions",
            params=[
                ("query", f"ObjectType = 'RT::Ticket' AND ObjectId = {ticket_id} AND ({types})"),
                ("orderby", "id"),
                ("order", "ASC"),
                ("fields", "Type,Created,Creator"),
            ],
            # The account sees every message of a ticket it sees: no holes in these pages.
            complete_pages=True,
        )
        messages = [
            self._shape(
                lambda t=row: (str(t["id"]), t["Creator"]["id"], _parse_time(t["Created"])),
                "a transaction",
            )
            for row in transactions
        ]
        parts = await self._message_parts([transaction_id for transaction_id, _, _ in messages])
        account = await self._account_name()
        comments = []
        for transaction_id, creator, created_at in messages:
            own_parts = parts.get(transaction_id, [])
            comments.append(
                QueueComment(
                    ticket_id=ticket_id,
                    author=ticket.requester if creator == account else creator,
                    body=self._body(own_parts),
                    created_at=created_at,
                    attachments=tuple(
                        [await self._file(part) for part in own_parts if part.get("Filename")]
                    ),
                )
            )
        return comments

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
        self._session = None

    # --- beyond the port: for the sync worker -------------------------------------------------

    async def history(self, ticket_id: str) -> list[QueueTransaction]:
        """The ticket's transactions, oldest first, without the internal ones."""
        await self.get_ticket(ticket_id)
        excluded = " AND ".join(f"Type != '{t}'" for t in _INTERNAL_TRANSACTION_TYPES)
        rows = await self._collect(
            "GET",
            "transactions",
            params=[
                ("query", f"ObjectType = 'RT::Ticket' AND ObjectId = {ticket_id} AND {excluded}"),
                ("orderby", "id"),
                ("order", "ASC"),
                ("fields", "Type,Field,OldValue,NewValue,Created,Creator"),
            ],
            # Changes of custom fields the account may not see are filtered after paging.
            complete_pages=False,
        )
        account = await self._account_name()
        history = []
        for row in rows:
            transaction = self._shape(lambda r=row: self._transaction(ticket_id, r), "history")
            transaction = replace(transaction, by_frontdesk=transaction.creator == account)
            if transaction.field == _OWNER_FIELD:
                transaction = replace(
                    transaction,
                    old=await self._user_name(transaction.old),
                    new=await self._user_name(transaction.new),
                )
            history.append(transaction)
        return history

    async def transaction_message(self, ticket_id: str, transaction_id: str) -> QueueComment:
        """The message of one Create or Correspond transaction of the ticket."""
        ticket = await self.get_ticket(ticket_id)
        if not _TICKET_ID.fullmatch(str(transaction_id)):
            raise TicketNotFound(ticket_id)
        types = " OR ".join(f"Type = '{t}'" for t in _MESSAGE_TRANSACTION_TYPES)
        rows = await self._collect(
            "GET",
            "transactions",
            params=[
                (
                    "query",
                    f"ObjectType = 'RT::Ticket' AND ObjectId = {ticket_id} "
                    f"AND id = {transaction_id} AND ({types})",
                ),
                ("fields", "Type,Created,Creator"),
            ],
            complete_pages=True,
            limit=1,
        )
        if not rows:
            raise TicketNotFound(ticket_id)
        creator, created_at = self._shape(
            lambda t=rows[0]: (t["Creator"]["id"], _parse_time(t["Created"])), "a transaction"
        )
        parts = (await self._message_parts([transaction_id])).get(transaction_id, [])
        return QueueComment(
            ticket_id=ticket_id,
            author=ticket.requester if creator == await self._account_name() else creator,
            body=self._body(parts),
            created_at=created_at,
            attachments=tuple([await self._file(part) for part in parts if part.get("Filename")]),
        )

    async def changed_since(self, since: datetime) -> list[QueueTicket]:
        """Tickets of the queue updated at or after ``since`` (to the second), oldest first.

        Inclusive, so a worker that passes the last ``updated_at`` it saw never misses another
        ticket updated within that same second; it sees that one ticket again.
        """
        if since.tzinfo is None:
            raise ValueError("since must be timezone-aware")
        since = since.astimezone(UTC).replace(microsecond=0)
        # TicketSQL reads the date in the account's time zone.
        local = since.astimezone(self._timezone).strftime("%Y-%m-%d %H:%M:%S")
        tickets = await self._search_tickets(
            f"{self._in_queue()} AND LastUpdated >= '{local}'",
            order=(("LastUpdated", "ASC"), ("id", "ASC")),
        )
        return [t for t in tickets if t.updated_at >= since]

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
        return [self._shape(lambda r=row: self._ticket(r), "a ticket") for row in rows]

    @staticmethod
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
            status=row["Status"],
            created_at=_parse_time(row["Created"]),
            updated_at=_parse_time(row["LastUpdated"]),
            owner=owner_name if owner_name and owner_name != NOBODY else None,
        )

    @staticmethod
    def _transaction(ticket_id: str, row: dict[str, Any]) -> QueueTransaction:
        return QueueTransaction(
            id=str(row["id"]),
            ticket_id=ticket_id,
            type=row["Type"],
            field=row.get("Field") or None,
            old=row.get("OldValue") or None,
            new=row.get("NewValue") or None,
            created_at=_parse_time(row["Created"]),
            creator=row["Creator"]["id"],
        )

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
                transaction = self._shape(lambda r=row: str(r["TransactionId"]), "a part")
                parts.setdefault(transaction, []).append(row)
        return parts

    @staticmethod
    def _body(parts: list[dict[str, Any]]) -> str:
        inline = [p for p in parts if not p.get("Filename")]
        for part in inline:
            if (part.get("ContentType") or "").lower() == "text/plain":
                return part.get("Content") or ""
        for part in inline:
            if (part.get("ContentType") or "").lower() == "text/html":
                return html_to_text(part.get("Content") or "")
        return ""

    async def _file(self, part: dict[str, Any]) -> Attachment:
        # Only the single-attachment endpoint hands over the exact bytes (base64).
        data = await self._request("GET", f"attachment/{int(part['id'])}")

        def decode() -> bytes:
            return base64.b64decode(data.get("Content") or "", validate=False)

        try:
            content = decode()
        except (binascii.Error, ValueError, AttributeError) as error:
            raise QueueUnavailable(f"RT sent attachment {part['id']} undecodable") from error
        return Attachment(
            filename=part["Filename"],
            content_type=part.get("ContentType") or "application/octet-stream",
            content=content,
        )

    async def _account_name(self) -> str:
        if self._account is None:
            data = await self._request("GET", f"user/{self._token_owner}")
            self._account = self._shape(lambda: str(data["Name"]), "the account")
        return self._account

    async def _user_name(self, user_id: str | None) -> str | None:
        if user_id is None or not user_id.isdigit():
            return user_id
        if user_id not in self._user_names:
            try:
                data = await self._request("GET", f"user/{user_id}")
                self._user_names[user_id] = self._shape(
                    lambda: str(data.get("Name") or user_id), "a user"
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
            items, total = self._shape(lambda d=data: (list(d["items"]), d.get("total")), path)
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
            try:
                return json.loads(body.decode("utf-8"))
            except (UnicodeDecodeError, json.JSONDecodeError) as error:
                raise QueueUnavailable(
                    f"RT answered {method} {path} with malformed JSON"
                ) from error
        message = self._error_message(body)
        where = f"RT answered {method} {path} with {status}"
        if ticket_id is not None and status in (403, 404):
            raise TicketNotFound(ticket_id)
        if status in (408, 429) or status >= 500:
            raise QueueUnavailable(f"{where}: {message}")
        if status == 401:
            raise QueueRejected(f"{where}: RT refused frontdesk's credentials")
        if status == 404:
            # Not a REST2 endpoint: a wrong base URL, or REST2 switched off.
            raise QueueUnavailable(f"{where}: {message}")
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
