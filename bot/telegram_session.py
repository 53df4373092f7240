"""aiogram's HTTP session, with the parsed response models kept alive.

aiogram parses every Bot API answer with `Response[method.__returning__]`, a pydantic generic
model that pydantic caches only weakly: after a garbage collection reaches it, the next call
builds `Response[Message]` again, about 4 ms of CPU each time (measured here; 0.3 ms with the
model kept), which under load was a twelfth of the bot's CPU. Holding one reference per return
type keeps pydantic's cache warm; there are a few dozen such types at most.
"""

from __future__ import annotations

from typing import Any, ClassVar

from aiogram import Bot
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.methods import Response, TelegramMethod
from aiogram.methods.base import TelegramType


class PinnedResponsesSession(AiohttpSession):
    _pinned: ClassVar[dict[Any, type[Response[Any]]]] = {}

    def check_response(
        self, bot: Bot, method: TelegramMethod[TelegramType], status_code: int, content: str
    ) -> Response[TelegramType]:
        returning = method.__returning__
        if returning not in self._pinned:
            self._pinned[returning] = Response[returning]  # type: ignore[valid-type]
        return super().check_response(bot, method, status_code, content)
