"""Tells merchants in Telegram what the filing worker did, in the language they filed in."""

from __future__ import annotations

from aiogram import Bot
from aiogram.utils.i18n import I18n

from handlers import texts
from services.db.base import utcnow
from services.filing import Delayed, Registered


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
