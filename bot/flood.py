"""Per-user flood control: at most FLOOD_MESSAGES updates (messages, button presses) from one
person in any FLOOD_WINDOW_SECONDS.

A moving window of the `limits` library, in the storage Telegram's limits use (Redis, else the
SQL database: bot/telegram_limits.py), so it holds across every process. An update over the
limit is not handled: its sender is told once per window, politely, how long to wait; further
updates in that window are dropped without a word (answering each would be the flood again).
Nothing already accepted is touched: a ticket filed stays filed, a draft stays as it was.

Requests filed an hour have their own limit, counted from the tickets (services/intake.py).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import CallbackQuery, Message, TelegramObject, User
from aiogram.utils.i18n import gettext as _
from limits import RateLimitItemPerSecond
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter

from bot.middlewares import Handler

logger = logging.getLogger(__name__)


class FloodControlMiddleware(BaseMiddleware):
    """Registered on messages and callback queries, after the locale is known."""

    def __init__(self, storage: Storage, *, messages: int, window_seconds: int) -> None:
        self._storage = storage
        self._strategy = MovingWindowRateLimiter(storage)
        self._item = RateLimitItemPerSecond(messages, window_seconds)
        self._window = window_seconds

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is None or user.is_bot:
            return await handler(event, data)
        if await self._strategy.hit(self._item, "flood", str(user.id)):
            return await handler(event, data)
        stats = await self._strategy.get_window_stats(self._item, "flood", str(user.id))
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        # One answer per window: the counter lives as long as the window.
        told = await self._storage.incr(f"flood/told/{user.id}", self._window)
        if told == 1:
            logger.warning("user %s sends too fast: updates dropped for %s s", user.id, wait)
            text = _("You are sending too fast. Please wait {seconds} s and try again.").format(
                seconds=wait
            )
            if isinstance(event, CallbackQuery):
                await event.answer(text, show_alert=True)
            elif isinstance(event, Message):
                await event.answer(text)
        elif isinstance(event, CallbackQuery):
            await event.answer()  # stops the button's spinner, says nothing
        return None
