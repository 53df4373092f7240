"""/stores: the stores this Telegram account is linked to, with their plan and role, and how to
unlink one (a confirmation first). Linking itself starts on the platform (services/links.py)."""

from __future__ import annotations

import logging
from contextlib import suppress
from enum import StrEnum
from html import escape

from aiogram import F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession

from handlers import texts
from services import links, stores
from services.db.models import Role
from services.merchants import MerchantProfile
from services.stores import StoreAccess

router = Router(name=__name__)
logger = logging.getLogger(__name__)


class StoreAction(StrEnum):
    UNLINK = "u"
    CONFIRM = "y"
    KEEP = "n"


class StoresCallback(CallbackData, prefix="sl"):
    action: StoreAction
    store: int = 0


def how_to_link() -> str:
    return _(
        "No store is linked to this Telegram account yet. Requests are filed for a store, "
        "so please link yours first: in your store's admin panel open <b>Help → Telegram</b> "
        "and follow the link from there. It opens this chat and links the account in one tap."
    )


def not_linked() -> str:
    """A store id from callback data that is not one of the merchant's (forged or stale): the
    answer names nothing of that store."""
    return _("This store is not linked to your account. Send /stores to see yours.")


def _role(role: Role) -> str:
    return _("owner") if role is Role.OWNER else _("administrator")


def _q(text: str) -> str:
    return escape(text, quote=False)


def _listing(linked: list[StoreAccess]) -> tuple[str, InlineKeyboardMarkup]:
    lines = [_("<b>Your stores</b>"), ""]
    builder = InlineKeyboardBuilder()
    for store in linked:
        lines.append(
            _("<b>{name}</b> — {domain}\nPlan: {plan} · your role: {role}").format(
                name=_q(store.name[:64]),
                domain=_q(store.domain[:64]),
                plan=_q(texts.plan_name(store.plan)),
                role=_role(store.role),
            )
        )
        lines.append("")
        builder.button(
            text=_("Unlink {name}").format(name=store.name[:40]),
            callback_data=StoresCallback(action=StoreAction.UNLINK, store=store.id),
        )
    lines.append(_("To link another store, use its admin panel: Help → Telegram."))
    builder.adjust(1)
    return "\n".join(lines), builder.as_markup()


@router.message(Command("stores"))
async def list_stores(message: Message, session: AsyncSession, merchant: MerchantProfile) -> None:
    linked = await stores.stores_of(session, merchant.id)
    if not linked:
        await message.answer(how_to_link())
        return
    text, keyboard = _listing(linked)
    await message.answer(text, reply_markup=keyboard)


async def _linked_store(
    session: AsyncSession, merchant: MerchantProfile, store_id: int
) -> StoreAccess | None:
    return next((s for s in await stores.stores_of(session, merchant.id) if s.id == store_id), None)


async def _refuse(query: CallbackQuery, merchant: MerchantProfile, store_id: int) -> None:
    logger.warning(
        "merchant %s pressed unlink of store %s, which is not linked to them: refused",
        merchant.id,
        store_id,
    )
    await query.answer(not_linked(), show_alert=True)


async def _own_store(
    query: CallbackQuery, store_id: int, session: AsyncSession, merchant: MerchantProfile
) -> StoreAccess | None:
    """Callback data is untrusted: the store must be one this merchant is linked to."""
    store = await _linked_store(session, merchant, store_id)
    if store is None:
        await _refuse(query, merchant, store_id)
    return store


@router.callback_query(StoresCallback.filter(F.action == StoreAction.UNLINK))
async def ask_unlink(
    query: CallbackQuery,
    callback_data: StoresCallback,
    session: AsyncSession,
    merchant: MerchantProfile,
) -> None:
    store = await _own_store(query, callback_data.store, session, merchant)
    if store is None or not isinstance(query.message, Message):
        return
    builder = InlineKeyboardBuilder()
    builder.button(
        text=_("Yes, unlink"),
        callback_data=StoresCallback(action=StoreAction.CONFIRM, store=store.id),
    )
    builder.button(text=_("No, keep it"), callback_data=StoresCallback(action=StoreAction.KEEP))
    await query.answer()
    with suppress(TelegramBadRequest):  # "message is not modified" on a double tap
        await query.message.edit_text(
            _(
                "Unlink <b>{name}</b> ({domain}) from this Telegram account? You will no longer "
                "file requests for it here. To link it again, use the store's admin panel: "
                "Help → Telegram."
            ).format(name=_q(store.name), domain=_q(store.domain)),
            reply_markup=builder.as_markup(),
        )


@router.callback_query(StoresCallback.filter(F.action == StoreAction.CONFIRM))
async def unlink(
    query: CallbackQuery,
    callback_data: StoresCallback,
    session: AsyncSession,
    merchant: MerchantProfile,
) -> None:
    store = await _linked_store(session, merchant, callback_data.store)
    if store is None:
        if await links.was_linked(session, merchant_id=merchant.id, store_id=callback_data.store):
            # Their own store, unlinked a moment ago (a second tap of "Yes, unlink"): no
            # attempt on anyone's store, so no security warning.
            logger.info(
                "merchant %s confirmed unlinking store %s again: already unlinked",
                merchant.id,
                callback_data.store,
            )
            await query.answer(_("Already done: this store is unlinked from your account."))
        else:
            await _refuse(query, merchant, callback_data.store)
        return
    await links.leave(session, merchant_id=merchant.id, store_id=store.id)
    logger.info("merchant %s unlinked themself from store %s", merchant.id, store.id)
    await query.answer()
    if isinstance(query.message, Message):
        with suppress(TelegramBadRequest):
            await query.message.edit_text(
                _("<b>{name}</b> is unlinked from this Telegram account.").format(
                    name=_q(store.name)
                )
            )


@router.callback_query(StoresCallback.filter(F.action == StoreAction.KEEP))
async def keep(query: CallbackQuery, session: AsyncSession, merchant: MerchantProfile) -> None:
    await query.answer()
    if not isinstance(query.message, Message):
        return
    linked = await stores.stores_of(session, merchant.id)
    with suppress(TelegramBadRequest):
        if linked:
            text, keyboard = _listing(linked)
            await query.message.edit_text(text, reply_markup=keyboard)
        else:
            await query.message.edit_text(how_to_link())
