from __future__ import annotations

from enum import StrEnum

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession

from services import merchants
from services.merchants import MerchantProfile

router = Router(name=__name__)


class Language(StrEnum):
    RU = "ru"
    EN = "en"


# Each language is named in itself: a user who cannot read the current one still finds theirs.
NATIVE_NAMES = {Language.RU: "Русский", Language.EN: "English"}


class LanguageCallback(CallbackData, prefix="lang"):
    code: Language


def language_keyboard() -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for language in Language:
        builder.button(text=NATIVE_NAMES[language], callback_data=LanguageCallback(code=language))
    return builder.as_markup()


@router.message(Command("language"))
async def choose_language(message: Message) -> None:
    await message.answer(_("Choose the language:"), reply_markup=language_keyboard())


@router.callback_query(LanguageCallback.filter())
async def set_language(
    query: CallbackQuery,
    callback_data: LanguageCallback,
    bot: Bot,
    session: AsyncSession,
    merchant: MerchantProfile,
    i18n: I18n,
) -> None:
    await merchants.set_locale(session, merchant.id, callback_data.code.value)
    with i18n.use_locale(callback_data.code.value):
        text = _("Done: I will speak English with you.")
    await query.answer()
    if isinstance(query.message, Message):
        try:
            await query.message.edit_text(text)
        except TelegramBadRequest as error:
            # The same language pressed again (a double tap, an old button): already shown.
            if "message is not modified" not in error.message:
                raise
    else:
        await bot.send_message(query.from_user.id, text)


@router.callback_query(F.data.startswith("lang:"))
async def unknown_language(query: CallbackQuery) -> None:
    await query.answer(_("This button is out of date. Send /language again."), show_alert=True)
