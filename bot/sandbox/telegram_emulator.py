"""A Telegram Bot API emulator: the tests' Telegram, and the sandbox's (bot/sandbox/runner.py).

The real bot (aiogram's AiohttpSession pointed at ``TelegramAPIServer.from_base(emu.base_url)``)
talks to it over loopback HTTP exactly as it would to api.telegram.org; tests act as users in
private chats and observe what the bot did.

Fidelity rules: every result is built from aiogram's own types and checked against the method's
declared return type before it is sent, and incoming parameters are validated with aiogram's
method classes. Where Telegram has a well-known rule that bots trip over (HTML that does not
parse, "message is not modified", callback_data over 64 bytes, editMessageText dropping the
inline keyboard, 409 on getUpdates while a webhook is set, ...) the emulator applies it, with
Telegram's error text. It never sends traffic beyond loopback: webhooks must point at 127.0.0.1.

Telegram's limits (`enforce_limits`): when on, a bot sending more than 30 messages a second
overall, more than one a second into one private chat or more than 20 a minute into one group
gets 429 "Too Many Requests: retry after N" with `parameters.retry_after`, as from Telegram; every
such refusal is kept in `rate_limited`. Faults on demand: `inject_error` (bursts of 429 or 5xx on
chosen methods, optionally for one chat) and `slow_down` (a delay before answering).

Not emulated: updates from groups and channels (a group exists only as a target of the bot's
messages, see `add_group`), inline mode, payments, media groups, retries of failed webhook
deliveries, Markdown parsing (Markdown/MarkdownV2 text is stored as sent).
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import html
import ipaddress
import json
import logging
import math
import mimetypes
import re
import secrets
import socket
import struct
import time
import traceback
import types
import typing
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Self, TypeVar

import aiogram.methods
import aiohttp
from aiogram import Bot
from aiogram.client.default import Default, DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ChatAction, ParseMode
from aiogram.methods import (
    AnswerCallbackQuery,
    Close,
    DeleteMessage,
    DeleteMyCommands,
    DeleteWebhook,
    EditMessageCaption,
    EditMessageReplyMarkup,
    EditMessageText,
    GetFile,
    GetMe,
    GetMyCommands,
    GetUpdates,
    GetWebhookInfo,
    LogOut,
    SendChatAction,
    SendDocument,
    SendMessage,
    SendPhoto,
    SetMyCommands,
    SetWebhook,
    TelegramMethod,
)
from aiogram.methods.base import Response
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    BotCommandScopeChatAdministrators,
    BotCommandScopeChatMember,
    BufferedInputFile,
    CallbackQuery,
    Chat,
    ChatMemberBanned,
    ChatMemberMember,
    ChatMemberUpdated,
    Contact,
    Document,
    File,
    ForceReply,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InputFile,
    Location,
    Message,
    MessageEntity,
    PhotoSize,
    ReplyKeyboardMarkup,
    ReplyKeyboardRemove,
    ReplyParameters,
    Sticker,
    TelegramObject,
    Update,
    User,
    VideoNote,
    Voice,
    WebhookInfo,
)
from aiohttp import web
from pydantic import TypeAdapter, ValidationError
from yarl import URL

__all__ = [
    "ApiCall",
    "ApiError",
    "CallbackAnswer",
    "ChatMessage",
    "EmulatorError",
    "RateLimits",
    "SimUser",
    "StoredFile",
    "TelegramEmulator",
    "UploadedFile",
    "WebhookConfig",
    "WebhookDelivery",
    "parse_html",
    "utf16_len",
]

logger = logging.getLogger(__name__)

T = TypeVar("T")
ReplyMarkup = InlineKeyboardMarkup | ReplyKeyboardMarkup | ReplyKeyboardRemove | ForceReply

MAX_TEXT = 4096  # UTF-16 code units, like Telegram counts them
MAX_CAPTION = 1024
MAX_CALLBACK_DATA = 64  # bytes
MAX_DOWNLOAD = 20 * 1024 * 1024  # getFile refuses bigger files on the cloud Bot API
MAX_UPLOAD = 50 * 1024 * 1024

# Updates Telegram sends when allowed_updates is empty or was never given.
_DEFAULT_EXCLUDED_UPDATES = frozenset({"chat_member", "message_reaction", "message_reaction_count"})

WEBHOOK_CONFLICT = (
    "Conflict: can't use getUpdates method while webhook is active; "
    "use deleteWebhook to delete the webhook first"
)
POLLING_CONFLICT = (
    "Conflict: terminated by other getUpdates request; "
    "make sure that only one bot instance is running"
)
NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)
QUERY_INVALID = "Bad Request: query is too old and response timeout expired or query ID is invalid"


class ApiError(Exception):
    """A Bot API error answer: ``{"ok": false, "error_code": status, "description": ...}``."""

    def __init__(self, status: int, description: str, *, retry_after: int | None = None) -> None:
        super().__init__(description)
        self.status = status
        self.description = description
        self.retry_after = retry_after

    def payload(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return body


class EmulatorError(RuntimeError):
    """The emulator itself failed (a bug in it, not in the bot); raised when it stops."""


class _RateLimited(ApiError):
    """A 429 of the emulator's own limits (enforce_limits), not an injected one."""


# --------------------------------------------------------------------------- text & entities


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units: Telegram's unit for entity offsets and length limits."""
    return len(text.encode("utf-16-le")) // 2


_TAG_NAME = re.compile(r"<([A-Za-z][A-Za-z0-9-]*)")
_START_TAG = re.compile(
    r"""<([A-Za-z][A-Za-z0-9-]*)((?:\s+[A-Za-z][\w-]*(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s"'>]+))?)*)\s*>"""
)
_END_TAG = re.compile(r"</([A-Za-z][A-Za-z0-9-]*)\s*>")
_ATTRIBUTE = re.compile(r"""([A-Za-z][\w-]*)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s"'>]+))?""")
# Telegram decodes only these named entities plus numeric ones; any other "&" is literal text.
_CHAR_REF = re.compile(r"&(?:#([0-9]{1,7})|#[xX]([0-9A-Fa-f]{1,6})|(lt|gt|amp|quot));")
_NAMED_REFS = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_HTML_TAGS = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "tg-spoiler": "spoiler",
    "span": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
    "tg-time": "date_time",
}


@dataclass
class _OpenTag:
    name: str
    attrs: dict[str, str]
    offset: int  # UTF-16 offset in the plain text
    language: str | None = None  # of a <pre>, taken from a nested <code class="language-x">


def parse_html(source: str) -> tuple[str, list[MessageEntity]]:
    """Telegram's HTML parse mode: the plain text and its entities (UTF-16 offsets).

    Raises ApiError 400 "Bad Request: can't parse entities: ..." where Telegram would.
    """

    def fail(reason: str) -> ApiError:
        return ApiError(400, f"Bad Request: can't parse entities: {reason}")

    def byte_offset(index: int) -> int:
        return len(source[:index].encode())

    chunks: list[str] = []
    position = 0  # UTF-16 length of the plain text so far
    stack: list[_OpenTag] = []
    entities: list[MessageEntity] = []
    i = 0
    while i < len(source):
        char = source[i]
        if char == "&" and (ref := _CHAR_REF.match(source, i)):
            decoded = _decode_char_ref(ref)
            chunks.append(decoded)
            position += utf16_len(decoded)
            i = ref.end()
            continue
        if char != "<":
            # Copy the run of ordinary text up to the next markup character in one go.
            end = i + 1
            while end < len(source) and source[end] not in "<&":
                end += 1
            chunks.append(source[i:end])
            position += utf16_len(source[i:end])
            i = end
            continue
        if source.startswith("</", i):
            end_tag = _END_TAG.match(source, i)
            if end_tag is None:
                raise fail(f"Unclosed end tag at byte offset {byte_offset(i)}")
            name = end_tag.group(1).lower()
            if not stack:
                raise fail(f"Unexpected end tag at byte offset {byte_offset(i)}")
            if stack[-1].name != name:
                raise fail(
                    f'Unmatched end tag at byte offset {byte_offset(i)}, expected "</'
                    f'{stack[-1].name}>", found "</{name}>"'
                )
            opened = stack.pop()
            entity = _entity_for(opened, position, stack[-1] if stack else None)
            if entity is not None:
                entities.append(entity)
            i = end_tag.end()
            continue
        name_match = _TAG_NAME.match(source, i)
        if name_match is None:
            raise fail(f'Unsupported start tag "" at byte offset {byte_offset(i)}')
        name = name_match.group(1).lower()
        if name not in _HTML_TAGS:
            raise fail(f'Unsupported start tag "{name}" at byte offset {byte_offset(i)}')
        start_tag = _START_TAG.match(source, i)
        if start_tag is None:
            raise fail(f"Unclosed start tag at byte offset {byte_offset(i)}")
        attrs = {
            key.lower(): html.unescape(value.strip("\"'")) if value else ""
            for key, value in _ATTRIBUTE.findall(start_tag.group(2))
        }
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise fail(f'Tag "span" must have class "tg-spoiler" at byte offset {byte_offset(i)}')
        if name == "tg-emoji" and not attrs.get("emoji-id", "").isdigit():
            raise fail(f"Custom emoji identifier must be specified at byte offset {byte_offset(i)}")
        if name == "tg-time" and not attrs.get("unix", "").isdigit():
            raise fail(f'Tag "tg-time" must have attribute "unix" at byte offset {byte_offset(i)}')
        stack.append(_OpenTag(name, attrs, position))
        i = start_tag.end()
    if stack:
        raise fail(f'Can\'t find end tag corresponding to start tag "{stack[-1].name}"')
    entities.sort(key=lambda e: (e.offset, -e.length))
    return "".join(chunks), entities


def _decode_char_ref(ref: re.Match[str]) -> str:
    decimal, hexadecimal, named = ref.groups()
    if named:
        return _NAMED_REFS[named]
    code = int(decimal) if decimal else int(hexadecimal, 16)
    return chr(code) if 0 < code <= 0x10FFFF else "\ufffd"


