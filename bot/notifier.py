"""Tells merchants in Telegram what the filing worker did, and what specialists did in the queue
(the sync), in the language they filed in."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import TypeVar

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import BufferedInputFile
from aiogram.utils.i18n import I18n

from handlers import texts
from services.db.base import utcnow
from services.filing import Delayed, Registered
from services.sync import (
    Assigned,
    Deleted,
    DeliveryDeferred,
    Merged,
    Moved,
    Reply,
    StatusChanged,
)

logger = logging.getLogger(__name__)

T = TypeVar("T")

# What the Bot API lets a bot upload.
DOCUMENT_LIMIT = 50 * 1000 * 1000
# A short wait Telegram asks for (429) is waited out here; a longer one puts the event off.
_RETRY_AFTER_LIMIT = 10
_NETWORK_RETRY_DELAYS = (1.0, 3.0)


class TelegramFilingNotifier:
    def __init__(self, bot: Bot, i18n: I18n) -> None:
        self._bot = bot
        self._i18n = i18n

    def _locale(self, locale: str) -> str:
        return locale if locale in self._i18n.available_locales else self._i18n.default_locale

    async def registered(self, notice: Registered) -> None:
        locale = self._locale(notice.locale)
        with self._i18n.context(), self._i18n.use_locale(locale):
            text = texts.registered(notice, utcnow(), locale)
        await self._bot.send_message(notice.telegram_id, text)

    async def delayed(self, notice: Delayed) -> None:
        with self._i18n.context(), self._i18n.use_locale(self._locale(notice.locale)):
            text = texts.delayed(notice)
        await self._bot.send_message(notice.telegram_id, text)


class TelegramSyncNotifier:
    """The sync's notices (services/sync.py) in the merchant's chat.

    Telegram failing for a moment (network, 5xx, a long 429) raises DeliveryDeferred, so the
    event is applied again later; a refusal for good (the merchant blocked the bot, the chat is
    gone) is logged and the event counts as told.
    """

    def __init__(self, bot: Bot, i18n: I18n) -> None:
        self._bot = bot
        self._i18n = i18n

    def _locale(self, locale: str) -> str:
        return locale if locale in self._i18n.available_locales else self._i18n.default_locale

    async def reply(self, notice: Reply) -> None:
        chat = notice.ticket.telegram_id
        with self._i18n.context(), self._i18n.use_locale(self._locale(notice.ticket.locale)):
            messages = texts.queue_reply(notice)
            too_large = {
                a.filename: texts.attachment_too_large(a.filename, len(a.content))
                for a in notice.attachments
                if len(a.content) > DOCUMENT_LIMIT
            }
        for text in messages:
            if not await self._call(chat, lambda t=text: self._bot.send_message(chat, t)):
                return  # the chat is closed to the bot: nothing else will get through
        for attachment in notice.attachments:
            if not attachment.content:
                continue  # Telegram refuses empty files
            if attachment.filename in too_large:
                text = too_large[attachment.filename]
                await self._call(chat, lambda t=text: self._bot.send_message(chat, t))
                continue
            document = BufferedInputFile(attachment.content, filename=attachment.filename or "file")
            await self._call(chat, lambda d=document: self._bot.send_document(chat, d))

    async def status_changed(self, notice: StatusChanged) -> None:
        with self._i18n.context(), self._i18n.use_locale(self._locale(notice.ticket.locale)):
            text = texts.status_changed(notice)
        chat = notice.ticket.telegram_id
        await self._call(chat, lambda: self._bot.send_message(chat, text))

    async def moved(self, notice: Moved) -> None:
        await self._say(notice.ticket.telegram_id, notice.ticket.locale, texts.ticket_moved, notice)

    async def merged(self, notice: Merged) -> None:
        await self._say(
            notice.ticket.telegram_id, notice.ticket.locale, texts.ticket_merged, notice
        )

    async def deleted(self, notice: Deleted) -> None:
        await self._say(
            notice.ticket.telegram_id, notice.ticket.locale, texts.ticket_deleted, notice
        )

    async def _say(self, chat: int, locale: str, render: Callable[[T], str], notice: T) -> None:
        with self._i18n.context(), self._i18n.use_locale(self._locale(locale)):
            text = render(notice)
        await self._call(chat, lambda: self._bot.send_message(chat, text))

    async def assigned(self, notice: Assigned) -> None:
        # The specialists' notifications are a feature of their own; the merchant is not told.
        logger.info(
            "ticket %s (queue #%s) assigned to %s (was %s) by %s",
            notice.ticket.ticket_id,
            notice.ticket.queue_ticket_id,
            notice.owner or "nobody",
            notice.previous or "nobody",
            notice.by,
        )

    async def _call(self, chat: int, make: Callable[[], Awaitable[T]]) -> bool:
        """One Bot API call, retried through short trouble. False when Telegram refuses it for
        good (logged); DeliveryDeferred when it cannot get through now."""
        network_failures = 0
        while True:
            try:
                await make()
                return True
            except TelegramRetryAfter as error:
                if error.retry_after > _RETRY_AFTER_LIMIT:
                    wait = f"Telegram asks to wait {error.retry_after} s"
                    raise DeliveryDeferred(wait) from error
                await asyncio.sleep(error.retry_after)
            except (TelegramNetworkError, TelegramServerError) as error:
                if network_failures >= len(_NETWORK_RETRY_DELAYS):
                    raise DeliveryDeferred(f"Telegram unreachable: {error}") from error
                await asyncio.sleep(_NETWORK_RETRY_DELAYS[network_failures])
                network_failures += 1
            except TelegramAPIError as error:
                logger.warning("Telegram refused a notice to chat %s: %s", chat, error)
                return False
