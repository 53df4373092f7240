"""Linking a Telegram user to a store, as the platform does it.

The platform (its admin panel, or an operator with `frontdesk link`) asks for a link for a store
and a user of it: the store is written or updated under the platform's id, and a single-use
token is issued. The user opens `https://t.me/<bot>?start=<token>`, Telegram sends `/start
<token>`, and redeeming it makes them a member of the store with the role and the e-mail
registered for them there: the queue's requester of that store's tickets (so the regulation's
e-mail copies reach them). The e-mail is the membership's: one person may be a@… at one store
and b@… at another, and each store's tickets carry its own.

Tokens are random (256 bits, `secrets.token_urlsafe`: 43 characters of [A-Za-z0-9_-], inside
Telegram's 64-character deep-link payload) and only their SHA-256 is stored: a copy of the
database links nobody. A token expires (LINK_TTL_SECONDS) and is used once: redeeming is one
conditional UPDATE (`… WHERE used_at IS NULL AND expires_at > now`), so of two redeems at once
exactly one wins.
"""

from __future__ import annotations

import hashlib
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.db.dialect import insert_for, rowcount
from services.db.models import LinkToken, Membership, Merchant, Role, StaffLinkToken, Store
from services.stores import StoreAccess

TOKEN_BYTES = 32  # 256 bits; token_urlsafe gives 43 characters
# What Telegram accepts as a deep-link payload: 1-64 characters of A-Z, a-z, 0-9, _ and -.
TOKEN_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
DEFAULT_TTL = timedelta(minutes=15)
# Used and expired tokens are kept this long (to answer "already used" rather than "unknown"),
# then deleted when a new link is issued.
KEEP_SPENT = timedelta(days=30)


class LinkError(Exception):
    """A link request the platform must correct; `reason` says what, for the API's answer."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class StoreNotFound(LookupError):
    """No store has this platform id."""


class Redeemed(StrEnum):
    LINKED = "linked"
    UNKNOWN = "unknown"
    USED = "used"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class StoreLink:
    """What the platform says of a store and the user it links."""

    external_id: str
    name: str
    domain: str
    plan: str
    role: Role
    email: str


@dataclass(frozen=True, slots=True)
class IssuedLink:
    token: str
    expires_at: datetime
    store_id: int


@dataclass(frozen=True, slots=True)
class Redemption:
    outcome: Redeemed
    store: StoreAccess | None = None

    @property
    def linked(self) -> bool:
        return self.outcome is Redeemed.LINKED


def new_token() -> str:
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii", errors="replace")).hexdigest()


def link_url(bot_username: str, token: str) -> str:
    """The deep link that opens the bot with `/start <token>`."""
    return f"https://t.me/{bot_username.lstrip('@')}?start={token}"


def looks_like_token(text: str) -> bool:
    return bool(TOKEN_PATTERN.fullmatch(text))


async def claim(
    session: AsyncSession,
    model: type[LinkToken] | type[StaffLinkToken],
    token: str,
    *,
    used_by: int,
    now: datetime,
    columns: Sequence[Any],
) -> tuple[Any, ...] | Redeemed:
    """Uses a token of `model`'s table once (the merchants' and the staff's links share this):
    one conditional UPDATE, so of two redeems at once exactly one wins. Returns the token's
    `columns`, or why it was refused (unknown, used, expired) — the transaction then ended."""
    if not looks_like_token(token):
        return Redeemed.UNKNOWN
    digest = hash_token(token)
    claimed = await session.execute(
        update(model)
        .where(model.token_hash == digest, model.used_at.is_(None), model.expires_at > now)
        .values(used_at=now, used_by=used_by)
        .returning(*columns)
    )
    row = claimed.one_or_none()
    if row is not None:
        return tuple(row)
    await session.commit()  # the UPDATE matched nothing; ends the transaction
    existing = (
        await session.execute(select(model.id, model.used_at).where(model.token_hash == digest))
    ).one_or_none()
    if existing is None:
        return Redeemed.UNKNOWN
    if existing.used_at is not None:
        return Redeemed.USED
    return Redeemed.EXPIRED


async def issue(
    session: AsyncSession, link: StoreLink, *, ttl: timedelta, now: datetime
) -> IssuedLink:
    """Writes or updates the store under the platform's id and issues a token for the user."""
    store_id = await _upsert_store(session, link)
    await session.execute(delete(LinkToken).where(LinkToken.expires_at < now - KEEP_SPENT))
    token = new_token()
    expires_at = now + ttl
    session.add(
        LinkToken(
            token_hash=hash_token(token),
            store_id=store_id,
            role=link.role,
            email=link.email,
            expires_at=expires_at,
            created_at=now,
        )
    )
    await session.commit()
    return IssuedLink(token=token, expires_at=expires_at, store_id=store_id)


