"""What a merchant's message carries for a ticket: its text (or caption) and its file, and
albums gathered into one piece (Telegram sends an album as one message per item, close together).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiogram.types import Message

from services.files import FileKind, FileRef

logger = logging.getLogger(__name__)

# How long after an album's last item it is taken as complete.
ALBUM_QUIET_SECONDS = 0.8


@dataclass
class Content:
    text: str = ""
    files: list[FileRef] = field(default_factory=list)
    message_ids: list[int] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        return not self.text.strip() and not self.files

    def add(self, message: Message) -> None:
        text = message.text or message.caption or ""
        if text.strip():
            self.text = f"{self.text}\n\n{text}" if self.text else text
        ref = file_ref(message)
        if ref is not None:
            self.files.append(ref)
        self.message_ids.append(message.message_id)


def file_ref(message: Message) -> FileRef | None:
    if message.photo:
        photo = message.photo[-1]  # the largest size
        return FileRef(
            file_id=photo.file_id,
            file_unique_id=photo.file_unique_id,
            kind=FileKind.PHOTO,
            filename=f"photo_{message.message_id}.jpg",
            content_type="image/jpeg",
            size=photo.file_size,
        )
    if message.document:
        document = message.document
        return FileRef(
            file_id=document.file_id,
            file_unique_id=document.file_unique_id,
            kind=FileKind.DOCUMENT,
            filename=document.file_name or f"file_{message.message_id}",
            content_type=document.mime_type or "application/octet-stream",
            size=document.file_size,
        )
    return None


def content_of(message: Message) -> Content:
    content = Content()
    content.add(message)
    return content


def carries_content(message: Message) -> bool:
    return bool(message.text or message.caption or message.photo or message.document)


class Albums:
    """Gathers an album's items, then hands the whole album on once, after a quiet moment.

    Each item arrives as its own update; an update's handler returns at once (the chat's next
    update waits for it), and the album is handed on by a task once no item came for
    ALBUM_QUIET_SECONDS. In memory: an album is seconds long, and a restart in between loses
    only the unconfirmed album, which the merchant sees was not confirmed.
    """

    def __init__(self, quiet: float = ALBUM_QUIET_SECONDS) -> None:
        self._quiet = quiet
        self._albums: dict[tuple[int, str], Content] = {}
        self._timers: dict[tuple[int, str], asyncio.Task[None]] = {}

    def add(self, message: Message, on_complete: Callable[[Content], Awaitable[None]]) -> None:
        key = (message.chat.id, message.media_group_id or "")
        self._albums.setdefault(key, Content()).add(message)
        previous = self._timers.pop(key, None)
        if previous is not None:
            previous.cancel()
        self._timers[key] = asyncio.create_task(
            self._complete(key, on_complete), name=f"album-{key[0]}-{key[1]}"
        )

    async def _complete(
        self, key: tuple[int, str], on_complete: Callable[[Content], Awaitable[None]]
    ) -> None:
        await asyncio.sleep(self._quiet)
        self._timers.pop(key, None)
        content = self._albums.pop(key, None)
        if content is None:
            return
        try:
            await on_complete(content)
        except Exception:
            logger.exception("album %s of chat %s was not handled", key[1], key[0])
