"""/quota: the free modifications left this month, for each linked store."""

from __future__ import annotations

from html import escape

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from handlers import texts
from services import modifications, stores
from services.db.base import utcnow
from services.merchants import MerchantProfile
from services.regulation import Regulation

router = Router(name=__name__)


@router.message(Command("quota"))
async def show_quota(
    message: Message, session: AsyncSession, merchant: MerchantProfile, regulation: Regulation
) -> None:
    linked = await stores.stores_of(session, merchant.id)
    if not linked:
        await message.answer(
            _(
                "No store is linked to your Telegram account yet, so there is no quota to show. "
                "The free modifications belong to a store's plan."
            )
        )
        return
    now, policy = utcnow(), regulation.policies.quota
    lines = [_("<b>Free small modifications</b>"), ""]
    for store in linked:
        status = await modifications.quota_status(
            session, policy, store_id=store.id, plan=store.plan, now=now
        )
        lines += [f"<b>{escape(store.domain)}</b>", texts.quota_line(status), ""]
    lines.append(
        _(
            "A modification is free if a specialist needs {minutes} or less; beyond the "
            "allowance each costs {price}. The counter is renewed at the end of every month."
        ).format(
            minutes=texts.minutes(policy.free_minutes_limit),
            price=texts.money(policy.price_beyond, policy.currency, texts.current_locale()),
        )
    )
    await message.answer("\n".join(lines))
