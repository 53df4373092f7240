"""The one place where an unexpected error becomes a polite answer and one log line."""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import ErrorEvent
from aiogram.utils.i18n import gettext as _

from handlers.callback_answers import answered

router = Router(name=__name__)
logger = logging.getLogger(__name__)


@router.error()
async def on_error(event: ErrorEvent) -> None:
    logger.error("update %s failed", event.update.update_id, exc_info=event.exception)
    text = _(
        "Sorry, something went wrong on our side. Nothing you wrote is lost: "
        "please try again in a minute."
    )
    update = event.update
    query = update.callback_query
    if query is not None:
        if not answered(query.id):
            try:
                await query.answer(text, show_alert=True)
                return
            except TelegramBadRequest:
                pass  # too late for an alert (Telegram waits ~15 s): the chat then
        # The handler had answered the press before it failed: say it in the chat instead.
        if query.message is not None:
            await query.bot.send_message(query.message.chat.id, text)  # type: ignore[union-attr]
    elif update.message is not None:
        await update.message.answer(text)
