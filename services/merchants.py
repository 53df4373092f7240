"""Merchants: the Telegram users who file requests on behalf of their stores."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.db.models import Membership, Merchant


@dataclass(frozen=True, slots=True)
class MerchantProfile:
    id: int
    telegram_id: int
    full_name: str
    locale: str | None


def requester_for(telegram_id: int, email: str | None) -> str:
    """Who the queue sees as the requester: the registered e-mail, or a stable placeholder until
    the merchant links a store account (RFC 2606 reserves `.invalid`)."""
    return email or f"telegram-{telegram_id}@frontdesk.invalid"


async def requester_of(
    session: AsyncSession, *, merchant_id: int, telegram_id: int, store_id: int | None
) -> str:
    """The requester of a ticket of the merchant's for `store_id`: the e-mail the platform
    registered for them at that store (the membership's), else the placeholder (no store, a
    membership granted by hand or gone)."""
    email = None
    if store_id is not None:
        email = await session.scalar(
            select(Membership.email).where(
                Membership.merchant_id == merchant_id, Membership.store_id == store_id
            )
        )
    return requester_for(telegram_id, email)


def _profile(merchant: Merchant) -> MerchantProfile:
    return MerchantProfile(
        id=merchant.id,
        telegram_id=merchant.telegram_id,
        full_name=merchant.full_name,
        locale=merchant.locale,
    )


async def get_or_register(
    session: AsyncSession, *, telegram_id: int, full_name: str, username: str | None
) -> MerchantProfile:
    merchant = await session.scalar(select(Merchant).where(Merchant.telegram_id == telegram_id))
    if merchant is None:
        merchant = Merchant(telegram_id=telegram_id, full_name=full_name[:255], username=username)
        session.add(merchant)
        try:
            await session.commit()
        except IntegrityError:
            # Two first updates of a new user raced; the other one registered them.
            await session.rollback()
            merchant = await session.scalar(
                select(Merchant).where(Merchant.telegram_id == telegram_id)
            )
            assert merchant is not None
    elif merchant.full_name != full_name[:255] or merchant.username != username:
        merchant.full_name, merchant.username = full_name[:255], username
        await session.commit()
    return _profile(merchant)


async def set_locale(session: AsyncSession, merchant_id: int, locale: str) -> None:
    merchant = await session.get(Merchant, merchant_id)
    if merchant is None:
        raise LookupError(f"merchant {merchant_id}")
    merchant.locale = locale
    await session.commit()