async def _upsert_store(session: AsyncSession, link: StoreLink) -> int:
    domain = link.domain.lower()
    for attempt in range(2):
        store = await session.scalar(select(Store).where(Store.external_id == link.external_id))
        if store is None:
            # A store entered by hand before the platform linked it: the platform's id adopts it.
            store = await session.scalar(
                select(Store).where(Store.domain == domain, Store.external_id.is_(None))
            )
        if store is None:
            store = Store(external_id=link.external_id, domain=domain)
            session.add(store)
        store.external_id, store.domain = link.external_id, domain
        store.name, store.plan = link.name, link.plan
        try:
            await session.flush()
            return store.id
        except IntegrityError:
            await session.rollback()
            # Another request created the same store at once: read it back and update it.
            if attempt == 0 and await session.scalar(
                select(Store.id).where(Store.external_id == link.external_id)
            ):
                continue
            raise LinkError("domain_taken") from None
    raise LinkError("domain_taken")


async def redeem(
    session: AsyncSession, token: str, *, merchant_id: int, now: datetime
) -> Redemption:
    """Uses the token once: the merchant becomes a member of its store with its role and e-mail
    (their other memberships keep theirs). An unknown, used or expired token changes nothing."""
    row = await claim(
        session,
        LinkToken,
        token,
        used_by=merchant_id,
        now=now,
        columns=(LinkToken.store_id, LinkToken.role, LinkToken.email),
    )
    if isinstance(row, Redeemed):
        return Redemption(row)
    store_id, role, email = row[0], row[1], row[2]
    await session.execute(
        insert_for(session, Membership)
        .values(merchant_id=merchant_id, store_id=store_id, role=role, email=email, created_at=now)
        .on_conflict_do_update(
            index_elements=["merchant_id", "store_id"], set_={"role": role, "email": email}
        )
    )
    await session.commit()
    store = await session.get(Store, store_id)
    assert store is not None  # the token's foreign key
    access = StoreAccess(
        id=store.id, domain=store.domain, name=store.name, plan=store.plan, role=Role(role)
    )
    return Redemption(Redeemed.LINKED, access)


async def update_store(
    session: AsyncSession, external_id: str, *, name: str | None = None, plan: str | None = None
) -> None:
    """The platform renamed the store or changed its plan (later tickets follow the plan)."""
    store = await session.scalar(select(Store).where(Store.external_id == external_id))
    if store is None:
        raise StoreNotFound(external_id)
    if name is not None:
        store.name = name
    if plan is not None:
        store.plan = plan
    await session.commit()


async def unlink_member(session: AsyncSession, external_id: str, member: str) -> int:
    """The platform removes a user from the store: `member` is the e-mail registered for them at
    this store or their Telegram id. Their unused links to it are void too. Returns the
    memberships removed."""
    store_id = await session.scalar(select(Store.id).where(Store.external_id == external_id))
    if store_id is None:
        raise StoreNotFound(external_id)
    merchant_ids = await _members(session, store_id, member)
    if "@" in member:
        await session.execute(
            delete(LinkToken).where(
                LinkToken.store_id == store_id,
                func.lower(LinkToken.email) == member.lower(),
                LinkToken.used_at.is_(None),
            )
        )
    removed = 0
    for merchant_id in merchant_ids:
        removed += await _remove(session, merchant_id, store_id)
    await session.commit()
    return removed


async def _members(session: AsyncSession, store_id: int, member: str) -> list[int]:
    query = select(Membership.merchant_id).join(Merchant).where(Membership.store_id == store_id)
    if member.isdigit():
        query = query.where(Merchant.telegram_id == int(member))
    else:
        query = query.where(func.lower(Membership.email) == member.lower())
    return list(await session.scalars(query))


async def leave(session: AsyncSession, *, merchant_id: int, store_id: int) -> bool:
    """The merchant unlinks themself from a store (/stores); False if they were not a member."""
    removed = await _remove(session, merchant_id, store_id)
    await session.commit()
    return bool(removed)


async def was_linked(session: AsyncSession, *, merchant_id: int, store_id: int) -> bool:
    """Whether the merchant redeemed a link to the store (spent links are kept KEEP_SPENT): a
    tap on their own "Yes, unlink" after the membership went (a double tap, or the platform
    unlinked them meanwhile) is told "already unlinked", not refused as another's store."""
    used = await session.scalar(
        select(LinkToken.id)
        .where(LinkToken.store_id == store_id, LinkToken.used_by == merchant_id)
        .limit(1)
    )
    return used is not None


async def _remove(session: AsyncSession, merchant_id: int, store_id: int) -> int:
    # The e-mail goes with the membership: the store's later tickets, if any, are the
    # placeholder requester's (services.merchants.requester_of).
    return rowcount(
        await session.execute(
            delete(Membership).where(
                Membership.merchant_id == merchant_id, Membership.store_id == store_id
            )
        )
    )
