"""What nobody else took: a polite hint instead of silence."""

from __future__ import annotations

from aiogram import Router
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import gettext as _

router = Router(name=__name__)


@router.message()
async def not_understood(message: Message) -> None:
    await message.answer(
        _("I did not understand that. Send /new to file a support request, or /help.")
    )


@router.callback_query()
async def stale_button(query: CallbackQuery) -> None:
    await query.answer(
        _("This button is out of date. Send /new to file a new request."), show_alert=True
    )