def _entity_for(tag: _OpenTag, end: int, parent: _OpenTag | None) -> MessageEntity | None:
    length = end - tag.offset
    kind = _HTML_TAGS[tag.name]
    if tag.name == "code" and parent is not None and parent.name == "pre":
        # <pre><code class="language-x"> is one pre entity with a language, not two entities.
        language = tag.attrs.get("class", "")
        if language.startswith("language-"):
            parent.language = language.removeprefix("language-")
        return None
    if length <= 0:
        return None
    extra: dict[str, Any] = {}
    if kind == "text_link":
        if not tag.attrs.get("href"):
            return None
        extra["url"] = tag.attrs["href"]
    elif kind == "pre" and tag.language:
        extra["language"] = tag.language
    elif kind == "blockquote" and "expandable" in tag.attrs:
        kind = "expandable_blockquote"
    elif kind == "custom_emoji":
        extra["custom_emoji_id"] = tag.attrs["emoji-id"]
    elif kind == "date_time":
        extra["unix_time"] = int(tag.attrs["unix"])
        if tag.attrs.get("format"):
            extra["date_time_format"] = tag.attrs["format"]
    return MessageEntity(type=kind, offset=tag.offset, length=length, **extra)


def _trim(text: str, entities: list[MessageEntity]) -> tuple[str, list[MessageEntity]]:
    """Telegram drops leading and trailing whitespace, shifting and clipping entities."""
    stripped = text.strip()
    if stripped == text:
        return text, entities
    lead = utf16_len(text[: len(text) - len(text.lstrip())])
    new_length = utf16_len(stripped)
    trimmed: list[MessageEntity] = []
    for entity in entities:
        start = max(entity.offset - lead, 0)
        end = min(entity.offset + entity.length - lead, new_length)
        if end > start:
            trimmed.append(entity.model_copy(update={"offset": start, "length": end - start}))
    return stripped, trimmed


_COMMAND = re.compile(r"(?<![\w/<>])/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?![\w/])")


def _command_entities(text: str) -> list[MessageEntity]:
    """The bot_command entities a Telegram client attaches to "/start", "/new@bot" etc."""
    return [
        MessageEntity(
            type="bot_command",
            offset=utf16_len(text[: match.start()]),
            length=utf16_len(match.group()),
        )
        for match in _COMMAND.finditer(text)
    ]


# --------------------------------------------------------------------------- records


@dataclass(frozen=True)
class SimUser:
    """A simulated Telegram user; their private chat with the bot has chat id == user id."""

    id: int
    first_name: str
    username: str | None = None
    language_code: str | None = "en"
    last_name: str | None = None

    @property
    def chat_id(self) -> int:
        return self.id

    def to_user(self) -> User:
        return User(
            id=self.id,
            is_bot=False,
            first_name=self.first_name,
            last_name=self.last_name,
            username=self.username,
            language_code=self.language_code,
        )

    def to_chat(self) -> Chat:
        return Chat(
            id=self.id,
            type="private",
            first_name=self.first_name,
            last_name=self.last_name,
            username=self.username,
        )


ChatRef = int | SimUser  # a chat id, or the user whose private chat it is


class UploadedFile(BufferedInputFile):
    """A file that arrived in a multipart request; an InputFile so aiogram's methods accept it."""

    def __init__(self, data: bytes, filename: str, content_type: str | None = None) -> None:
        super().__init__(data, filename=filename)
        self.content_type = content_type

    def __repr__(self) -> str:
        return f"UploadedFile({self.filename!r}, {len(self.data)} bytes)"


@dataclass(frozen=True)
class StoredFile:
    """A file known to the emulator: uploaded by the bot or sent by a simulated user."""

    file_id: str
    file_unique_id: str
    kind: str  # "document" or "photo"
    content: bytes
    filename: str | None
    mime_type: str | None
    file_path: str
    width: int = 0
    height: int = 0

    @property
    def size(self) -> int:
        return len(self.content)

    def as_document(self) -> Document:
        return Document(
            file_id=self.file_id,
            file_unique_id=self.file_unique_id,
            file_name=self.filename,
            mime_type=self.mime_type,
            file_size=self.size,
        )

    def as_photo(self) -> list[PhotoSize]:
        return [
            PhotoSize(
                file_id=self.file_id,
                file_unique_id=self.file_unique_id,
                width=self.width,
                height=self.height,
                file_size=self.size,
            )
        ]

    def as_file(self) -> File:
        return File(
            file_id=self.file_id,
            file_unique_id=self.file_unique_id,
            file_size=self.size,
            file_path=self.file_path,
        )


@dataclass(frozen=True)
class AlbumItem:
    """One photo or document of an album a simulated user sends (TelegramEmulator.send_album)."""

    kind: str  # "photo" or "document"
    content: bytes
    caption: str | None = None
    filename: str | None = None  # documents
    mime_type: str | None = None  # documents


@dataclass
class ChatMessage:
    """One message of a private chat, as it stands now (edits applied, deletion flagged)."""

    chat: Chat
    message_id: int
    sender: User
    date: int
    seq: int  # position in the emulator's event order; compare with emu.mark()
    method: str | None  # the API method that created it ("sendMessage"), None for user messages
    text: str | None = None  # plain text as users see it: tags stripped, entities unescaped
    raw_text: str | None = None  # text exactly as the bot sent it (HTML included)
    entities: list[MessageEntity] = field(default_factory=list)
    caption: str | None = None
    raw_caption: str | None = None
    caption_entities: list[MessageEntity] = field(default_factory=list)
    parse_mode: str | None = None
    file: StoredFile | None = None
    reply_markup: ReplyMarkup | None = None
    reply_to: ChatMessage | None = None
    edit_date: int | None = None
    deleted: bool = False
    versions: list[str | None] = field(default_factory=list)  # earlier texts/captions, oldest first
    at: float = field(default_factory=time.monotonic)  # when the emulator created it (monotonic)
    # Further fields of the Message as Telegram sends it (media_group_id, sticker, voice...).
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def chat_id(self) -> int:
        return self.chat.id

    @property
    def from_bot(self) -> bool:
        return self.sender.is_bot

    @property
    def content(self) -> str:
        """The text, or the caption of a file; "" when there is neither."""
        return self.text if self.text is not None else self.caption or ""

    @property
    def inline_keyboard(self) -> InlineKeyboardMarkup | None:
        markup = self.reply_markup
        return markup if isinstance(markup, InlineKeyboardMarkup) else None

    @property
    def buttons(self) -> list[InlineKeyboardButton]:
        """The inline buttons, row by row, flattened."""
        keyboard = self.inline_keyboard
        return [button for row in keyboard.inline_keyboard for button in row] if keyboard else []

    @property
    def button_rows(self) -> list[list[str]]:
        """The visible texts of the keyboard (inline or reply), row by row."""
        markup = self.reply_markup
        if isinstance(markup, InlineKeyboardMarkup):
            return [[button.text for button in row] for row in markup.inline_keyboard]
        if isinstance(markup, ReplyKeyboardMarkup):
            return [[button.text for button in row] for row in markup.keyboard]
        return []

    def button(self, text: str) -> InlineKeyboardButton:
        """The inline button with this visible text; LookupError if there is none."""
        for button in self.buttons:
            if button.text == text:
                return button
        raise LookupError(f"message {self.message_id} has no button {text!r}: {self.button_rows}")

    def to_message(self, *, with_reply: bool = True) -> Message:
        """The aiogram Message Telegram would return for it now."""
        file = self.file
        fields: dict[str, Any] = dict(
            message_id=self.message_id,
            date=self.date,
            chat=self.chat,
            from_user=self.sender,
            text=self.text,
            entities=self.entities or None,
            caption=self.caption,
            caption_entities=self.caption_entities or None,
            document=file.as_document() if file and file.kind == "document" else None,
            photo=file.as_photo() if file and file.kind == "photo" else None,
            # Message.reply_markup carries inline keyboards only; reply keyboards are not echoed.
            reply_markup=self.inline_keyboard,
            reply_to_message=(
                self.reply_to.to_message(with_reply=False) if with_reply and self.reply_to else None
            ),
            edit_date=self.edit_date,
        )
        return Message(**(fields | self.extra))


@dataclass(frozen=True)
class ApiCall:
    """One Bot API request the emulator answered."""

    seq: int
    method: str  # canonical name ("sendMessage") or, for unknown methods, the name as called
    params: dict[str, Any]  # decoded: JSON strings parsed, uploads as UploadedFile
    request: TelegramMethod[Any] | None  # the validated aiogram method, None if invalid/unknown
    status: int
    response: dict[str, Any]
    via: str = "http"  # "http", or "webhook-reply" for a method returned in a webhook response

    @property
    def ok(self) -> bool:
        return self.status == 200

    @property
    def result(self) -> Any:
        return self.response.get("result")

    @property
    def description(self) -> str | None:
        return self.response.get("description")


@dataclass(frozen=True)
class CallbackAnswer:
    seq: int
    callback_query_id: str
    text: str | None
    show_alert: bool
    url: str | None
    cache_time: int | None


@dataclass(frozen=True)
class WebhookConfig:
    url: str
    secret_token: str | None
    max_connections: int | None
    ip_address: str | None


@dataclass(frozen=True)
class WebhookDelivery:
    """One POST of an update to the webhook; status None when the connection itself failed."""

    seq: int
    update: Update
    url: str
    status: int | None
    error: str | None

    @property
    def update_id(self) -> int:
        return self.update.update_id

    @property
    def ok(self) -> bool:
        return self.status == 200


@dataclass
class _Chat:
    user: SimUser
    messages: list[ChatMessage] = field(default_factory=list)
    next_message_id: int = 1
    blocked: bool = False  # the user blocked the bot
    reply_keyboard: ReplyKeyboardMarkup | None = None  # the custom keyboard the user sees
    group: Chat | None = None  # a group the bot writes into (then `user` is a placeholder)

    def to_chat(self) -> Chat:
        return self.group if self.group is not None else self.user.to_chat()


@dataclass
class _Fault:
    methods: frozenset[str]
    error: ApiError
    times: int
    chat_id: int | None = None  # only calls into this chat fail; None: any call
    after: int = 0  # matching calls let through before the fault starts


@dataclass
class _Hold:
    """Calls of `method` whose parameters match are never answered (a bot killed mid-call)."""

    method: str
    matching: Callable[[dict[str, Any]], bool]


@dataclass(frozen=True)
class RateLimits:
    """Telegram's limits as the emulator enforces them: (messages, window in seconds)."""

    per_bot: tuple[int, float] = (30, 1.0)
    per_private_chat: tuple[int, float] = (1, 1.0)
    per_group: tuple[int, float] = (20, 60.0)


# Methods that put messages into a chat, as Telegram counts them against its limits.
_COUNTED_SENDS = frozenset(
    {
        "sendMessage", "sendDocument", "sendPhoto", "sendAnimation", "sendAudio", "sendVideo",
        "sendVideoNote", "sendVoice", "sendSticker", "sendLocation", "sendVenue", "sendContact",
        "sendPoll", "sendDice", "sendMediaGroup", "copyMessage", "copyMessages",
        "forwardMessage", "forwardMessages",
    }
)  # fmt: skip


