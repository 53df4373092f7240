"""Merchants: the Telegram users who file requests on behalf of their stores."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import and_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services import stores
from services.db.models import Membership, Merchant, Store, TelegramChat


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


@dataclass(frozen=True, slots=True)
class Arrival:
    """Who sent an update, read in one round trip: the merchant, whether Telegram had refused
    their chat (then their held notices go out again), and their stores (kept in the session
    for the handlers: services/stores.stores_of)."""

    merchant: MerchantProfile
    unreachable_since: datetime | None


async def arrive(
    session: AsyncSession, *, telegram_id: int, full_name: str, username: str | None
) -> Arrival:
    """The merchant behind an update (registered on their first), with what every update needs
    of them, in one statement instead of three."""
    rows = (
        await session.execute(
            # Columns, not the ORM object: no identity map to fill on every update.
            select(
                Merchant.id,
                Merchant.full_name,
                Merchant.username,
                Merchant.locale,
                TelegramChat.unreachable_since,
                *stores.STORE_COLUMNS,
            )
            .outerjoin(
                TelegramChat,
                and_(
                    TelegramChat.chat_id == Merchant.telegram_id,
                    TelegramChat.unreachable_since.is_not(None),
                ),
            )
            .outerjoin(Membership, Membership.merchant_id == Merchant.id)
            .outerjoin(Store, Store.id == Membership.store_id)
            .where(Merchant.telegram_id == telegram_id)
            .order_by(Store.name, Store.id)
        )
    ).all()
    if not rows:
        profile = await get_or_register(
            session, telegram_id=telegram_id, full_name=full_name, username=username
        )
        stores.remember(session, profile.id, [])
        return Arrival(profile, None)
    merchant_id, known_name, known_username, locale, unreachable_since = rows[0][:5]
    linked = [
        stores.store_access(row[5], row[6], row[7], row[8], row[9])
        for row in rows
        if row[5] is not None
    ]
    if known_name != full_name[:255] or known_username != username:
        await session.execute(
            update(Merchant)
            .where(Merchant.id == merchant_id)
            .values(full_name=full_name[:255], username=username)
        )
        await session.commit()
    stores.remember(session, merchant_id, linked)
    profile = MerchantProfile(
        id=merchant_id, telegram_id=telegram_id, full_name=full_name[:255], locale=locale
    )
    return Arrival(profile, unreachable_since)


async def set_locale(session: AsyncSession, merchant_id: int, locale: str) -> None:
    merchant = await session.get(Merchant, merchant_id)
    if merchant is None:
        raise LookupError(f"merchant {merchant_id}")
    merchant.locale = locale
    await session.commit()
