from __future__ import annotations

from html import escape

from aiogram import Router
from aiogram.filters import Command, CommandStart
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _

from services.merchants import MerchantProfile

router = Router(name=__name__)


@router.message(CommandStart())
async def start(message: Message, merchant: MerchantProfile) -> None:
    await message.answer(
        _(
            "Hello, {name}!\n\n"
            "I am the front desk of the store platform's technical support. "
            "I file your request into the official support queue — only a request registered "
            "there counts — and tell you its number and when to expect the first answer.\n\n"
            "/new — file a request\n"
            "/help — how it works"
        ).format(name=escape(merchant.full_name, quote=False))
    )


@router.message(Command("help"))
async def help_(message: Message) -> None:
    await message.answer(
        _(
            "<b>How to file a request</b>\n"
            "1. Send /new and choose the type and the category.\n"
            "2. Write a short subject and describe the problem: one request, one problem.\n"
            "3. Check everything and press <b>Send</b>.\n\n"
            "Each step has <b>Back</b>; /cancel drops the request. "
            "Your draft is kept if you come back later.\n\n"
            "Please do not file the same request twice: it only delays the answer.\n\n"
            "/language — change the language"
        )
    )
