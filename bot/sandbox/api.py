"""The sandbox page's JSON API (contract: docs of issue 10; every route on the sandbox's own
loopback server). The chats are the emulator's: a person sends and presses through it exactly as
a Telegram client would. The queue side acts through the builtin queue's staff console
(services/queue/console.py) as a specialist in the queue's web interface would; the bot learns of
it by its sync, as in production."""

from __future__ import annotations

import json
import mimetypes
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from html import escape
from typing import Any
from urllib.parse import quote

from aiogram.utils.i18n import I18n
from aiohttp import web
from sqlalchemy import select

from bot.sandbox import demo
from bot.sandbox.render import to_html
from bot.sandbox.telegram_emulator import ApiError, ChatMessage, TelegramEmulator, parse_html
from handlers.rich_text import html_to_telegram, text_of
from services.db.models import BuiltinQueueTicket, TicketStatus
from services.queue.base import (
    Attachment,
    BodyFormat,
    QueueRejected,
    QueueUnavailable,
    TicketNotFound,
)
from services.queue.builtin import BuiltinQueue
from services.queue.console import BuiltinConsole

DEFAULT_SPECIALIST = "ivanov"
ANSWER_WAIT_SECONDS = 5.0
INLINE_IMAGES = frozenset({"image/jpeg", "image/png", "image/gif", "image/webp"})
STATUSES = {s.value for s in (TicketStatus.OPEN, TicketStatus.WAITING, TicketStatus.RESOLVED,
                               TicketStatus.REJECTED)}  # fmt: skip


class BadRequest(Exception):
    def __init__(self, status: int, error: str) -> None:
        super().__init__(error)
        self.status = status
        self.error = error


def _iso(value: datetime | None) -> str | None:
    if value is None:
        return None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.isoformat()


def _file_url(file_id: str) -> str:
    return "/api/files/" + quote(file_id, safe="")


def message_json(record: ChatMessage, *, edited: bool = False) -> dict[str, Any]:
    """A chat message as the page shows it (see the module's contract)."""
    if record.text is not None:
        html = to_html(record.text, record.entities)
    else:
        html = to_html(record.caption, record.caption_entities)
    keyboard = record.inline_keyboard
    buttons = [
        [{"text": b.text, "data": b.callback_data, "url": b.url} for b in row]
        for row in (keyboard.inline_keyboard if keyboard else [])
    ]
    file = None
    if record.file is not None:
        stored = record.file
        name = stored.filename or ("photo.jpg" if stored.kind == "photo" else "file")
        file = {"name": name, "url": _file_url(stored.file_id), "kind": stored.kind}
    return {
        "id": record.message_id,
        "from": "bot" if record.from_bot else "user",
        "html": html,
        "buttons": buttons,
        "file": file,
        "edited": edited or record.edit_date is not None,
        "date": _iso(datetime.fromtimestamp(record.date, UTC)),
        # Added to the contract: a deletion arrives as an event with deleted true.
        "deleted": record.deleted,
        "reply_to": record.reply_to.message_id if record.reply_to is not None else None,
    }


def queue_html(body: str, body_format: BodyFormat) -> str:
    """A message of the queue as safe HTML: the queue's rich text through the same conversion
    the bot uses for Telegram, then rendered like a chat message."""
    if body_format is not BodyFormat.HTML:
        return escape(body, quote=False)
    try:
        text, entities = parse_html(html_to_telegram(body))
    except ApiError:
        return escape(text_of(body), quote=False)
    return to_html(text, entities)


def _ticket_json(row: BuiltinQueueTicket) -> dict[str, Any]:
    return {
        "number": str(row.id),
        "subject": row.subject,
        "requester": row.requester,
        "status": row.status,
        "owner": row.owner,
        "due": _iso(row.due_at),
        "store": row.store,
        # Added to the contract, for the panel's details.
        "requester_name": row.requester_name,
        "store_name": row.store_name,
        "category": row.category_label or row.category,
        "request_type": row.request_type_label or row.request_type,
        "priority": row.priority,
        "created": _iso(row.created_at),
        "updated": _iso(row.updated_at),
    }


def _json_response(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=_dumps)


def _dumps(data: Any) -> str:
    return json.dumps(data, ensure_ascii=False)


def _error(status: int, error: str) -> web.Response:
    return _json_response({"error": error}, status=status)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _guarded(handler: Handler) -> Handler:
    async def guarded(request: web.Request) -> web.StreamResponse:
        try:
            return await handler(request)
        except BadRequest as error:
            return _error(error.status, error.error)
        except TicketNotFound as error:
            return _error(404, f"no ticket {error}")
        except QueueRejected as error:
            return _error(400, str(error))
        except QueueUnavailable as error:
            return _error(503, str(error))

    return guarded


