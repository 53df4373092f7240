"""Restrictions on filing (issue 9, point 8) on SQLite and PostgreSQL: a lead restricts a Telegram
user (by id or @username) with a reason, the user is told politely and may not file; the lead lifts
it and they may again; each change is logged with who, when and why; specialists are refused."""

from __future__ import annotations

import logging
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import intake, restrictions
from services.db.models import FilingRestriction, StaffRole
from services.notices import FilingRestored, FilingRestricted
from services.staff import Staff
from tests.helpers.filing import register_merchant
from tests.helpers.notices import written

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
LEAD = Staff("petrova", StaffRole.LEAD, 7_300_000_001, NOW)
SPECIALIST = Staff("ivanov", StaffRole.SPECIALIST, 7_300_000_002, NOW)
MERCHANT_TG = 7_000_000_123  # tests/helpers/filing.register_merchant, username "anna"


async def _set(sessionmaker, lead: Staff, target: str, restricted: bool, reason: str = ""):  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        return await restrictions.set_restricted(
            session, lead, target=target, restricted=restricted, reason=reason, now=NOW
        )


async def _restricted(sessionmaker: async_sessionmaker[AsyncSession]) -> bool:
    async with sessionmaker() as session:
        return await intake.restricted(session, MERCHANT_TG)


async def test_a_lead_restricts_and_lifts_and_every_change_is_logged_and_told(
    sessionmaker: async_sessionmaker[AsyncSession], caplog: pytest.LogCaptureFixture
) -> None:
    async with sessionmaker() as session:
        await register_merchant(session)
    assert not await _restricted(sessionmaker)

    caplog.set_level(logging.WARNING, logger="services.restrictions")
    change = await _set(sessionmaker, LEAD, "@Anna", True, "insults specialists")
    assert change == restrictions.Change(restrictions.Outcome.RESTRICTED, MERCHANT_TG)
    assert await _restricted(sessionmaker)
    again = await _set(sessionmaker, LEAD, str(MERCHANT_TG), True, "again")
    assert again.outcome is restrictions.Outcome.UNCHANGED

    lifted = await _set(sessionmaker, LEAD, str(MERCHANT_TG), False)
    assert lifted.outcome is restrictions.Outcome.LIFTED
    assert not await _restricted(sessionmaker)

    async with sessionmaker() as session:
        log = [
            (r.telegram_id, r.restricted, r.reason, r.by_queue_user, r.at)
            for r in await session.scalars(select(FilingRestriction).order_by(FilingRestriction.id))
        ]
    assert log == [
        (MERCHANT_TG, True, "insults specialists", "petrova", NOW),
        (MERCHANT_TG, False, "", "petrova", NOW),
    ]
    told = await written(sessionmaker)
    assert [n.chat_id for n in told] == [MERCHANT_TG, MERCHANT_TG]
    assert told[0].body == FilingRestricted(reason="insults specialists")
    assert told[1].body == FilingRestored()
    lines = [r.getMessage() for r in caplog.records if r.name == "services.restrictions"]
    assert len(lines) == 2 and "petrova" in lines[0] and str(MERCHANT_TG) in lines[0]
    # The reason's words are about a person: kept in the database above, never in the log.
    assert "insults specialists" not in lines[0]


async def test_a_specialist_may_not_restrict_and_a_reason_is_required(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        await register_merchant(session)
    for lead, target, reason, why in (
        (SPECIALIST, str(MERCHANT_TG), "spam", restrictions.NOT_LEAD),
        (LEAD, str(MERCHANT_TG), "  ", restrictions.NO_REASON),
        (LEAD, "@nobody", "spam", restrictions.UNKNOWN_USER),
        (LEAD, str(LEAD.telegram_id), "spam", restrictions.SELF),
    ):
        with pytest.raises(restrictions.RestrictionRefused) as refused:
            await _set(sessionmaker, lead, target, True, reason)
        assert refused.value.reason == why
    with pytest.raises(restrictions.RestrictionRefused):
        await _set(sessionmaker, SPECIALIST, str(MERCHANT_TG), False)
    assert not await _restricted(sessionmaker)
    async with sessionmaker() as session:
        assert list(await session.scalars(select(FilingRestriction))) == []
    assert await written(sessionmaker) == []
