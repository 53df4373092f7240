"""Outer update middlewares: bounded concurrency, a DB session per update, the merchant, and their
language."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from aiogram import BaseMiddleware
from aiogram.types import Chat, TelegramObject, User
from aiogram.utils.i18n import I18n, I18nMiddleware
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.metrics import Metrics, update_type
from bot.transactions import session_for_update
from services import merchants, notices

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class ConcurrencyLimitMiddleware(BaseMiddleware):
    """At most `limit` updates are handled at once, in polling and webhook mode alike; the rest
    wait their turn instead of all competing for the connection pool. Registered after aiogram's
    FSM middleware, so an update waiting for its own chat's previous one holds no slot."""

    def __init__(self, limit: int) -> None:
        self._slots = asyncio.Semaphore(limit)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        async with self._slots:
            return await handler(event, data)


class UpdateMetricsMiddleware(BaseMiddleware):
    """Counts each update by its type and times its handling (frontdesk_updates,
    frontdesk_update_handling_seconds); an update whose handler raised is counted too."""

    def __init__(self, metrics: Metrics) -> None:
        self._metrics = metrics

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        started = time.perf_counter()
        try:
            return await handler(event, data)
        finally:
            self._metrics.update_handled(update_type(event), time.perf_counter() - started)


class DbSessionMiddleware(BaseMiddleware):
    """A session per update, which holds a connection only between the update's Telegram calls
    (bot/transactions.py)."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        async with session_for_update(self._sessionmaker) as session:
            data["session"] = session
            return await handler(event, data)


class MerchantMiddleware(BaseMiddleware):
    """Every human who talks to the bot is a merchant record (their language lives there).

    A person who writes can be written to: if Telegram had refused their chat (they had blocked
    the bot), the notices held for them go out again.
    """

    def __init__(self, on_reachable: Callable[[], None] | None = None) -> None:
        self._on_reachable = on_reachable or (lambda: None)

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        user: User | None = data.get("event_from_user")
        if user is not None and not user.is_bot:
            session = data["session"]
            arrival = await merchants.arrive(
                session, telegram_id=user.id, full_name=user.full_name, username=user.username
            )
            data["merchant"] = arrival.merchant
            if arrival.unreachable_since is not None:
                await notices.back_in_reach(session, user.id, arrival.unreachable_since)
                self._on_reachable()
        chat: Chat | None = data.get("event_chat")
        if chat is not None and chat.type in ("group", "supergroup"):
            # A staff group that had removed the bot and added it back (the service message
            # comes here): its held announcements go out, and new ones are routed to it again.
            if await notices.mark_reachable(data["session"], chat.id):
                self._on_reachable()
        return await handler(event, data)


class LocaleMiddleware(I18nMiddleware):
    """The language chosen with /language, else Telegram's language if we have it, else default."""

    def __init__(self, i18n: I18n) -> None:
        super().__init__(i18n=i18n)

    async def get_locale(self, event: TelegramObject, data: dict[str, Any]) -> str:
        merchant = data.get("merchant")
        if merchant is not None and merchant.locale in self.i18n.available_locales:
            return merchant.locale
        user: User | None = data.get("event_from_user")
        if user is not None and user.language_code:
            language = user.language_code.split("-")[0].lower()
            if language in self.i18n.available_locales:
                return language
        return self.i18n.default_locale