# --------------------------------------------------------------------------- method plumbing

# Every method aiogram knows, by lower-case name: Telegram matches names case-insensitively.
_METHODS: dict[str, type[TelegramMethod[Any]]] = {
    cls.__api_method__.lower(): cls
    for cls in vars(aiogram.methods).values()
    if isinstance(cls, type) and issubclass(cls, TelegramMethod) and cls is not TelegramMethod
}

_RESPONSE_ADAPTERS: dict[type[TelegramMethod[Any]], TypeAdapter[Any]] = {}


def _response_adapter(cls: type[TelegramMethod[Any]]) -> TypeAdapter[Any]:
    if cls not in _RESPONSE_ADAPTERS:
        _RESPONSE_ADAPTERS[cls] = TypeAdapter(Response[cls.__returning__])  # type: ignore[name-defined]
    return _RESPONSE_ADAPTERS[cls]


def _is_plain_str(annotation: Any) -> bool:
    """True if a field takes only strings (so a form value must not be JSON-decoded)."""
    if typing.get_origin(annotation) is typing.Annotated:
        return _is_plain_str(typing.get_args(annotation)[0])
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        members = [
            arg
            for arg in typing.get_args(annotation)
            if arg is not type(None) and arg is not Default
        ]
        return all(_is_plain_str(arg) for arg in members)
    return annotation is str


def _decode_params(
    cls: type[TelegramMethod[Any]], fields: Mapping[str, Any], uploads: Mapping[str, UploadedFile]
) -> dict[str, Any]:
    """Form values are strings; objects and arrays among them arrive JSON-encoded."""
    params: dict[str, Any] = {}
    for name, value in fields.items():
        model_field = cls.model_fields.get(name)
        if (
            isinstance(value, str)
            and model_field is not None
            and not _is_plain_str(model_field.annotation)
            and value.lstrip()[:1] in ("{", "[")
        ):
            with contextlib.suppress(ValueError):
                value = json.loads(value)
        params[name] = value
    for name, value in list(params.items()):
        if isinstance(value, str) and value.startswith("attach://"):
            key = value.removeprefix("attach://")
            if key not in uploads:
                raise ApiError(400, f"Bad Request: file {key} for the field {name} is not attached")
            params[name] = uploads[key]
    for name, upload in uploads.items():
        if name in cls.model_fields and name not in params:
            params[name] = upload  # the file was posted as the field itself
    return params


def _describe_validation_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    name = str(error["loc"][0]) if error["loc"] else "parameters"
    if error["type"] == "missing":
        return (
            "Bad Request: message text is empty"
            if name == "text"
            else f"Bad Request: {name} is empty"
        )
    return f"Bad Request: can't parse {name}: {error['msg']}"


def _chat_id_of(request: TelegramMethod[Any]) -> int | None:
    chat_id = getattr(request, "chat_id", None)
    if isinstance(chat_id, str) and chat_id.lstrip("-").isdigit():
        return int(chat_id)
    return chat_id if isinstance(chat_id, int) else None


_STATUS_TEXT = {
    500: "Internal Server Error",
    502: "Bad Gateway",
    503: "Service Unavailable",
    504: "Gateway Timeout",
}


def _update_chat_id(update: Update) -> int | None:
    """The chat an update belongs to (for per-chat ordering of webhook deliveries)."""
    for event in (
        update.message,
        update.edited_message,
        update.channel_post,
        update.edited_channel_post,
        update.my_chat_member,
        update.chat_member,
    ):
        if event is not None:
            return event.chat.id
    query = update.callback_query
    if query is not None:
        return query.message.chat.id if query.message is not None else query.from_user.id
    return None


def _given(value: T | Default | None) -> T | None:
    """A method field the bot did not send holds aiogram's Default sentinel: treat it as unset."""
    return None if isinstance(value, Default) else value


def _dump(value: Any) -> Any:
    if isinstance(value, TelegramObject):
        return value.model_dump(mode="json", by_alias=True, exclude_none=True)
    if isinstance(value, list | tuple):
        return [_dump(item) for item in value]
    return value


def _same(left: Any, right: Any) -> bool:
    # Compare what goes over the wire: model equality also compares the bound Bot.
    return bool(_dump(left) == _dump(right))


async def _read_multipart(
    reader: aiohttp.MultipartReader,
) -> tuple[dict[str, str], dict[str, UploadedFile]]:
    fields: dict[str, str] = {}
    files: dict[str, UploadedFile] = {}
    async for part in reader:
        if not isinstance(part, aiohttp.BodyPartReader) or part.name is None:
            continue
        if part.filename is not None:
            content_type = part.headers.get(aiohttp.hdrs.CONTENT_TYPE)
            data = await part.read(decode=True)
            files[part.name] = UploadedFile(bytes(data), part.filename, content_type)
        else:
            fields[part.name] = await part.text()
    return fields, files


def _image_size(data: bytes) -> tuple[int, int] | None:
    """Width and height of a PNG, GIF or JPEG image; None if it is none of them."""
    if data.startswith(b"\x89PNG\r\n\x1a\n") and len(data) >= 24:
        width, height = struct.unpack(">II", data[16:24])
        return int(width), int(height)
    if data[:6] in (b"GIF87a", b"GIF89a") and len(data) >= 10:
        width, height = struct.unpack("<HH", data[6:10])
        return int(width), int(height)
    if data.startswith(b"\xff\xd8"):
        i = 2
        while i + 9 < len(data) and data[i] == 0xFF:
            marker, length = data[i + 1], struct.unpack(">H", data[i + 2 : i + 4])[0]
            if 0xC0 <= marker <= 0xCF and marker not in (0xC4, 0xC8, 0xCC):
                height, width = struct.unpack(">HH", data[i + 5 : i + 9])
                return int(width), int(height)
            i += 2 + length
    return None


def _is_loopback(url: str) -> bool:
    """Only literal loopback addresses (or localhost): no name may resolve somewhere else."""
    try:
        parsed = URL(url)
        host = (parsed.host or "").lower()
        return parsed.scheme in ("http", "https") and (
            host == "localhost" or ipaddress.ip_address(host).is_loopback
        )
    except ValueError:
        return False


def _scope_key(scope: Any) -> str:
    """A readable key for a BotCommandScope: "default", "all_private_chats", "chat:42", ..."""
    if scope is None:
        return "default"
    if isinstance(scope, BotCommandScopeChatMember):
        return f"chat_member:{scope.chat_id}:{scope.user_id}"
    if isinstance(scope, BotCommandScopeChat | BotCommandScopeChatAdministrators):
        return f"{scope.type}:{scope.chat_id}"
    return str(scope.type)


_COMMAND_NAME = re.compile(r"[a-z0-9_]{1,32}")
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")
_LANGUAGE_CODE = re.compile(r"[a-z]{2}")
_CHAT_ACTIONS = frozenset(action.value for action in ChatAction)
_BUTTON_LOOKS = frozenset({"text", "style", "icon_custom_emoji_id", "disabled"})  # not actions


# --------------------------------------------------------------------------- the emulator

Handler = Callable[[Any], Awaitable[Any]]