class SandboxApi:
    def __init__(
        self,
        emulator: TelegramEmulator,
        *,
        queue: BuiltinQueue,
        queue_changed: Callable[[], None],
        i18n: I18n,
    ) -> None:
        self.emulator = emulator
        self.i18n = i18n
        self.queue = queue
        self._sessionmaker = queue._sessionmaker
        self._queue_changed = queue_changed

    def add_routes(self, app: web.Application) -> None:
        routes = [
            ("GET", "/api/people", self.people),
            ("GET", "/api/chats/{person}", self.chat),
            ("POST", "/api/chats/{person}/messages", self.send),
            ("POST", "/api/chats/{person}/press", self.press),
            ("GET", "/api/files/{file_id}", self.file),
            ("GET", "/api/queue", self.tickets),
            ("GET", "/api/queue/{number}", self.ticket),
            ("GET", "/api/queue/{number}/files/{attachment}", self.attachment),
            ("POST", "/api/queue/{number}/assign", self.assign),
            ("POST", "/api/queue/{number}/reply", self.reply),
            ("POST", "/api/queue/{number}/status", self.status),
        ]
        for method, path, handler in routes:
            app.router.add_route(method, path, _guarded(handler))

    # --- people and their chats -----------------------------------------------------------

    async def people(self, request: web.Request) -> web.Response:
        lang = "en" if request.query.get("lang") == "en" else "ru"

        def gettext(message: str) -> str:
            return self.i18n.gettext(message, locale=lang)

        return _json_response(
            [
                {
                    "id": p.id,
                    "user_id": p.user.id,
                    "name": p.user.first_name,
                    "description": p.describe(gettext),
                    "queue_user": p.queue_user,  # added: staff's queue user name
                }
                for p in demo.PEOPLE
            ]
        )

    def _person(self, request: web.Request) -> demo.Person:
        found = demo.person(request.match_info["person"])
        if found is None:
            raise BadRequest(404, f"no person {request.match_info['person']!r}")
        return found

    async def chat(self, request: web.Request) -> web.Response:
        person = self._person(request)
        messages = [message_json(m) for m in self.emulator.history(person.user) if not m.deleted]
        commands = [
            {"command": c.command, "description": c.description}
            for c in self.emulator.visible_commands(person.user)
        ]
        return _json_response({"messages": messages, "commands": commands})

    async def send(self, request: web.Request) -> web.Response:
        person = self._person(request)
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            upload = form.get("file")
            if not isinstance(upload, web.FileField):
                raise BadRequest(400, "the form has no file")
            caption = str(form.get("caption") or "") or None
            reply_to = _reply_to(form.get("reply_to"))
            content = upload.file.read()
            name = upload.filename or "file"
            mime = upload.content_type or mimetypes.guess_type(name)[0]
            try:
                if mime and mime.startswith("image/"):
                    self.emulator.send_photo(person.user, content, caption, reply_to=reply_to)
                else:
                    self.emulator.send_document(
                        person.user, name, content, caption, mime_type=mime, reply_to=reply_to
                    )
            except LookupError as error:
                raise BadRequest(400, str(error)) from None
            return _json_response({"ok": True})
        body = await _json(request)
        text = body.get("text")
        if not isinstance(text, str) or not text.strip():
            raise BadRequest(400, "text is required")
        try:
            self.emulator.send_text(person.user, text, reply_to=_reply_to(body.get("reply_to")))
        except LookupError as error:
            raise BadRequest(400, str(error)) from None
        return _json_response({"ok": True})

    async def press(self, request: web.Request) -> web.Response:
        person = self._person(request)
        body = await _json(request)
        message_id, data = body.get("message_id"), body.get("data")
        if not isinstance(message_id, int) or not isinstance(data, str):
            raise BadRequest(400, "message_id (a number) and data (a string) are required")
        try:
            query = self.emulator.press_button(person.user, message_id, callback_data=data)
        except LookupError as error:
            raise BadRequest(400, str(error)) from None
        try:
            answer = await self.emulator.wait_for_callback_answer(query, ANSWER_WAIT_SECONDS)
        except TimeoutError:
            return _json_response({"answer": None})
        return _json_response({"answer": answer.text})

    async def file(self, request: web.Request) -> web.Response:
        stored = self.emulator.files.get(request.match_info["file_id"])
        if stored is None:
            raise BadRequest(404, "no such file")
        name = stored.filename or ("photo.jpg" if stored.kind == "photo" else "file")
        mime = stored.mime_type or mimetypes.guess_type(name)[0] or "application/octet-stream"
        return _download(stored.content, name, mime)

    # --- the queue ------------------------------------------------------------------------

    async def tickets(self, request: web.Request) -> web.Response:
        async with self._sessionmaker() as session:
            rows = await session.scalars(
                select(BuiltinQueueTicket)
                .where(
                    BuiltinQueueTicket.deleted_at.is_(None),
                    BuiltinQueueTicket.merged_into.is_(None),
                )
                .order_by(BuiltinQueueTicket.id.desc())
            )
            tickets = [_ticket_json(row) for row in rows]
        staff = [p.queue_user for p in demo.STAFF if p.queue_user]
        return _json_response({"tickets": tickets, "staff": staff})

    async def _row(self, number: str) -> BuiltinQueueTicket:
        if not number.isdigit():
            raise BadRequest(404, f"no ticket {number}")
        async with self._sessionmaker() as session:
            row = await session.get(BuiltinQueueTicket, int(number))
            if row is None or row.deleted_at is not None:
                raise BadRequest(404, f"no ticket {number}")
            return row

    async def ticket(self, request: web.Request) -> web.Response:
        number = request.match_info["number"]
        row = await self._row(number)
        entries = await self.queue.conversation(number)
        messages = [
            {
                "author": entry.author,
                "by_support": entry.by_support,
                "html": queue_html(entry.body, entry.body_format),
                "date": _iso(entry.created_at),
                "files": [
                    {
                        "name": a.filename,
                        "url": f"/api/queue/{number}/files/{quote(a.id, safe='')}",
                    }
                    for a in entry.attachments
                ],
            }
            for entry in entries
        ]
        return _json_response({"ticket": _ticket_json(row), "messages": messages})

    async def attachment(self, request: web.Request) -> web.Response:
        number = request.match_info["number"]
        await self._row(number)
        found = await self.queue.attachment(number, request.match_info["attachment"])
        return _download(found.content, found.filename, found.content_type)

    def _console(self, author: object) -> BuiltinConsole:
        name = author if isinstance(author, str) and author else DEFAULT_SPECIALIST
        if name not in {p.queue_user for p in demo.STAFF}:
            raise BadRequest(400, f"no specialist {name!r}")
        return BuiltinConsole(self.queue, name)

    async def assign(self, request: web.Request) -> web.Response:
        number = request.match_info["number"]
        await self._row(number)
        body = await _json(request)
        owner = body.get("owner")
        if owner is not None and owner not in {p.queue_user for p in demo.STAFF}:
            raise BadRequest(400, f"no specialist {owner!r}")
        await self._console(body.get("author") or owner).set_owner(number, owner)
        self._queue_changed()
        return _json_response({"ok": True})

    async def reply(self, request: web.Request) -> web.Response:
        number = request.match_info["number"]
        await self._row(number)
        attachments: list[Attachment] = []
        if request.content_type.startswith("multipart/"):
            form = await request.post()
            text, author = str(form.get("text") or ""), form.get("author")
            upload = form.get("file")
            if isinstance(upload, web.FileField):
                name = upload.filename or "file"
                mime = upload.content_type or mimetypes.guess_type(name)[0]
                attachments.append(
                    Attachment(name, mime or "application/octet-stream", upload.file.read())
                )
        else:
            body = await _json(request)
            text, author = str(body.get("text") or ""), body.get("author")
        if not text.strip() and not attachments:
            raise BadRequest(400, "text or a file is required")
        await self._console(author).reply(number, text, attachments)
        self._queue_changed()
        return _json_response({"ok": True})

    async def status(self, request: web.Request) -> web.Response:
        number = request.match_info["number"]
        await self._row(number)
        body = await _json(request)
        status = body.get("status")
        if status not in STATUSES:
            raise BadRequest(400, f"status must be one of {sorted(STATUSES)}")
        await self._console(body.get("author")).set_status(number, TicketStatus(status))
        self._queue_changed()
        return _json_response({"ok": True})


async def _json(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise BadRequest(400, "the body must be JSON") from None
    if not isinstance(body, dict):
        raise BadRequest(400, "the body must be a JSON object")
    return body


def _reply_to(value: object) -> int | None:
    if value is None or value == "":
        return None
    try:
        return int(str(value))
    except ValueError:
        raise BadRequest(400, "reply_to must be a message id") from None


def _download(content: bytes, name: str, mime: str) -> web.Response:
    # Only pictures a browser cannot run (no SVG) are shown inline; the rest is downloaded.
    disposition = "inline" if mime in INLINE_IMAGES else "attachment"
    return web.Response(
        body=content,
        content_type=mime,
        headers={
            "Content-Disposition": f"{disposition}; filename*=UTF-8''{quote(name)}",
            "X-Content-Type-Options": "nosniff",
        },
    )
