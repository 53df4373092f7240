"""Files a merchant sends (to a new request or a reply), as frontdesk keeps them until they
reach the queue.

Telegram keeps the content; frontdesk keeps a reference (`FileRef`) and reads the bytes only
when it files them, through a `FileSource` the bot provides (bot/telegram_files.py). So a
draft or an outbox row stays small, and services never call Telegram themselves.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum
from typing import Protocol

from pydantic import BaseModel, Field

# The Bot API's getFile serves files up to 20 MB; a bigger file cannot be read by a bot.
MAX_FILE_BYTES = 20 * 1024 * 1024
# Files a ticket (or one reply) takes: a Telegram album holds 10, so one album fits.
MAX_FILES = 10


class FileKind(StrEnum):
    PHOTO = "photo"
    DOCUMENT = "document"


class FileRef(BaseModel):
    """A file the merchant sent: enough to read it later and to show what it is."""

    file_id: str
    # Stable across bots and time: the same photo sent twice is one file.
    file_unique_id: str
    kind: FileKind
    filename: str
    content_type: str = "application/octet-stream"
    size: int | None = Field(default=None, ge=0)


class FileUnavailable(Exception):
    """The file cannot be read (any more): too big for the Bot API, or gone."""


class FileSource(Protocol):
    """Reads the content of a file the merchant sent. Transient failures raise anything else
    (the caller retries); a file that can never be read raises FileUnavailable."""

    async def read(self, ref: FileRef) -> bytes: ...


class FileRefusal(StrEnum):
    """Why a file is not attached."""

    TOO_BIG = "too_big"  # over MAX_FILE_BYTES: a bot cannot download it
    TOO_MANY = "too_many"  # MAX_FILES are attached already
    DUPLICATE = "duplicate"  # the same file (file_unique_id) is attached already
    UNSUPPORTED = "unsupported"  # not a photo nor a document (a sticker, a voice message, ...)


def refusal_for(attached: Sequence[FileRef], candidate: FileRef) -> FileRefusal | None:
    """Whether `candidate` may join the files `attached` so far; None when it may."""
    if candidate.size is not None and candidate.size > MAX_FILE_BYTES:
        return FileRefusal.TOO_BIG
    if any(ref.file_unique_id == candidate.file_unique_id for ref in attached):
        return FileRefusal.DUPLICATE
    if len(attached) >= MAX_FILES:
        return FileRefusal.TOO_MANY
    return None
