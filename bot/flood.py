"""Per-user flood control: at most FLOOD_MESSAGES updates (messages, button presses) from one
person in a window of FLOOD_WINDOW_SECONDS.

A fixed window of the `limits` library, in the storage Telegram's limits use (Redis, else the
SQL database: bot/telegram_limits.py), so it holds across every process. Fixed, not moving: one
counter increment per update (one statement), where a moving window costs three and doubled the
time a crowd of 200 merchants took on SQLite; a burst across a window's edge may reach twice
the limit, which is fine for politeness (Telegram's own limits stay exact, in the limiter).

An update over the limit is not handled: its sender is told once per window, politely, how
long to wait; further updates in that window are dropped without a word (answering each would
be the flood again). Nothing already accepted is touched: a ticket filed stays filed, a draft
stays as it was.

It runs before the update's database session opens (an update never holds two connections: the
check takes one of its own for a moment), so it speaks the sender's Telegram language rather
than the one chosen with /language, which lives in the database.

Requests filed an hour have their own limit, counted from the tickets (services/intake.py).
"""

from __future__ import annotations

import logging
import math
import time
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import TelegramObject, Update, User
from aiogram.utils.i18n import I18n
from limits import RateLimitItemPerSecond
from limits.aio.storage import Storage
from limits.aio.strategies import FixedWindowRateLimiter

from bot.middlewares import Handler

logger = logging.getLogger(__name__)


def N_(message: str) -> str:
    """Marks a message for extraction; translated when sent, in the sender's language."""
    return message


TOO_FAST = N_("You are sending too fast. Please wait {seconds} s and try again.")


class FloodControlMiddleware(BaseMiddleware):
    """An outer update middleware, before the database session's: counts messages and button
    presses, lets everything else through."""

    def __init__(self, storage: Storage, i18n: I18n, *, messages: int, window_seconds: int) -> None:
        self._storage = storage
        self._i18n = i18n
        self._strategy = FixedWindowRateLimiter(storage)
        self._item = RateLimitItemPerSecond(messages, window_seconds)
        self._window = window_seconds

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        counted = isinstance(event, Update) and (
            event.message is not None or event.callback_query is not None
        )
        if not counted or user is None or user.is_bot:
            return await handler(event, data)
        if await self._strategy.hit(self._item, "flood", str(user.id)):
            return await handler(event, data)
        assert isinstance(event, Update)
        stats = await self._strategy.get_window_stats(self._item, "flood", str(user.id))
        wait = max(1, math.ceil(stats.reset_time - time.time()))
        # One answer per window: the counter lives as long as the window.
        told = await self._storage.incr(f"flood/told/{user.id}", self._window)
        if told == 1:
            logger.warning("user %s sends too fast: updates dropped for %s s", user.id, wait)
            text = self._i18n.gettext(TOO_FAST, locale=self._locale(user)).format(seconds=wait)
            if event.callback_query is not None:
                await event.callback_query.answer(text, show_alert=True)
            elif event.message is not None:
                await event.message.answer(text)
        elif event.callback_query is not None:
            await event.callback_query.answer()  # stops the button's spinner, says nothing
        return None

    def _locale(self, user: User) -> str:
        language = (user.language_code or "").split("-")[0].lower()
        return language if language in self._i18n.available_locales else self._i18n.default_locale
