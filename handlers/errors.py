"""The one place where an unexpected error becomes a polite answer and one log line."""

from __future__ import annotations

import logging

from aiogram import Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import ErrorEvent
from aiogram.utils.i18n import gettext as _

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
    if update.callback_query is not None:
        try:
            await update.callback_query.answer(text, show_alert=True)
            return
        except TelegramBadRequest:
            # The handler had answered the query before it failed: say it in the chat instead.
            message = update.callback_query.message
            if message is not None:
                await update.callback_query.bot.send_message(message.chat.id, text)  # type: ignore[union-attr]
    elif update.message is not None:
        await update.message.answer(text)
