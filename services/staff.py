"""The staff registry: specialists and leads of the queue, linked to their Telegram accounts.

An operator runs `frontdesk staff link USER --role specialist|lead`: a single-use token is issued
(the same mechanism as the merchants' links, services/links.py: random, only its SHA-256 kept,
expiring, redeemed once by one conditional UPDATE). The specialist opens
`https://t.me/<bot>?start=<token>`; redeeming it maps their Telegram id to the queue user with the
role. Tokens live in their own table, so a staff token is never a merchant's link and the other
way round; `/start` tries the merchants' table first, then this one (one namespace: 256-bit random
tokens never collide).

`frontdesk staff remove USER` marks the member removed. The CLI cannot call Telegram, so the staff
command menu of that chat is cleared by the bot at the member's next staff command
(`commands_shown`), and from the removal on every staff command is refused to them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.db.dialect import insert_for, rowcount
from services.db.models import Merchant, StaffLinkToken, StaffMember, StaffRole
from services.links import KEEP_SPENT, Redeemed, claim, hash_token, new_token

MAX_QUEUE_USER = 200


class StaffError(ValueError):
    """An operator's request to correct (an empty or over-long queue user name)."""


@dataclass(frozen=True, slots=True)
class Staff:
    queue_user: str
    role: StaffRole
    telegram_id: int
    since: datetime


@dataclass(frozen=True, slots=True)
class IssuedStaffLink:
    token: str
    expires_at: datetime


@dataclass(frozen=True, slots=True)
class StaffRedemption:
    outcome: Redeemed
    member: Staff | None = None


def _clean_user(queue_user: str) -> str:
    name = queue_user.strip()
    if not name or len(name) > MAX_QUEUE_USER:
        raise StaffError(f"the queue user must be 1-{MAX_QUEUE_USER} characters")
    return name


async def issue_link(
    session: AsyncSession, queue_user: str, role: StaffRole, *, ttl: timedelta, now: datetime
) -> IssuedStaffLink:
    name = _clean_user(queue_user)
    await session.execute(
        delete(StaffLinkToken).where(StaffLinkToken.expires_at < now - KEEP_SPENT)
    )
    token = new_token()
    session.add(
        StaffLinkToken(
            token_hash=hash_token(token),
            queue_user=name,
            role=role,
            expires_at=now + ttl,
            created_at=now,
        )
    )
    await session.commit()
    return IssuedStaffLink(token=token, expires_at=now + ttl)


async def redeem(
    session: AsyncSession,
    token: str,
    *,
    telegram_id: int,
    now: datetime,
    locale: str | None = None,
) -> StaffRedemption:
    """Uses the staff token once: the Telegram account becomes the queue user's, with the role
    (a relink replaces the account or the role) and the language (``locale``) the bot speaks to
    them in. Unknown, used or expired: nothing changes."""
    row = await claim(
        session,
        StaffLinkToken,
        token,
        used_by=telegram_id,
        now=now,
        columns=(StaffLinkToken.queue_user, StaffLinkToken.role),
    )
    if isinstance(row, Redeemed):
        return StaffRedemption(row)
    queue_user, role = str(row[0]), StaffRole(row[1])
    # One Telegram account is one queue user: a previous mapping of this account goes.
    await session.execute(
        delete(StaffMember).where(
            StaffMember.telegram_id == telegram_id, StaffMember.queue_user != queue_user
        )
    )
    values = {
        "telegram_id": telegram_id,
        "role": role,
        "created_at": now,
        "removed_at": None,
        "locale": locale,
    }
    await session.execute(
        insert_for(session, StaffMember)
        .values(queue_user=queue_user, commands_shown=False, **values)
        .on_conflict_do_update(index_elements=["queue_user"], set_=values)
    )
    await session.commit()
    member = Staff(queue_user=queue_user, role=StaffRole(role), telegram_id=telegram_id, since=now)
    return StaffRedemption(Redeemed.LINKED, member)


async def member_of(session: AsyncSession, telegram_id: int) -> Staff | None:
    """The active staff member of this Telegram account, if any."""
    row = await session.scalar(
        select(StaffMember).where(
            StaffMember.telegram_id == telegram_id, StaffMember.removed_at.is_(None)
        )
    )
    if row is None:
        return None
    return Staff(row.queue_user, StaffRole(row.role), row.telegram_id, row.created_at)


async def commands_shown(session: AsyncSession, telegram_id: int, shown: bool) -> None:
    """Records that the bot set (True) or cleared (False) this chat's staff command menu."""
    await session.execute(
        update(StaffMember)
        .where(StaffMember.telegram_id == telegram_id)
        .values(commands_shown=shown)
    )
    await session.commit()


async def menu_to_clear(session: AsyncSession, telegram_id: int) -> bool:
    """A removed member whose chat still shows the staff commands: the bot clears them."""
    return bool(
        await session.scalar(
            select(StaffMember.id).where(
                StaffMember.telegram_id == telegram_id,
                StaffMember.removed_at.is_not(None),
                StaffMember.commands_shown.is_(True),
            )
        )
    )


async def list_staff(session: AsyncSession) -> list[Staff]:
    rows = await session.scalars(
        select(StaffMember).where(StaffMember.removed_at.is_(None)).order_by(StaffMember.queue_user)
    )
    return [Staff(r.queue_user, StaffRole(r.role), r.telegram_id, r.created_at) for r in rows]


async def remove(session: AsyncSession, queue_user: str, *, now: datetime) -> bool:
    """Removes the member (and voids their unused links); False if nobody active had the name."""
    name = queue_user.strip()
    await session.execute(
        delete(StaffLinkToken).where(
            StaffLinkToken.queue_user == name, StaffLinkToken.used_at.is_(None)
        )
    )
    removed = rowcount(
        await session.execute(
            update(StaffMember)
            .where(StaffMember.queue_user == name, StaffMember.removed_at.is_(None))
            .values(removed_at=now)
        )
    )
    await session.commit()
    return bool(removed)


async def locale_of(session: AsyncSession, telegram_id: int, default: str) -> str:
    """The language a staff member reads: the one chosen with /language, else that of their
    Telegram when they linked, else `default`."""
    chosen = await session.scalar(
        select(Merchant.locale).where(Merchant.telegram_id == telegram_id)
    )
    linked = await session.scalar(
        select(StaffMember.locale).where(StaffMember.telegram_id == telegram_id)
    )
    return chosen or linked or default
