"""The modification ledger in the database: recording work done and the store's quota status.

The rules (allowance, 15-minute limit, price) are pure functions in services/quota.py; this
module stores their outcome. The month's free slots are taken by a conditional UPDATE of one
counter row, which is atomic on PostgreSQL (row lock, WHERE re-checked) and on SQLite (one
writer), so the last free slot goes to exactly one of two modifications recorded at once.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime
from typing import Any, cast

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult
from sqlalchemy.ext.asyncio import AsyncSession

from services.db.models import Modification, QuotaCounter
from services.quota import (
    Charge,
    QuotaPolicy,
    QuotaStatus,
    classify_next,
    quota_period,
    status_of,
)


async def record_modification(
    session: AsyncSession,
    policy: QuotaPolicy,
    *,
    store_id: int,
    plan: str,
    minutes: int,
    specialist: str,
    done_at: datetime,
    ticket_id: int | None = None,
) -> Charge:
    """Record one modification and return its charge; commits."""
    charge = await add_modification(
        session,
        policy,
        store_id=store_id,
        plan=plan,
        minutes=minutes,
        specialist=specialist,
        done_at=done_at,
        ticket_id=ticket_id,
    )
    await session.commit()
    return charge


async def add_modification(
    session: AsyncSession,
    policy: QuotaPolicy,
    *,
    store_id: int,
    plan: str,
    minutes: int,
    specialist: str,
    done_at: datetime,
    ticket_id: int | None = None,
    price: int | None = None,
) -> Charge:
    """Adds one modification to the caller's transaction and returns its charge. ``price`` is
    the specialist's quote, used when the rules set none (work over the time limit)."""
    period_start, _ = quota_period(done_at, policy.tz)
    allowance = policy.allowance_for(plan)
    await _ensure_counter(session, store_id, period_start)
    # What the rules say if a slot is free; only a successful UPDATE proves it still is.
    charge = classify_next(plan, 0, minutes, policy)
    if charge.is_free:
        taken = await session.execute(
            update(QuotaCounter)
            .where(
                QuotaCounter.store_id == store_id,
                QuotaCounter.period_start == period_start,
                QuotaCounter.used < allowance,
            )
            .values(used=QuotaCounter.used + 1)
        )
        if cast("CursorResult[Any]", taken).rowcount != 1:  # an UPDATE's result has a count
            # No free slot left this month: what the rules say when all of them are used.
            charge = classify_next(plan, allowance, minutes, policy)
    if charge.amount is None and price is not None:
        charge = replace(charge, amount=price)
    session.add(
        Modification(
            store_id=store_id,
            ticket_id=ticket_id,
            minutes=minutes,
            specialist=specialist,
            done_at=done_at,
            period_start=period_start,
            charge=charge.kind.value,
            amount=charge.amount,
        )
    )
    await session.flush()
    return charge


async def quota_status(
    session: AsyncSession, policy: QuotaPolicy, *, store_id: int, plan: str, now: datetime
) -> QuotaStatus:
    start, _ = quota_period(now, policy.tz)
    used = await session.scalar(
        select(QuotaCounter.used).where(
            QuotaCounter.store_id == store_id, QuotaCounter.period_start == start
        )
    )
    return status_of(plan, used or 0, now, policy)


async def _ensure_counter(session: AsyncSession, store_id: int, period_start: datetime) -> None:
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    await session.execute(
        insert(QuotaCounter)
        .values(store_id=store_id, period_start=period_start, used=0)
        .on_conflict_do_nothing(index_elements=["store_id", "period_start"])
    )
