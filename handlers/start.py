from __future__ import annotations

import logging
from html import escape

from aiogram import Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.stores import how_to_link
from services import links, stores
from services.db.base import utcnow
from services.db.models import Role
from services.merchants import MerchantProfile

router = Router(name=__name__)
logger = logging.getLogger(__name__)


@router.message(CommandStart(deep_link=True))
async def start_with_link(
    message: Message, command: CommandObject, session: AsyncSession, merchant: MerchantProfile
) -> None:
    """`/start <token>`: the link the platform gave (services/links.py)."""
    redemption = await links.redeem(
        session, command.args or "", merchant_id=merchant.id, now=utcnow()
    )
    if redemption.store is not None:
        store = redemption.store
        logger.info("merchant %s linked to store %s as %s", merchant.id, store.id, store.role)
        text = (
            _(
                "✅ Your Telegram account is linked to the store <b>{name}</b> ({domain}) as its "
                "owner. Requests you file here are registered from your store account's e-mail."
            )
            if store.role is Role.OWNER
            else _(
                "✅ Your Telegram account is linked to the store <b>{name}</b> ({domain}) as an "
                "administrator. Requests you file here are registered from your store account's "
                "e-mail."
            )
        )
        await message.answer(
            text.format(name=escape(store.name, quote=False), domain=escape(store.domain))
            + "\n\n"
            + _("/new — file a request\n/stores — your stores")
        )
        return
    # Never says whose link it was or which store: only what to do now.
    logger.warning("merchant %s: link token refused (%s)", merchant.id, redemption.outcome)
    answers = {
        links.Redeemed.USED: _(
            "This link has already been used. Each link works once: if you need to link the "
            "store again, get a new link in your store's admin panel: <b>Help → Telegram</b>."
        ),
        links.Redeemed.EXPIRED: _(
            "This link has expired: links work for a short time only. Please get a new one in "
            "your store's admin panel: <b>Help → Telegram</b>."
        ),
        links.Redeemed.UNKNOWN: _(
            "This link is not valid. Please open the link from your store's admin panel "
            "(<b>Help → Telegram</b>) again, without changing it."
        ),
    }
    await message.answer(answers[redemption.outcome])


@router.message(CommandStart())
async def start(message: Message, session: AsyncSession, merchant: MerchantProfile) -> None:
    greeting = _(
        "Hello, {name}!\n\n"
        "I am the front desk of the store platform's technical support. "
        "I file your request into the official support queue — only a request registered "
        "there counts — and tell you its number and when to expect the first answer.\n\n"
        "/new — file a request\n"
        "/help — how it works"
    ).format(name=escape(merchant.full_name, quote=False))
    if not await stores.stores_of(session, merchant.id):
        greeting += "\n\n" + how_to_link()
    await message.answer(greeting)


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
