"""Restrictions on filing (issue 9, point 8): a lead restricts an abusive Telegram user from
filing requests, with a reason, and lifts it later.

Every restriction and lift is a row of `filing_restrictions` (who, when, why) and a log line; the
user is restricted while their latest row restricts. The user is told politely by a notice written
in the same transaction; /new and the wizard's Send refuse them (services/intake.py asks
`is_restricted`). Only leads may do this: the handler checks the role, and so does this module.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services import notices
from services.db.models import FilingRestriction, Merchant, StaffRole
from services.staff import Staff

logger = logging.getLogger(__name__)

MAX_REASON = 1000


class RestrictionRefused(ValueError):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# RestrictionRefused reasons, rendered by the handler.
NOT_LEAD = "not_lead"
UNKNOWN_USER = "unknown_user"
NO_REASON = "no_reason"
SELF = "self"


class Outcome(StrEnum):
    RESTRICTED = "restricted"
    LIFTED = "lifted"
    UNCHANGED = "unchanged"  # already so: nothing logged, nobody told again


@dataclass(frozen=True, slots=True)
class Change:
    outcome: Outcome
    telegram_id: int


async def is_restricted(session: AsyncSession, telegram_id: int) -> bool:
    latest = await session.scalar(
        select(FilingRestriction.restricted)
        .where(FilingRestriction.telegram_id == telegram_id)
        .order_by(FilingRestriction.id.desc())
        .limit(1)
    )
    return bool(latest)


async def resolve_user(session: AsyncSession, target: str) -> int | None:
    """A Telegram id, or the @username of someone who has talked to the bot."""
    target = target.strip()
    if target.lstrip("-").isdigit():
        return int(target)
    name = target.removeprefix("@").lower()
    if not name:
        return None
    return await session.scalar(
        select(Merchant.telegram_id).where(func.lower(Merchant.username) == name).limit(1)
    )


async def _locale_of(session: AsyncSession, telegram_id: int) -> str:
    locale = await session.scalar(
        select(Merchant.locale).where(Merchant.telegram_id == telegram_id)
    )
    return locale or "ru"


async def set_restricted(
    session: AsyncSession,
    lead: Staff,
    *,
    target: str,
    restricted: bool,
    reason: str,
    now: datetime,
) -> Change:
    """Restricts (or lifts) the user named by ``target``; logs it, tells them; commits."""
    if lead.role is not StaffRole.LEAD:
        raise RestrictionRefused(NOT_LEAD)
    reason = reason.strip()[:MAX_REASON]
    if restricted and not reason:
        raise RestrictionRefused(NO_REASON)
    telegram_id = await resolve_user(session, target)
    if telegram_id is None:
        raise RestrictionRefused(UNKNOWN_USER)
    if telegram_id == lead.telegram_id:
        raise RestrictionRefused(SELF)
    if await is_restricted(session, telegram_id) == restricted:
        return Change(Outcome.UNCHANGED, telegram_id)
    row = FilingRestriction(
        telegram_id=telegram_id,
        restricted=restricted,
        reason=reason,
        by_queue_user=lead.queue_user,
        by_telegram_id=lead.telegram_id,
        at=now,
    )
    session.add(row)
    await session.flush()
    body: notices.Body = (
        notices.FilingRestricted(reason=reason) if restricted else notices.FilingRestored()
    )
    await notices.enqueue(
        session,
        key=f"restriction:{row.id}",
        chat_id=telegram_id,
        locale=await _locale_of(session, telegram_id),
        body=body,
        now=now,
    )
    await session.commit()
    logger.warning(
        # The reason's words stay in the database: they are about a person.
        "filing %s for Telegram user %s by lead %s (%s)",
        "restricted" if restricted else "restored",
        telegram_id,
        lead.queue_user,
        "with a reason" if reason else "no reason",
    )
    return Change(Outcome.RESTRICTED if restricted else Outcome.LIFTED, telegram_id)
