"""A `limits` storage in the SQL database, for deployments without Redis.

Rate limits must hold across every process of a deployment, so they cannot live in process
memory. With Redis, `limits`' own async Redis storage keeps them; without it, this storage keeps
them in two tables of frontdesk's database (models `RateLimitHit`, `RateLimitCounter`) and
implements what the moving-window strategy needs (`acquire_entry`, `get_moving_window`) plus
`limits`' counter interface.

Admission is atomic: on PostgreSQL a transaction-scoped advisory lock on the key serialises the
check and the insert of every process (READ COMMITTED alone would let two transactions each count
the window without the other's row); on SQLite the transaction writes its rows first, which takes
the database's single write lock, then counts and rolls back if the window overflowed. Expired
rows are deleted now and then by whichever process is admitting.

It knows nothing of Telegram: keys are opaque strings.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from limits.aio.storage import MovingWindowSupport, Storage
from sqlalchemy import case, delete, func, insert, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.db.models import RateLimitCounter, RateLimitHit

CLEANUP_INTERVAL_SECONDS = 60.0


class SQLRateLimitStorage(Storage, MovingWindowSupport):
    STORAGE_SCHEME = None  # built by frontdesk's factory, never from a storage URI

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        cleanup_interval: float = CLEANUP_INTERVAL_SECONDS,
        clock: Callable[[], float] = time.time,
        wrap_exceptions: bool = False,
    ) -> None:
        super().__init__(wrap_exceptions=wrap_exceptions)
        self._sessionmaker = sessionmaker
        self._cleanup_interval = cleanup_interval
        self._clock = clock
        self._cleaned_at = 0.0

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return SQLAlchemyError

    # ------------------------------------------------------------------ moving window

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        if amount > limit:
            return False
        async with self._sessionmaker() as session:
            postgres = session.get_bind().dialect.name == "postgresql"
            if postgres:
                await session.execute(select(func.pg_advisory_xact_lock(func.hashtext(key))))
            # The admission's time is read once the connection (and, on PostgreSQL, the key's
            # lock) is ours: read before those waits, it would date the hit early, the hit would
            # leave the window early and let one more in within a real second.
            now = self._clock()
            rows = [{"key": key, "at": now, "expires_at": now + expiry} for _ in range(amount)]
            if not postgres:
                await session.execute(insert(RateLimitHit), rows)  # takes SQLite's write lock
            counted = await session.scalar(
                select(func.count())
                .select_from(RateLimitHit)
                .where(RateLimitHit.key == key, RateLimitHit.at >= now - expiry)
            )
            admitted = (counted or 0) + (amount if postgres else 0) <= limit
            if not admitted:
                await session.rollback()
            else:
                if postgres:
                    await session.execute(insert(RateLimitHit), rows)
                await session.commit()
        await self._clean_up_now_and_then(now)
        return admitted

    async def get_moving_window(self, key: str, limit: int, expiry: float) -> tuple[float, int]:
        """(the oldest admission within the last `expiry` seconds, how many there are).

        `expiry` may be fractional: the limiter asks about a window stretched by a margin."""
        now = self._clock()
        async with self._sessionmaker() as session:
            times = (
                await session.scalars(
                    select(RateLimitHit.at)
                    .where(RateLimitHit.key == key, RateLimitHit.at >= now - expiry)
                    .order_by(RateLimitHit.at.desc())
                    .limit(limit)
                )
            ).all()
        if not times:
            return now, 0
        return min(times), len(times)

    # ------------------------------------------------------------------ counters

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        """Adds `amount` to the key's counter; a counter that expired starts again from zero and
        lives `expiry` seconds. One statement, so concurrent increments never lose one."""
        now = self._clock()
        table = RateLimitCounter.__table__
        async with self._sessionmaker() as session:
            dialect = postgresql if session.get_bind().dialect.name == "postgresql" else sqlite
            statement = dialect.insert(table).values(key=key, value=amount, expires_at=now + expiry)
            expired = table.c.expires_at <= now
            statement = statement.on_conflict_do_update(
                index_elements=[table.c.key],
                set_={
                    "value": case((expired, amount), else_=table.c.value + amount),
                    "expires_at": case((expired, now + expiry), else_=table.c.expires_at),
                },
            ).returning(table.c.value)
            value = (await session.execute(statement)).scalar_one()
            await session.commit()
        return int(value)

    async def get(self, key: str) -> int:
        async with self._sessionmaker() as session:
            value = await session.scalar(
                select(RateLimitCounter.value).where(
                    RateLimitCounter.key == key, RateLimitCounter.expires_at > self._clock()
                )
            )
        return int(value or 0)

    async def get_expiry(self, key: str) -> float:
        now = self._clock()
        async with self._sessionmaker() as session:
            expires_at = await session.scalar(
                select(RateLimitCounter.expires_at).where(
                    RateLimitCounter.key == key, RateLimitCounter.expires_at > now
                )
            )
        return float(expires_at) if expires_at is not None else now

    # ------------------------------------------------------------------ housekeeping

    async def clear(self, key: str) -> None:
        async with self._sessionmaker.begin() as session:
            await session.execute(delete(RateLimitCounter).where(RateLimitCounter.key == key))
            await session.execute(delete(RateLimitHit).where(RateLimitHit.key == key))

    async def reset(self) -> int | None:
        async with self._sessionmaker.begin() as session:
            counters = await session.execute(delete(RateLimitCounter))
            hits = await session.execute(delete(RateLimitHit))
        return int(counters.rowcount or 0) + int(hits.rowcount or 0)  # type: ignore[attr-defined]

    async def check(self) -> bool:
        try:
            async with self._sessionmaker() as session:
                await session.execute(select(1))
        except SQLAlchemyError:
            return False
        return True

    async def _clean_up_now_and_then(self, now: float) -> None:
        if now - self._cleaned_at < self._cleanup_interval:
            return
        self._cleaned_at = now
        async with self._sessionmaker.begin() as session:
            await session.execute(delete(RateLimitHit).where(RateLimitHit.expires_at < now))
            await session.execute(delete(RateLimitCounter).where(RateLimitCounter.expires_at < now))
