"""The modification ledger: free slots per calendar month (Moscow time), never given twice."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import modifications, stores
from services.db.models import Modification
from services.quota import ChargeKind, ChargeReason
from services.regulation import load_regulation

POLICY = load_regulation().policies.quota
MSK = ZoneInfo("Europe/Moscow")


def msk(*args: int) -> datetime:
    return datetime(*args, tzinfo=MSK).astimezone(UTC)


async def _store(sessionmaker: async_sessionmaker[AsyncSession], plan: str) -> int:
    async with sessionmaker() as session:
        return await stores.add_store(session, domain=f"{plan}.example.com", name=plan, plan=plan)


async def _record(sessionmaker, store_id: int, plan: str, done_at: datetime, minutes: int = 10):  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        return await modifications.record_modification(
            session,
            POLICY,
            store_id=store_id,
            plan=plan,
            minutes=minutes,
            specialist="Иван",
            done_at=done_at,
        )


async def _status(sessionmaker, store_id: int, plan: str, now: datetime):  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        return await modifications.quota_status(
            session, POLICY, store_id=store_id, plan=plan, now=now
        )


async def test_site_plan_has_four_free_modifications_a_month_then_500_rub_each(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    store_id = await _store(sessionmaker, "site")
    charges = [
        await _record(sessionmaker, store_id, "site", msk(2026, 11, 10, 12)) for _ in range(5)
    ]
    assert [c.kind for c in charges] == [ChargeKind.FREE] * 4 + [ChargeKind.PAID]
    assert charges[-1].amount == 500 and charges[-1].reason is ChargeReason.ALLOWANCE_USED_UP
    status = await _status(sessionmaker, store_id, "site", msk(2026, 11, 30, 23, 59))
    assert (status.used, status.left, status.allowance) == (4, 0, 4)
    assert status.resets_at == msk(2026, 12, 1, 0, 0)


async def test_premium_has_ten(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    store_id = await _store(sessionmaker, "premium")
    status = await _status(sessionmaker, store_id, "premium", msk(2026, 11, 10, 12))
    assert (status.allowance, status.left) == (10, 10)


async def test_work_over_15_minutes_is_paid_and_uses_no_free_slot(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    store_id = await _store(sessionmaker, "combo")
    charge = await _record(sessionmaker, store_id, "combo", msk(2026, 11, 10, 12), minutes=16)
    assert charge.kind is ChargeKind.PAID and charge.reason is ChargeReason.OVER_TIME_LIMIT
    exactly_15 = await _record(sessionmaker, store_id, "combo", msk(2026, 11, 10, 12), minutes=15)
    assert exactly_15.is_free
    assert (await _status(sessionmaker, store_id, "combo", msk(2026, 11, 11, 0))).used == 1


async def test_free_plan_pays_for_every_modification(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    store_id = await _store(sessionmaker, "free")
    charge = await _record(sessionmaker, store_id, "free", msk(2026, 11, 10, 12))
    assert charge.kind is ChargeKind.PAID and charge.reason is ChargeReason.NO_ALLOWANCE


@pytest.mark.parametrize(
    ("last_day", "first_day"),
    [
        ((2026, 11, 30, 23, 59), (2026, 12, 1, 0, 0)),
        ((2026, 12, 31, 23, 59), (2027, 1, 1, 0, 0)),
        ((2028, 2, 29, 23, 59), (2028, 3, 1, 0, 0)),
    ],
)
async def test_counter_resets_at_the_end_of_the_calendar_month_moscow_time(
    sessionmaker: async_sessionmaker[AsyncSession],
    last_day: tuple[int, ...],
    first_day: tuple[int, ...],
) -> None:
    store_id = await _store(sessionmaker, "site")
    for _ in range(4):
        assert (await _record(sessionmaker, store_id, "site", msk(*last_day))).is_free
    assert not (await _record(sessionmaker, store_id, "site", msk(*last_day))).is_free
    assert (await _status(sessionmaker, store_id, "site", msk(*last_day))).left == 0
    # One minute later, in Moscow, a new month: the allowance is back.
    assert (await _status(sessionmaker, store_id, "site", msk(*first_day))).left == 4
    assert (await _record(sessionmaker, store_id, "site", msk(*first_day))).is_free


async def test_only_free_modifications_of_the_current_month_use_the_allowance(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    store_id = await _store(sessionmaker, "site")
    await _record(sessionmaker, store_id, "site", msk(2025, 12, 31, 23, 59))  # last month
    await _record(sessionmaker, store_id, "site", msk(2026, 1, 1))  # January's first instant
    await _record(sessionmaker, store_id, "site", msk(2026, 1, 20, 15))
    paid = await _record(sessionmaker, store_id, "site", msk(2026, 1, 21, 12), minutes=40)
    assert paid.reason is ChargeReason.OVER_TIME_LIMIT  # paid: uses no allowance
    await _record(sessionmaker, store_id, "site", msk(2026, 2, 1))  # next month
    status = await _status(sessionmaker, store_id, "site", msk(2026, 1, 31, 23, 59))
    assert (status.allowance, status.used, status.left) == (4, 2, 2)
    assert (status.period_start, status.resets_at) == (msk(2026, 1, 1), msk(2026, 2, 1))


@pytest.mark.postgres
async def test_last_free_slot_recorded_twice_at_once_gives_one_free_and_one_paid(
    postgres_url: str,
) -> None:
    from services.db.engine import create_engine, create_sessionmaker

    engine = create_engine(postgres_url)
    maker = create_sessionmaker(engine)
    try:
        for attempt in range(5):  # several rounds: a race that passes once by luck fails here
            store_id = await _store_named(maker, f"race{attempt}.example.com")
            for _ in range(3):
                await _record(maker, store_id, "site", msk(2026, 11, 10, 12))
            charges = await asyncio.gather(
                *(_record(maker, store_id, "site", msk(2026, 11, 10, 12)) for _ in range(2))
            )
            assert sorted(c.kind.value for c in charges) == ["free", "paid"]
            async with maker() as session:
                kinds = list(
                    await session.scalars(
                        select(Modification.charge).where(Modification.store_id == store_id)
                    )
                )
            assert kinds.count("free") == 4 and kinds.count("paid") == 1
    finally:
        await engine.dispose()


async def _store_named(sessionmaker, domain: str) -> int:  # type: ignore[no-untyped-def]
    async with sessionmaker() as session:
        return await stores.add_store(session, domain=domain, name=domain, plan="site")