class TelegramEmulator:
    """A Bot API server on 127.0.0.1 plus a test-side API to act as users and observe the bot."""

    def __init__(
        self,
        token: str = "123456:TEST",
        *,
        bot_username: str = "frontdesk_test_bot",
        bot_first_name: str = "Frontdesk",
        host: str = "127.0.0.1",
        port: int = 0,
        webhook_timeout: float = 10.0,
    ) -> None:
        bot_id, _, secret = token.partition(":")
        if not bot_id.isdigit() or not secret:
            raise ValueError(f"a bot token looks like '123456:ABC', not {token!r}")
        if not _is_loopback(f"http://{host}/"):
            raise ValueError("the emulator listens on loopback only")
        self.token = token
        self.bot_id = int(bot_id)
        self.bot_username = bot_username
        self.bot_user = User(
            id=self.bot_id, is_bot=True, first_name=bot_first_name, username=bot_username
        )
        self._host = host
        self._port = port
        self._webhook_timeout = webhook_timeout

        # What tests observe.
        self.calls: list[ApiCall] = []
        self.updates: list[Update] = []  # every update created, delivered or not
        self.filtered_updates: list[Update] = []  # dropped because of allowed_updates
        self.webhook_deliveries: list[WebhookDelivery] = []
        self.redelivered: list[Update] = []  # sent again by `redeliver`
        self.answered_callbacks: list[CallbackAnswer] = []
        self.callback_queries: dict[str, CallbackQuery] = {}
        self.commands: dict[tuple[str, str], list[BotCommand]] = {}  # (scope key, language) ->
        self.files: dict[str, StoredFile] = {}  # by file_id
        self.webhook: WebhookConfig | None = None
        self.allowed_updates: list[str] | None = None  # None: Telegram's default set
        self.internal_errors: list[str] = []
        self.rate_limited: list[ApiCall] = []  # calls refused by enforce_limits, with 429
        self.limits: RateLimits | None = None  # None: Telegram's limits are not enforced
        # Awaited with the method's name as a Bot API call arrives over HTTP: lets a test look
        # at (or hold up) the bot while its call is in flight.
        self.on_call: Callable[[str], Awaitable[None]] | None = None
        # Called with a message of a private chat as it stands now, and whether it changed
        # rather than appeared: every message a user or the bot adds, every edit (text, caption,
        # keyboard) and deletion. The sandbox streams them to its page; an observer must not
        # raise nor block (it runs inside the emulator's request handling).
        self.observers: list[Callable[[ChatMessage, bool], None]] = []

        self._chats: dict[int, _Chat] = {}
        self._pending: list[Update] = []  # unconfirmed (polling) / undelivered (webhook)
        self._answered_ids: set[str] = set()
        self._faults: list[_Fault] = []
        self._delay = 0.0
        self._arrived = 0.0  # arrival of the request being handled (handlers do not await)
        self._delayed_methods: frozenset[str] | None = None
        self._sent: collections.deque[float] = collections.deque()  # by the bot, all chats
        self._sent_to: dict[int, collections.deque[float]] = {}  # by chat
        self._holds: list[_Hold] = []
        # Calls held unanswered by `hold`, as (method, parameters).
        self.held_calls: list[tuple[str, dict[str, Any]]] = []
        self._seq = 0
        self._next_update_id = 1
        self._next_file = 1
        self._next_query = 1
        self._poll_generation = 0
        self._waiting_polls = 0
        self._message_cursors: dict[int, int] = {}
        self._call_cursors: dict[str, int] = {}
        self._delivery_cursor = 0
        self._last_webhook_error: tuple[int, str] | None = None
        self._closing = False
        # Every state change replaces this event after setting it: waiters grab the current
        # event *before* checking their condition, so no change can slip between the two.
        self._changed = asyncio.Event()

        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self._webhook_task: asyncio.Task[None] | None = None
        self._handlers: dict[str, Handler] = {
            "getMe": self._get_me,
            "getUpdates": self._get_updates,
            "setWebhook": self._set_webhook,
            "deleteWebhook": self._delete_webhook,
            "getWebhookInfo": self._get_webhook_info,
            "sendMessage": self._send_message,
            "editMessageText": self._edit_message_text,
            "editMessageCaption": self._edit_message_caption,
            "editMessageReplyMarkup": self._edit_message_reply_markup,
            "deleteMessage": self._delete_message,
            "answerCallbackQuery": self._answer_callback_query,
            "setMyCommands": self._set_my_commands,
            "getMyCommands": self._get_my_commands,
            "deleteMyCommands": self._delete_my_commands,
            "sendChatAction": self._send_chat_action,
            "sendDocument": self._send_document,
            "sendPhoto": self._send_photo,
            "getFile": self._get_file,
            "close": self._close,
            "logOut": self._log_out,
        }

    # ------------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        if self._runner is not None:
            raise RuntimeError("the emulator is already running")
        app = web.Application(client_max_size=MAX_UPLOAD + 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._handle_api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._handle_file)
        # A short shutdown timeout: a dead bot's long poll must not hold up the test's teardown.
        # A request whose client hung up (a bot stopped mid long poll) is abandoned, as Telegram
        # does: it must not linger and end as a 409 against the next bot's poll.
        runner = web.AppRunner(
            app,
            handle_signals=False,
            access_log=None,
            shutdown_timeout=2.0,
            handler_cancellation=True,
        )
        await runner.setup()
        sock = socket.socket(socket.AF_INET6 if ":" in self._host else socket.AF_INET)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        self._port = sock.getsockname()[1]
        await web.SockSite(runner, sock).start()
        self._runner = runner
        self._closing = False
        self._http = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self._webhook_timeout)
        )
        self._webhook_task = asyncio.create_task(self._deliver_webhooks(), name="emulator-webhooks")
        logger.info("Telegram emulator on %s", self.base_url)

    async def stop(self) -> None:
        """Stops serving; raises EmulatorError if the emulator failed internally meanwhile."""
        if self._runner is None:
            return
        self._closing = True
        self._notify()  # long polls answer at once instead of holding the shutdown
        if self._webhook_task is not None:
            self._webhook_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._webhook_task
            self._webhook_task = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        await self._runner.cleanup()
        self._runner = None
        if self.internal_errors:
            raise EmulatorError("the emulator failed:\n" + "\n".join(self.internal_errors))

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        try:
            await self.stop()
        except EmulatorError:
            if exc_type is None:  # never mask the test's own failure
                raise

    @property
    def port(self) -> int:
        if self._runner is None:
            raise RuntimeError("the emulator is not running")
        return self._port

    @property
    def base_url(self) -> str:
        host = f"[{self._host}]" if ":" in self._host else self._host
        return f"http://{host}:{self.port}"

    @property
    def api_server(self) -> TelegramAPIServer:
        return TelegramAPIServer.from_base(self.base_url)

    def create_bot(self, token: str | None = None, **kwargs: Any) -> Bot:
        """An aiogram Bot wired to the emulator (HTML parse mode); close its session yourself."""
        kwargs.setdefault("default", DefaultBotProperties(parse_mode=ParseMode.HTML))
        return Bot(token=token or self.token, session=AiohttpSession(api=self.api_server), **kwargs)

    # ------------------------------------------------------------------ simulated users

    def add_user(self, user: SimUser) -> None:
        """Makes the user's private chat known (as if they had pressed Start)."""
        self._chat_of(user)

    def add_group(self, chat_id: int, title: str, *, type: str = "supergroup") -> None:
        """A group the bot is a member of (negative id): the bot can send into it."""
        if chat_id >= 0:
            raise ValueError("group chat ids are negative")
        placeholder = SimUser(id=chat_id, first_name=title)
        self._chats[chat_id] = _Chat(placeholder, group=Chat(id=chat_id, type=type, title=title))

    def send_text(
        self, user: SimUser, text: str, *, reply_to: ChatMessage | int | None = None
    ) -> Message:
        """The user sends a text message; "/commands" get bot_command entities."""
        chat = self._user_can_write(user)
        record = self._add_message(
            chat,
            sender=user.to_user(),
            method=None,
            text=text,
            raw_text=text,
            entities=_command_entities(text),
            reply_to=self._resolve_reply(chat, reply_to),
        )
        message = record.to_message()
        self._enqueue(Update(update_id=self._new_update_id(), message=message))
        return message

    def send_document(
        self,
        user: SimUser,
        filename: str,
        content: bytes,
        caption: str | None = None,
        *,
        mime_type: str | None = None,
        reply_to: ChatMessage | int | None = None,
    ) -> Message:
        """The user sends a file; the bot can getFile/download it by message.document.file_id."""
        chat = self._user_can_write(user)
        stored = self.add_file(content, filename, mime_type=mime_type)
        record = self._add_message(
            chat,
            sender=user.to_user(),
            method=None,
            file=stored,
            caption=caption,
            raw_caption=caption,
            reply_to=self._resolve_reply(chat, reply_to),
        )
        message = record.to_message()
        self._enqueue(Update(update_id=self._new_update_id(), message=message))
        return message

    def send_photo(
        self,
        user: SimUser,
        content: bytes,
        caption: str | None = None,
        *,
        width: int | None = None,
        height: int | None = None,
        reply_to: ChatMessage | int | None = None,
    ) -> Message:
        """The user sends a picture (size read from PNG/GIF/JPEG headers unless given)."""
        chat = self._user_can_write(user)
        size = _image_size(content) or (width or 1, height or 1)
        stored = self._store_file(
            content, "photo", None, "image/jpeg", width=width or size[0], height=height or size[1]
        )
        record = self._add_message(
            chat,
            sender=user.to_user(),
            method=None,
            file=stored,
            caption=caption,
            raw_caption=caption,
            reply_to=self._resolve_reply(chat, reply_to),
        )
        message = record.to_message()
        self._enqueue(Update(update_id=self._new_update_id(), message=message))
        return message

    def inject_update(self, update: Update) -> None:
        """An update exactly as given, for what a real client cannot send (forged ids)."""
        self._enqueue(update)

    def new_update_id(self) -> int:
        return self._new_update_id()

    def redeliver(self, update: Update) -> None:
        """Sends an update again, same update_id, as Telegram does when the webhook's answer to
        it failed (a timeout, a cut connection): after the chat's updates pending now."""
        self.redelivered.append(update)
        self._pending.append(update)
        self._notify()

    # --- albums and other kinds of user messages (the wizard's files step) ----------------------

    def send_album(self, user: SimUser, items: Sequence[AlbumItem]) -> list[Message]:
        """The user sends an album: one message (and one update) per item, all with the same
        media_group_id, enqueued back to back as Telegram delivers them. A photo comes in two
        sizes, a thumbnail first, as Telegram sends photos."""
        if not 2 <= len(items) <= 10:
            raise ValueError("an album holds 2 to 10 items")
        chat = self._user_can_write(user)
        group = str(13_000_000_000_000_000 + self._next_seq())
        messages = []
        for item in items:
            extra: dict[str, Any] = {"media_group_id": group}
            if item.kind == "photo":
                size = _image_size(item.content) or (1280, 960)
                stored = self._store_file(
                    item.content, "photo", None, "image/jpeg", width=size[0], height=size[1]
                )
                thumb = self._store_file(
                    b"thumbnail", "photo", None, "image/jpeg", width=90, height=68
                )
                extra["photo"] = [*thumb.as_photo(), *stored.as_photo()]
            elif item.kind == "document":
                stored = self.add_file(
                    item.content, item.filename or "document", mime_type=item.mime_type
                )
            else:
                raise ValueError(f"an album item is a photo or a document, not {item.kind!r}")
            record = self._add_message(
                chat,
                sender=user.to_user(),
                method=None,
                file=stored,
                caption=item.caption,
                raw_caption=item.caption,
                extra=extra,
            )
            message = record.to_message()
            self._enqueue(Update(update_id=self._new_update_id(), message=message))
            messages.append(message)
        return messages

    def send_other(self, user: SimUser, kind: str) -> Message:
        """The user sends a message that is neither text nor photo nor document: "sticker",
        "voice", "video_note", "location" or "contact"."""
        chat = self._user_can_write(user)
        number = self._next_seq()
        ids: dict[str, Any] = {"file_id": f"CAAC{number:06d}{secrets.token_urlsafe(12)}",
               "file_unique_id": f"AgAD{number:06d}"}  # fmt: skip
        extra: Any = {
            "sticker": lambda: Sticker(
                **ids, type="regular", width=512, height=512, is_animated=False, is_video=False
            ),
            "voice": lambda: Voice(**ids, duration=3, mime_type="audio/ogg", file_size=4096),
            "video_note": lambda: VideoNote(**ids, length=240, duration=2, file_size=8192),
            "location": lambda: Location(latitude=55.7558, longitude=37.6173),
            "contact": lambda: Contact(phone_number="+70000000000", first_name="Анна"),
        }[kind]()
        record = self._add_message(chat, sender=user.to_user(), method=None, extra={kind: extra})
        message = record.to_message()
        self._enqueue(Update(update_id=self._new_update_id(), message=message))
        return message

    def press_button(
        self,
        user: SimUser,
        message: ChatMessage | Message | int,
        callback_data: str | None = None,
        *,
        text: str | None = None,
        require_button: bool = True,
    ) -> CallbackQuery:
        """The user presses an inline button of a bot message, chosen by callback_data or text.

        Raises LookupError if the message (as it stands now: edits applied, not deleted) has
        no such button, unless require_button=False (a stale client pressing an old button).
        """
        if (callback_data is None) == (text is None):
            raise ValueError("give exactly one of callback_data and text")
        chat = self._user_can_write(user)
        message_id = message if isinstance(message, int) else message.message_id
        if not isinstance(message, int) and message.chat.id != user.id:
            raise LookupError(f"message {message_id} is not in the chat with user {user.id}")
        record = self._find(chat, message_id)
        if record is None:
            raise LookupError(f"no message {message_id} in the chat with user {user.id}")
        if require_button:
            if record.deleted:
                raise LookupError(f"message {message_id} was deleted; its buttons are gone")
            matches = [
                button
                for button in record.buttons
                if (callback_data is not None and button.callback_data == callback_data)
                or (text is not None and button.text == text and button.callback_data is not None)
            ]
            if not matches:
                wanted = f"callback_data {callback_data!r}" if text is None else f"text {text!r}"
                raise LookupError(
                    f"message {message_id} has no inline button with {wanted}; it has "
                    f"{[(b.text, b.callback_data) for b in record.buttons]}"
                )
            callback_data = matches[0].callback_data
        query = CallbackQuery(
            id=str(4_000_000_000_000 + self._next_query),
            from_user=user.to_user(),
            chat_instance=str(-(8_000_000_000_000_000 + chat.user.id)),
            message=record.to_message(),
            data=callback_data,
        )
        self._next_query += 1
        self.callback_queries[query.id] = query
        self._enqueue(Update(update_id=self._new_update_id(), callback_query=query))
        return query

    # --- groups and edits by users (issue 8, the wizard) ---------------------------------

    def send_group_text(
        self, user: SimUser, chat_id: int, text: str, *, reply_to: ChatMessage | int | None = None
    ) -> Message:
        """The user writes into a group added with add_group; "/commands" get bot_command
        entities. Every message reaches the bot, as if its privacy mode were off (with it on,
        Telegram sends only commands and replies): the bot must stay quiet on chatter anyway."""
        chat = self._chats.get(chat_id)
        if chat is None or chat.group is None:
            raise LookupError(f"no group {chat_id}; call add_group() first")
        record = self._add_message(
            chat,
            sender=user.to_user(),
            method=None,
            text=text,
            raw_text=text,
            entities=_command_entities(text),
            reply_to=self._resolve_reply(chat, reply_to),
        )
        message = record.to_message()
        self._enqueue(Update(update_id=self._new_update_id(), message=message))
        return message

    def edit_text(self, user: SimUser, message: ChatMessage | Message | int, text: str) -> Message:
        """The user edits a text message of theirs: an edited_message update."""
        chat = self._user_can_write(user)
        message_id = message if isinstance(message, int) else message.message_id
        record = self._find(chat, message_id)
        if record is None or record.deleted:
            raise LookupError(f"no message {message_id} in the chat with user {user.id}")
        if record.sender.id != user.id or record.text is None:
            raise LookupError(f"message {message_id} is not a text message of user {user.id}")
        record.versions.append(record.text)
        record.text = record.raw_text = text
        record.entities = _command_entities(text)
        record.edit_date = int(time.time())
        self._notify()
        self._observe(record, changed=True)
        edited = record.to_message()
        self._enqueue(Update(update_id=self._new_update_id(), edited_message=edited))
        return edited

    # --- end of groups and edits by users -------------------------------------------------

    def block_bot(self, user: SimUser) -> None:
        """The user blocks the bot: sends then fail with 403, a my_chat_member update is sent."""
        chat = self._chat_of(user)
        chat.blocked = True
        self._enqueue_member_change(user, blocked=True)

    def unblock_bot(self, user: SimUser) -> None:
        chat = self._chat_of(user)
        chat.blocked = False
        self._enqueue_member_change(user, blocked=False)

    def add_file(
        self, content: bytes, filename: str, *, mime_type: str | None = None
    ) -> StoredFile:
        """Registers a document (as if a user had uploaded it) and gives it a file_id."""
        guessed = mime_type or mimetypes.guess_type(filename)[0] or "application/octet-stream"
        return self._store_file(content, "document", filename, guessed)

    def inject_error(
        self,
        method: str | Collection[str],
        status: int = 500,
        description: str | None = None,
        *,
        retry_after: int | None = None,
        times: int = 1,
        chat: ChatRef | None = None,
        after: int = 0,
    ) -> None:
        """The next `times` calls of `method` (or of any of several methods; into `chat` only,
        if given) fail like Telegram would, once `after` such calls have gone through: a burst
        of 429 with retry_after, of 5xx, ...

        The description defaults to Telegram's for the status ("Too Many Requests: retry after
        N" for 429)."""
        names = [method] if isinstance(method, str) else list(method)
        if description is None:
            description = (
                f"Too Many Requests: retry after {retry_after}"
                if status == 429
                else _STATUS_TEXT.get(status, "Internal Server Error")
            )
        self._faults.append(
            _Fault(
                frozenset(self._canonical(name) for name in names),
                ApiError(status, description, retry_after=retry_after),
                times,
                None if chat is None else self._chat_id(chat),
                after,
            )
        )

    def enforce_limits(self, limits: RateLimits | None = None) -> None:
        """From now on, refuse sends beyond Telegram's limits with 429 (see RateLimits)."""
        self.limits = limits or RateLimits()

    def slow_down(self, seconds: float, methods: Collection[str] | None = None) -> None:
        """Answer every call (or only calls of `methods`) `seconds` late; 0 is full speed."""
        self._delay = seconds
        self._delayed_methods = (
            None if methods is None else frozenset(self._canonical(name) for name in methods)
        )

    def hold(self, method: str, matching: Callable[[dict[str, Any]], bool]) -> None:
        """From now on, calls of `method` whose parameters match are held unanswered and not
        carried out (they land in `held_calls`), as if the bot died while making them."""
        self._holds.append(_Hold(self._canonical(method), matching))

    def release_holds(self) -> None:
        """Calls made from now on are carried out again; those already held stay unanswered."""
        self._holds.clear()

    # ------------------------------------------------------------------ observing the bot

    def mark(self) -> int:
        """A point in time: pass as since= to only see messages/calls/deliveries after it."""
        return self._seq

    def history(self, chat: ChatRef) -> list[ChatMessage]:
        """All messages of the chat, both sides, in order, deleted ones included (flagged)."""
        found = self._chats.get(self._chat_id(chat))
        return list(found.messages) if found else []

    def bot_messages(self, chat: ChatRef, *, include_deleted: bool = False) -> list[ChatMessage]:
        return [m for m in self.history(chat) if m.from_bot and (include_deleted or not m.deleted)]

    def last_message(self, chat: ChatRef) -> ChatMessage | None:
        """The bot's latest message in the chat that is not deleted."""
        messages = self.bot_messages(chat)
        return messages[-1] if messages else None

    def message(self, chat: ChatRef, message_id: int) -> ChatMessage:
        found = self._chats.get(self._chat_id(chat))
        record = self._find(found, message_id) if found else None
        if record is None:
            raise KeyError(f"no message {message_id} in chat {self._chat_id(chat)}")
        return record

    def reply_keyboard(self, chat: ChatRef) -> ReplyKeyboardMarkup | None:
        """The custom (reply) keyboard the user currently sees, if any."""
        found = self._chats.get(self._chat_id(chat))
        return found.reply_keyboard if found else None

    def calls_to(self, method: str) -> list[ApiCall]:
        canonical = self._canonical(method)
        return [call for call in self.calls if call.method == canonical]

    @property
    def failed_calls(self) -> list[ApiCall]:
        return [call for call in self.calls if not call.ok]

    @property
    def polling(self) -> bool:
        """True while a getUpdates request is in progress (typically: a long poll waiting)."""
        return self._waiting_polls > 0

    @property
    def pending_updates(self) -> list[Update]:
        """Updates not yet confirmed by getUpdates (or not yet POSTed to the webhook)."""
        return list(self._pending)

    def visible_commands(self, user: SimUser) -> list[BotCommand]:
        """The command menu the user sees in their private chat, resolved like Telegram does."""
        language = user.language_code or ""
        for scope in (f"chat:{user.id}", "all_private_chats", "default"):
            for key in ((scope, language), (scope, "")):
                if key in self.commands:
                    return list(self.commands[key])
        return []

    async def wait_for_message(
        self,
        chat: ChatRef,
        predicate: Callable[[ChatMessage], bool] | None = None,
        timeout: float = 10.0,
        *,
        since: int | None = None,
    ) -> ChatMessage:
        """The next new bot message in the chat matching predicate.

        "New" means sent after the message this method last returned for the chat (or after
        mark `since`), so consecutive calls walk through the bot's messages in order and none
        is missed however early it arrived. Messages deleted since are still returned.
        """
        chat_id = self._chat_id(chat)
        cursor = since if since is not None else self._message_cursors.get(chat_id, 0)

        def find() -> ChatMessage | None:
            for record in self.bot_messages(chat_id, include_deleted=True):
                if record.seq > cursor and (predicate is None or predicate(record)):
                    return record
            return None

        def describe() -> str:
            seen = [
                (m.message_id, m.content[:80])
                for m in self.bot_messages(chat_id, include_deleted=True)
                if m.seq > cursor
            ]
            return (
                f"no new bot message in chat {chat_id} matched within {timeout}s; "
                f"new ones: {seen}; {self._failures_summary()}"
            )

        record = await self._wait(find, timeout, describe)
        self._message_cursors[chat_id] = max(self._message_cursors.get(chat_id, 0), record.seq)
        return record

    async def wait_for_call(
        self,
        method: str,
        predicate: Callable[[ApiCall], bool] | None = None,
        timeout: float = 10.0,
        *,
        since: int | None = None,
    ) -> ApiCall:
        """The next call of `method` (any outcome) matching predicate, walking forward like
        wait_for_message: each call is returned once, earlier calls included."""
        canonical = self._canonical(method)
        cursor = since if since is not None else self._call_cursors.get(canonical, 0)

        def find() -> ApiCall | None:
            for call in self.calls:
                if (
                    call.seq > cursor
                    and call.method == canonical
                    and (predicate is None or predicate(call))
                ):
                    return call
            return None

        def describe() -> str:
            seen = [
                (c.status, c.params) for c in self.calls if c.method == canonical and c.seq > cursor
            ]
            return f"no matching {canonical} call within {timeout}s; seen: {seen}"

        call = await self._wait(find, timeout, describe)
        self._call_cursors[canonical] = max(self._call_cursors.get(canonical, 0), call.seq)
        return call

    async def wait_for_callback_answer(
        self, query: CallbackQuery | str, timeout: float = 10.0
    ) -> CallbackAnswer:
        query_id = query if isinstance(query, str) else query.id

        def find() -> CallbackAnswer | None:
            return next(
                (a for a in self.answered_callbacks if a.callback_query_id == query_id), None
            )

        return await self._wait(
            find,
            timeout,
            lambda: (
                f"callback query {query_id} not answered within {timeout}s; "
                + self._failures_summary()
            ),
        )

    async def wait_for_delivery(
        self,
        predicate: Callable[[WebhookDelivery], bool] | None = None,
        timeout: float = 10.0,
        *,
        since: int | None = None,
    ) -> WebhookDelivery:
        """The next webhook delivery (successful or not) matching predicate."""
        cursor = since if since is not None else self._delivery_cursor

        def find() -> WebhookDelivery | None:
            for delivery in self.webhook_deliveries:
                if delivery.seq > cursor and (predicate is None or predicate(delivery)):
                    return delivery
            return None

        delivery = await self._wait(
            find,
            timeout,
            lambda: (
                f"no webhook delivery within {timeout}s; webhook={self.webhook}, "
                f"pending={len(self._pending)}"
            ),
        )
        self._delivery_cursor = max(self._delivery_cursor, delivery.seq)
        return delivery

    async def wait_until(self, condition: Callable[[], T], timeout: float = 10.0) -> T:
        """Waits until condition() is truthy (re-checked on every emulator event); returns it."""

        def find() -> T | None:
            value = condition()
            return value if value else None

        return await self._wait(find, timeout, lambda: f"condition not met within {timeout}s")

    # ------------------------------------------------------------------ internals: state

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq

    async def _wait(
        self, find: Callable[[], T | None], timeout: float, describe: Callable[[], str]
    ) -> T:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            changed = self._changed
            found = find()
            if found is not None:
                return found
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise TimeoutError(describe())
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(changed.wait(), remaining)

    def _failures_summary(self) -> str:
        failed = [(c.method, c.status, c.description) for c in self.failed_calls][-5:]
        return f"recent failed API calls: {failed}" if failed else "no failed API calls"

    @staticmethod
    def _chat_id(chat: ChatRef) -> int:
        return chat.id if isinstance(chat, SimUser) else int(chat)

    @staticmethod
    def _canonical(method: str) -> str:
        cls = _METHODS.get(method.lower())
        return cls.__api_method__ if cls is not None else method

    def _chat_of(self, user: SimUser) -> _Chat:
        chat = self._chats.get(user.id)
        if chat is None:
            chat = self._chats[user.id] = _Chat(user)
        else:
            chat.user = user  # a profile change (e.g. language) shows in later updates
        return chat

    def _user_can_write(self, user: SimUser) -> _Chat:
        chat = self._chat_of(user)
        if chat.blocked:
            raise RuntimeError(f"user {user.id} blocked the bot; call unblock_bot() first")
        return chat

    @staticmethod
    def _find(chat: _Chat, message_id: int) -> ChatMessage | None:
        return next((m for m in chat.messages if m.message_id == message_id), None)

    def _resolve_reply(self, chat: _Chat, reply_to: ChatMessage | int | None) -> ChatMessage | None:
        if reply_to is None:
            return None
        message_id = reply_to if isinstance(reply_to, int) else reply_to.message_id
        record = self._find(chat, message_id)
        if record is None:
            raise LookupError(f"no message {message_id} in the chat with user {chat.user.id}")
        return record

    def _add_message(
        self, chat: _Chat, *, sender: User, method: str | None, **fields: Any
    ) -> ChatMessage:
        # Private chats number messages of both sides with one counter.
        record = ChatMessage(
            chat=chat.to_chat(),
            message_id=chat.next_message_id,
            sender=sender,
            date=int(time.time()),
            seq=self._next_seq(),
            method=method,
            # Bot messages: when the request arrived (what Telegram's limits count); users' now.
            at=self._arrived if method is not None else time.monotonic(),
            **fields,
        )
        chat.next_message_id += 1
        chat.messages.append(record)
        self._notify()
        self._observe(record, changed=False)
        return record

    def _observe(self, record: ChatMessage, *, changed: bool) -> None:
        for observer in list(self.observers):
            try:
                observer(record, changed)
            except Exception:  # an observer's bug must not fail the bot's API call
                logger.exception("emulator observer failed")

    def _store_file(
        self,
        content: bytes,
        kind: str,
        filename: str | None,
        mime_type: str | None,
        *,
        width: int = 0,
        height: int = 0,
    ) -> StoredFile:
        number = self._next_file
        self._next_file += 1
        suffix = "." + filename.rsplit(".", 1)[1] if filename and "." in filename else ""
        folder, prefix = ("photos", "AgAC") if kind == "photo" else ("documents", "BQAC")
        stored = StoredFile(
            file_id=f"{prefix}{number:06d}{secrets.token_urlsafe(24)}",
            file_unique_id=f"AQAD{number:06d}{secrets.token_urlsafe(6)}",
            kind=kind,
            content=content,
            filename=filename,
            mime_type=mime_type,
            file_path=f"{folder}/file_{number}{suffix or ('.jpg' if kind == 'photo' else '')}",
            width=width,
            height=height,
        )
        self.files[stored.file_id] = stored
        return stored

    def _new_update_id(self) -> int:
        update_id = self._next_update_id
        self._next_update_id += 1
        return update_id

    def _enqueue(self, update: Update) -> None:
        self.updates.append(update)
        kind = update.event_type
        allowed = self.allowed_updates
        if (allowed and kind not in allowed) or (not allowed and kind in _DEFAULT_EXCLUDED_UPDATES):
            # Telegram never creates updates of types the bot did not ask for.
            self.filtered_updates.append(update)
        else:
            self._pending.append(update)
        self._notify()

    def _enqueue_member_change(self, user: SimUser, *, blocked: bool) -> None:
        member = ChatMemberMember(user=self.bot_user)
        banned = ChatMemberBanned(user=self.bot_user, until_date=0)  # type: ignore[arg-type]
        change = ChatMemberUpdated(
            chat=user.to_chat(),
            from_user=user.to_user(),
            date=int(time.time()),  # type: ignore[arg-type]  # pydantic takes unix time
            old_chat_member=member if blocked else banned,
            new_chat_member=banned if blocked else member,
        )
        self._enqueue(Update(update_id=self._new_update_id(), my_chat_member=change))

    # ------------------------------------------------------------------ internals: HTTP

    async def _handle_api(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").payload(), status=401)
        method = request.match_info["method"]
        arrived = time.monotonic()  # Telegram counts a message against its limits on arrival
        if self.on_call is not None:
            await self.on_call(self._canonical(method))
        try:
            fields, uploads = await self._read_request(request)
        except ApiError as exc:
            self._record(method, {}, None, exc.status, exc.payload(), "http")
            return web.json_response(exc.payload(), status=exc.status)
        status, payload = await self._call(method, fields, uploads, via="http", arrived=arrived)
        return web.json_response(payload, status=status)

    @staticmethod
    async def _read_request(request: web.Request) -> tuple[dict[str, Any], dict[str, UploadedFile]]:
        fields: dict[str, Any] = dict(request.query)
        uploads: dict[str, UploadedFile] = {}
        if request.method != "POST" or not request.body_exists:
            return fields, uploads
        content_type = request.content_type
        if content_type == "application/json":
            try:
                body = await request.json()
            except ValueError:
                raise ApiError(400, "Bad Request: can't parse JSON body") from None
            if not isinstance(body, dict):
                raise ApiError(400, "Bad Request: the JSON body must be an object")
            fields.update(body)
        elif content_type == "multipart/form-data":
            form, uploads = await _read_multipart(await request.multipart())
            fields.update(form)
        elif content_type == "application/x-www-form-urlencoded":
            fields.update({key: str(value) for key, value in (await request.post()).items()})
        return fields, uploads

    async def _handle_file(self, request: web.Request) -> web.StreamResponse:
        if request.match_info["token"] != self.token:
            return web.json_response(ApiError(401, "Unauthorized").payload(), status=401)
        path = request.match_info["path"]
        stored = next((f for f in self.files.values() if f.file_path == path), None)
        if stored is None:
            return web.json_response(ApiError(404, "Not Found").payload(), status=404)
        return web.Response(
            body=stored.content, content_type=stored.mime_type or "application/octet-stream"
        )

    async def _call(
        self,
        name: str,
        fields: Mapping[str, Any],
        uploads: Mapping[str, UploadedFile],
        *,
        via: str,
        arrived: float | None = None,
    ) -> tuple[int, dict[str, Any]]:
        cls = _METHODS.get(name.lower())
        params: dict[str, Any] = dict(fields) | dict(uploads)
        rate_limited = False
        request: TelegramMethod[Any] | None = None
        method = cls.__api_method__ if cls is not None else name
        try:
            if cls is None:
                raise ApiError(404, "Not Found")
            params = _decode_params(cls, fields, uploads)
            handler = self._handlers.get(method)
            if handler is None:
                raise ApiError(501, f"Not Implemented: the emulator does not support {method}")
            try:
                request = cls.model_validate(params)
            except ValidationError as exc:
                raise ApiError(400, _describe_validation_error(exc)) from None
            await self._held(method, params)
            if self._delay and (self._delayed_methods is None or method in self._delayed_methods):
                await asyncio.sleep(self._delay)
            self._raise_injected(method, request)
            self._arrived = arrived or time.monotonic()
            admitted = self._admit(method, request, self._arrived)
            result = await handler(request)
            self._count_sent(admitted)
            payload: dict[str, Any] = {"ok": True, "result": _dump(result)}
            try:
                _response_adapter(cls).validate_python(payload)
            except ValidationError as exc:
                raise EmulatorError(f"{method} built an invalid result: {exc}") from exc
            status = 200
        except _RateLimited as exc:
            status, payload = exc.status, exc.payload()
            rate_limited = True
        except ApiError as exc:
            status, payload = exc.status, exc.payload()
        except Exception:  # an emulator bug: answer 500 and make the test fail at stop()
            self.internal_errors.append(f"{method}: {traceback.format_exc()}")
            logger.exception("emulator failed in %s", method)
            status = 500
            payload = ApiError(500, "Internal Server Error").payload()
        call = self._record(method, params, request, status, payload, via)
        if rate_limited:
            self.rate_limited.append(call)
        return status, payload

    def _record(
        self,
        method: str,
        params: dict[str, Any],
        request: TelegramMethod[Any] | None,
        status: int,
        payload: dict[str, Any],
        via: str,
    ) -> ApiCall:
        call = ApiCall(self._next_seq(), method, params, request, status, payload, via)
        self.calls.append(call)
        if status != 200:
            logger.info("%s -> %s %s", method, status, payload.get("description"))
        self._notify()
        return call

    async def _held(self, method: str, params: dict[str, Any]) -> None:
        for hold in self._holds:
            if hold.method == method and hold.matching(params):
                self.held_calls.append((method, params))
                self._notify()
                await asyncio.Event().wait()  # until the connection or the emulator goes away

    def _raise_injected(self, method: str, request: TelegramMethod[Any]) -> None:
        for fault in self._faults:
            if method in fault.methods and (
                fault.chat_id is None or _chat_id_of(request) == fault.chat_id
            ):
                if fault.after > 0:
                    fault.after -= 1
                    return
                fault.times -= 1
                if fault.times <= 0:
                    self._faults.remove(fault)
                raise fault.error

    def _admit(
        self, method: str, request: TelegramMethod[Any], now: float
    ) -> tuple[int, collections.deque[float], float] | None:
        """Telegram's limits: None if not counted, else what to record once the send succeeds;
        raises 429 (with retry_after) if the send would exceed a limit."""
        chat_id = _chat_id_of(request)
        if self.limits is None or method not in _COUNTED_SENDS or chat_id is None:
            return None
        cost = max(
            len(getattr(request, "media", None) or getattr(request, "message_ids", None) or [0]), 1
        )
        per_chat = self.limits.per_private_chat if chat_id > 0 else self.limits.per_group
        chat_sent = self._sent_to.setdefault(chat_id, collections.deque())
        for sent, (limit, window) in ((self._sent, self.limits.per_bot), (chat_sent, per_chat)):
            while sent and sent[0] <= now - window:
                sent.popleft()
            if len(sent) + cost > limit:
                wait = sent[max(len(sent) + cost - limit - 1, 0)] + window - now
                retry_after = max(math.ceil(wait), 1)
                raise _RateLimited(
                    429, f"Too Many Requests: retry after {retry_after}", retry_after=retry_after
                )
        return cost, chat_sent, now

    def _count_sent(self, admitted: tuple[int, collections.deque[float], float] | None) -> None:
        if admitted is None:
            return
        cost, chat_sent, now = admitted
        for sent in (self._sent, chat_sent):
            out_of_order = bool(sent) and sent[-1] > now  # an upload read slower than the next
            sent.extend([now] * cost)
            if out_of_order:
                ordered = sorted(sent)
                sent.clear()
                sent.extend(ordered)

    async def _deliver_webhooks(self) -> None:
        """POSTs pending updates to the webhook, as Telegram does: up to the webhook's
        max_connections (40 by default) at once, one update of a chat at a time so a chat's
        updates arrive in order (no retries; `redeliver` sends one again)."""
        in_flight: dict[asyncio.Task[None], int | None] = {}
        try:
            while True:
                changed = self._changed
                hook = self.webhook
                limit = (hook.max_connections or 40) if hook else 0
                busy = {chat for chat in in_flight.values() if chat is not None}
                ready = next(
                    (
                        index
                        for index, update in enumerate(self._pending)
                        if _update_chat_id(update) not in busy
                    ),
                    None,
                )
                if hook is None or ready is None or len(in_flight) >= limit:
                    await changed.wait()
                    continue
                update = self._pending.pop(ready)
                task = asyncio.create_task(self._deliver_webhook(hook, update))
                in_flight[task] = _update_chat_id(update)
                task.add_done_callback(self._delivered(in_flight))
        finally:
            for task in list(in_flight):
                task.cancel()

    def _delivered(
        self, in_flight: dict[asyncio.Task[None], int | None]
    ) -> Callable[[asyncio.Task[None]], None]:
        def done(task: asyncio.Task[None]) -> None:
            in_flight.pop(task, None)
            self._notify()  # the chat may take its next update

        return done

    async def _deliver_webhook(self, hook: WebhookConfig, update: Update) -> None:
        assert self._http is not None
        secret = hook.secret_token
        headers = {"X-Telegram-Bot-Api-Secret-Token": secret} if secret else {}
        status: int | None = None
        error: str | None = None
        reply: tuple[dict[str, Any], dict[str, UploadedFile]] | None = None
        try:
            async with self._http.post(hook.url, json=_dump(update), headers=headers) as response:
                status = response.status
                if status == 200:
                    reply = await self._read_webhook_reply(response)
                else:
                    error = f"Wrong response from the webhook: {status} {response.reason}"
        except (aiohttp.ClientError, TimeoutError) as exc:
            error = f"{type(exc).__name__}: {exc}"
        if error is not None:
            self._last_webhook_error = (int(time.time()), error)
        self.webhook_deliveries.append(
            WebhookDelivery(self._next_seq(), update, hook.url, status, error)
        )
        self._notify()
        if reply is not None and "method" in reply[0]:
            # Telegram executes a method returned in the webhook response, result unseen.
            fields, uploads = reply
            await self._call(str(fields.pop("method")), fields, uploads, via="webhook-reply")

    @staticmethod
    async def _read_webhook_reply(
        response: aiohttp.ClientResponse,
    ) -> tuple[dict[str, Any], dict[str, UploadedFile]] | None:
        with contextlib.suppress(ValueError, aiohttp.ClientError):
            if response.content_type == "application/json":
                body = await response.json()
                return (body, {}) if isinstance(body, dict) else None
            if response.content_type == "multipart/form-data":
                fields, uploads = await _read_multipart(
                    aiohttp.MultipartReader(response.headers, response.content)
                )
                return dict(fields), uploads
        return None

    # ------------------------------------------------------------------ internals: validation

    def _target_chat(self, chat_id: int | str | None) -> _Chat:
        if isinstance(chat_id, str) and chat_id.lstrip("-").isdigit():
            chat_id = int(chat_id)
        chat = self._chats.get(chat_id) if isinstance(chat_id, int) else None
        if chat is None:
            raise ApiError(400, "Bad Request: chat not found")
        if chat.blocked:
            raise ApiError(403, "Forbidden: bot was blocked by the user")
        return chat

    def _format(
        self,
        text: str,
        parse_mode: str | Default | None,
        entities: list[MessageEntity] | None,
        *,
        limit: int,
        what: str,
    ) -> tuple[str, list[MessageEntity], str | None]:
        """Applies the parse mode; returns plain text, entities and the parse mode used."""
        mode = _given(parse_mode)
        if entities:
            plain, parsed, mode = text, list(entities), None  # explicit entities win
        elif not mode:
            plain, parsed, mode = text, [], None
        elif mode.lower() == "html":
            plain, parsed = parse_html(text)
            mode = ParseMode.HTML.value
        elif mode.lower() in ("markdown", "markdownv2"):
            plain, parsed = text, []  # not parsed by the emulator: stored as sent
        else:
            raise ApiError(400, "Bad Request: unsupported parse_mode")
        plain, parsed = _trim(plain, parsed)
        if what == "text" and not plain:
            raise ApiError(400, "Bad Request: message text is empty")
        if utf16_len(plain) > limit:
            too_long = "message caption" if what == "caption" else "message"
            raise ApiError(400, f"Bad Request: {too_long} is too long")
        return plain, parsed, mode

    @staticmethod
    def _check_markup(markup: ReplyMarkup | None) -> ReplyMarkup | None:
        if not isinstance(markup, InlineKeyboardMarkup):
            return markup
        for row in markup.inline_keyboard:
            for button in row:
                if not button.text:
                    raise ApiError(
                        400, "Bad Request: can't parse inline keyboard button: text is empty"
                    )
                if not button.model_dump(exclude_none=True, exclude=set(_BUTTON_LOOKS)):
                    raise ApiError(
                        400,
                        "Bad Request: can't parse inline keyboard button: "
                        "Text buttons are unallowed in the inline keyboard",
                    )
                if button.callback_data is not None and not (
                    1 <= len(button.callback_data.encode()) <= MAX_CALLBACK_DATA
                ):
                    raise ApiError(400, "Bad Request: BUTTON_DATA_INVALID")
        return markup

    def _reply_target(
        self, chat: _Chat, parameters: ReplyParameters | None, legacy_id: int | None
    ) -> ChatMessage | None:
        if parameters is None and legacy_id is None:
            return None
        message_id = parameters.message_id if parameters is not None else legacy_id
        assert message_id is not None
        record = self._find(chat, message_id)
        if record is None or record.deleted:
            if parameters is not None and parameters.allow_sending_without_reply:
                return None
            raise ApiError(400, "Bad Request: message to be replied not found")
        return record

    def _bot_message_to_edit(
        self, chat_id: int | str | None, message_id: int | None, inline_message_id: str | None
    ) -> ChatMessage:
        if inline_message_id is not None:
            raise ApiError(400, "Bad Request: inline messages are not supported by the emulator")
        if chat_id is None or message_id is None:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        record = self._find(self._target_chat(chat_id), message_id)
        if record is None or record.deleted:
            raise ApiError(400, "Bad Request: message to edit not found")
        if not record.from_bot:
            raise ApiError(400, "Bad Request: message can't be edited")
        return record

    @staticmethod
    def _replace_inline_keyboard(record: ChatMessage, markup: ReplyMarkup | None) -> None:
        # Edits carry inline keyboards only. One not repeated in an edit is dropped (as on
        # Telegram); a reply keyboard sent with the message is not the edit's business.
        if markup is not None or isinstance(record.reply_markup, InlineKeyboardMarkup):
            record.reply_markup = markup

    def _input_file(self, value: InputFile | str, kind: str) -> StoredFile:
        if isinstance(value, BufferedInputFile):
            if not value.data:
                raise ApiError(400, "Bad Request: file must be non-empty")
            filename = value.filename or kind
            if kind == "photo":
                size = _image_size(value.data)
                if size is None:
                    raise ApiError(400, "Bad Request: IMAGE_PROCESS_FAILED")
                return self._store_file(
                    value.data, "photo", None, "image/jpeg", width=size[0], height=size[1]
                )
            content_type = getattr(value, "content_type", None)
            if not content_type or content_type == "application/octet-stream":
                content_type = mimetypes.guess_type(filename)[0] or "application/octet-stream"
            return self._store_file(value.data, "document", filename, content_type)
        if isinstance(value, str):
            if value.startswith(("http://", "https://")):
                # The emulator never fetches URLs: that would be traffic beyond loopback.
                raise ApiError(400, "Bad Request: failed to get HTTP URL content")
            if value in self.files:
                return self.files[value]
        raise ApiError(400, "Bad Request: wrong file identifier/HTTP URL specified")

    # ------------------------------------------------------------------ method handlers

    async def _get_me(self, _: GetMe) -> User:
        return self.bot_user.model_copy(
            update={
                "can_join_groups": True,
                "can_read_all_group_messages": False,
                "supports_inline_queries": False,
                "can_connect_to_business": False,
                "has_main_web_app": False,
            }
        )

    async def _get_updates(self, m: GetUpdates) -> list[Update]:
        if self.webhook is not None:
            raise ApiError(409, WEBHOOK_CONFLICT)
        if m.allowed_updates is not None:
            self.allowed_updates = list(m.allowed_updates) or None
        offset = m.offset or 0
        if offset > 0:
            self._pending = [u for u in self._pending if u.update_id >= offset]
        elif offset < 0:
            self._pending = self._pending[offset:]
        limit = min(max(m.limit or 100, 1), 100)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + max(m.timeout or 0, 0)
        # A newer getUpdates terminates an older one still waiting, as on Telegram.
        self._poll_generation += 1
        generation = self._poll_generation
        self._waiting_polls += 1
        self._notify()  # wakes the older poll, and shows tests that the bot polls (emu.polling)
        try:
            while True:
                changed = self._changed
                if self._closing:
                    return []
                if generation != self._poll_generation:
                    raise ApiError(409, POLLING_CONFLICT)
                if self.webhook is not None:
                    raise ApiError(409, WEBHOOK_CONFLICT)
                if self._pending:
                    # Returned updates stay pending until a later call confirms them by offset.
                    return self._pending[:limit]
                remaining = deadline - loop.time()
                if remaining <= 0:
                    return []
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(changed.wait(), remaining)
        finally:
            self._waiting_polls -= 1

    async def _set_webhook(self, m: SetWebhook) -> bool:
        if not m.url:
            return await self._delete_webhook(
                DeleteWebhook(drop_pending_updates=m.drop_pending_updates)
            )
        if not _is_loopback(m.url):
            raise ApiError(
                400, "Bad Request: bad webhook: the emulator delivers to loopback URLs only"
            )
        if m.secret_token is not None and not _SECRET_TOKEN.fullmatch(m.secret_token):
            raise ApiError(400, "Bad Request: secret token contains unallowed characters")
        if m.drop_pending_updates:
            self._pending.clear()
        if m.allowed_updates is not None:
            self.allowed_updates = list(m.allowed_updates) or None
        self.webhook = WebhookConfig(m.url, m.secret_token, m.max_connections, m.ip_address)
        self._last_webhook_error = None
        self._notify()  # wakes the delivery task, and turns waiting getUpdates into 409s
        return True

    async def _delete_webhook(self, m: DeleteWebhook) -> bool:
        self.webhook = None
        if m.drop_pending_updates:
            self._pending.clear()
        self._notify()
        return True

    async def _get_webhook_info(self, _: GetWebhookInfo) -> WebhookInfo:
        hook = self.webhook
        error_date, error_message = self._last_webhook_error or (None, None)
        return WebhookInfo(
            url=hook.url if hook else "",
            has_custom_certificate=False,
            pending_update_count=len(self._pending),
            ip_address=hook.ip_address if hook else None,
            last_error_date=error_date if hook else None,  # type: ignore[arg-type]
            last_error_message=error_message if hook else None,
            max_connections=(hook.max_connections or 40) if hook else None,
            allowed_updates=self.allowed_updates if hook else None,
        )

    async def _send_message(self, m: SendMessage) -> Message:
        chat = self._target_chat(m.chat_id)
        text, entities, mode = self._format(
            m.text, m.parse_mode, m.entities, limit=MAX_TEXT, what="text"
        )
        markup = self._check_markup(m.reply_markup)
        reply_to = self._reply_target(chat, m.reply_parameters, m.reply_to_message_id)
        if isinstance(markup, ReplyKeyboardMarkup):
            chat.reply_keyboard = markup
        elif isinstance(markup, ReplyKeyboardRemove):
            chat.reply_keyboard = None
        record = self._add_message(
            chat,
            sender=self.bot_user,
            method="sendMessage",
            text=text,
            raw_text=m.text,
            entities=entities,
            parse_mode=mode,
            reply_markup=markup,
            reply_to=reply_to,
        )
        return record.to_message()

    async def _edit_message_text(self, m: EditMessageText) -> Message:
        record = self._bot_message_to_edit(m.chat_id, m.message_id, m.inline_message_id)
        if record.text is None:
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        text, entities, mode = self._format(
            m.text or "", m.parse_mode, m.entities, limit=MAX_TEXT, what="text"
        )
        markup = self._check_markup(m.reply_markup)
        if _same((text, entities, markup), (record.text, record.entities, record.inline_keyboard)):
            raise ApiError(400, NOT_MODIFIED)
        record.versions.append(record.text)
        record.text, record.raw_text = text, m.text
        record.entities, record.parse_mode = entities, mode
        self._replace_inline_keyboard(record, markup)
        record.edit_date = int(time.time())
        self._notify()
        self._observe(record, changed=True)
        return record.to_message()

    async def _edit_message_caption(self, m: EditMessageCaption) -> Message:
        record = self._bot_message_to_edit(m.chat_id, m.message_id, m.inline_message_id)
        if record.file is None:
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        caption, entities, mode = self._format(
            m.caption or "", m.parse_mode, m.caption_entities, limit=MAX_CAPTION, what="caption"
        )
        markup = self._check_markup(m.reply_markup)
        unchanged = (caption or None, entities, markup)
        if _same(unchanged, (record.caption, record.caption_entities, record.inline_keyboard)):
            raise ApiError(400, NOT_MODIFIED)
        record.versions.append(record.caption)
        record.caption, record.raw_caption = caption or None, m.caption
        record.caption_entities, record.parse_mode = entities, mode
        self._replace_inline_keyboard(record, markup)
        record.edit_date = int(time.time())
        self._notify()
        self._observe(record, changed=True)
        return record.to_message()

    async def _edit_message_reply_markup(self, m: EditMessageReplyMarkup) -> Message:
        record = self._bot_message_to_edit(m.chat_id, m.message_id, m.inline_message_id)
        markup = self._check_markup(m.reply_markup)
        if _same(markup, record.inline_keyboard):
            raise ApiError(400, NOT_MODIFIED)
        self._replace_inline_keyboard(record, markup)
        record.edit_date = int(time.time())
        self._notify()
        self._observe(record, changed=True)
        return record.to_message()

    async def _delete_message(self, m: DeleteMessage) -> bool:
        # Bots may delete both sides of a private chat.
        record = self._find(self._target_chat(m.chat_id), m.message_id)
        if record is None or record.deleted:
            raise ApiError(400, "Bad Request: message to delete not found")
        record.deleted = True
        self._notify()
        self._observe(record, changed=True)
        return True

    async def _answer_callback_query(self, m: AnswerCallbackQuery) -> bool:
        query_id = m.callback_query_id
        if query_id not in self.callback_queries or query_id in self._answered_ids:
            raise ApiError(400, QUERY_INVALID)
        if m.text is not None and len(m.text) > 200:
            raise ApiError(400, "Bad Request: MESSAGE_TOO_LONG")
        self._answered_ids.add(query_id)
        self.answered_callbacks.append(
            CallbackAnswer(
                self._next_seq(), query_id, m.text, bool(m.show_alert), m.url, m.cache_time
            )
        )
        self._notify()
        return True

    @staticmethod
    def _language(code: str | None) -> str:
        if code and not _LANGUAGE_CODE.fullmatch(code):
            raise ApiError(400, "Bad Request: invalid language code specified")
        return code or ""

    async def _set_my_commands(self, m: SetMyCommands) -> bool:
        if len(m.commands) > 100:
            raise ApiError(400, "Bad Request: too many commands")
        for command in m.commands:
            if not _COMMAND_NAME.fullmatch(command.command):
                raise ApiError(400, "Bad Request: BOT_COMMAND_INVALID")
            if not 1 <= len(command.description) <= 256:
                raise ApiError(400, "Bad Request: BOT_COMMAND_DESCRIPTION_INVALID")
        key = (_scope_key(m.scope), self._language(m.language_code))
        if m.commands:
            self.commands[key] = list(m.commands)
        else:
            self.commands.pop(key, None)  # an empty list deletes, as on Telegram
        self._notify()
        return True

    async def _get_my_commands(self, m: GetMyCommands) -> list[BotCommand]:
        return list(self.commands.get((_scope_key(m.scope), self._language(m.language_code)), []))

    async def _delete_my_commands(self, m: DeleteMyCommands) -> bool:
        self.commands.pop((_scope_key(m.scope), self._language(m.language_code)), None)
        self._notify()
        return True

    async def _send_chat_action(self, m: SendChatAction) -> bool:
        self._target_chat(m.chat_id)
        if m.action not in _CHAT_ACTIONS:
            raise ApiError(400, "Bad Request: wrong parameter action in request")
        return True

    async def _send_file(
        self,
        method: str,
        chat_id: int | str,
        value: InputFile | str,
        kind: str,
        caption: str | None,
        parse_mode: str | Default | None,
        caption_entities: list[MessageEntity] | None,
        reply_markup: ReplyMarkup | None,
        reply_to: tuple[ReplyParameters | None, int | None],
    ) -> Message:
        chat = self._target_chat(chat_id)
        stored = self._input_file(value, kind)
        if stored.kind != kind:
            raise ApiError(400, f"Bad Request: can't use file of type {stored.kind} as {kind}")
        plain, entities, mode = self._format(
            caption or "", parse_mode, caption_entities, limit=MAX_CAPTION, what="caption"
        )
        record = self._add_message(
            chat,
            sender=self.bot_user,
            method=method,
            file=stored,
            caption=plain or None,
            raw_caption=caption,
            caption_entities=entities,
            parse_mode=mode,
            reply_markup=self._check_markup(reply_markup),
            reply_to=self._reply_target(chat, *reply_to),
        )
        return record.to_message()

    async def _send_document(self, m: SendDocument) -> Message:
        return await self._send_file(
            "sendDocument", m.chat_id, m.document, "document", m.caption, m.parse_mode,
            m.caption_entities, m.reply_markup, (m.reply_parameters, m.reply_to_message_id),
        )  # fmt: skip

    async def _send_photo(self, m: SendPhoto) -> Message:
        return await self._send_file(
            "sendPhoto", m.chat_id, m.photo, "photo", m.caption, m.parse_mode,
            m.caption_entities, m.reply_markup, (m.reply_parameters, m.reply_to_message_id),
        )  # fmt: skip

    async def _get_file(self, m: GetFile) -> File:
        stored = self.files.get(m.file_id)
        if stored is None:
            raise ApiError(400, "Bad Request: invalid file_id")
        if stored.size > MAX_DOWNLOAD:
            raise ApiError(400, "Bad Request: file is too big")
        return stored.as_file()

    async def _close(self, _: Close) -> bool:
        return True

    async def _log_out(self, _: LogOut) -> bool:
        return True
