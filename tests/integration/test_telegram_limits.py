"""Telegram's limits across processes: the windows live in Redis or in the SQL database, so two
limiters (two bot processes) together stay within them; the SQL storage admits atomically."""

from __future__ import annotations

import asyncio
import itertools
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from limits.aio.storage import RedisStorage, Storage
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.telegram_limits import TelegramLimiter, TelegramRates
from services.db.engine import create_engine, create_sessionmaker, migrate
from services.db.models import RateLimitCounter, RateLimitHit
from services.rate_limit_storage import SQLRateLimitStorage
from tests.conftest import REDIS_URL, PostgresDatabases
from tests.helpers.timing import most_in_any_window

StorageFactory = Callable[[], Awaitable[Storage]]


@pytest.fixture(
    params=[
        pytest.param("redis", marks=pytest.mark.redis),
        pytest.param("postgres", marks=pytest.mark.postgres),
    ]
)
async def shared_storage(
    request: pytest.FixtureRequest,
) -> AsyncIterator[StorageFactory]:
    """Builds a *new* storage over the same backend each call: one per bot process."""
    engines: list[AsyncEngine] = []
    redis: list[RedisStorage] = []
    database: str | None = None
    if request.param == "redis":
        prefix = request.getfixturevalue("redis_prefix")

        async def factory() -> Storage:
            storage = RedisStorage(
                "async+" + REDIS_URL, implementation="redispy", key_prefix=f"{prefix}:limits"
            )
            redis.append(storage)
            return storage
    else:
        databases: PostgresDatabases = request.getfixturevalue("postgres")
        database = await databases.create()
        url = databases.url_for(database)
        setup = create_engine(url)
        await migrate(setup)
        await setup.dispose()

        async def factory() -> Storage:
            engines.append(create_engine(url))
            return SQLRateLimitStorage(create_sessionmaker(engines[-1]))

    yield factory
    for storage in redis:
        await storage.bridge.storage.aclose()  # type: ignore[attr-defined]
    for engine in engines:
        await engine.dispose()
    if database is not None:
        await request.getfixturevalue("postgres").drop(database)


async def test_two_processes_sharing_the_storage_together_stay_within_the_limits(
    shared_storage: StorageFactory,
) -> None:
    rates = TelegramRates(bot="10 per second")  # Telegram's 30/s, shrunk to keep this short
    first = TelegramLimiter(await shared_storage(), rates)
    second = TelegramLimiter(await shared_storage(), rates)
    admitted: list[tuple[float, int]] = []

    async def send(limiter: TelegramLimiter, chat_id: int) -> None:
        await limiter.acquire(chat_id)
        admitted.append((time.monotonic(), chat_id))

    shared_chat = 4242
    await asyncio.gather(
        *(send(first, 1000 + n) for n in range(8)),
        *(send(second, 2000 + n) for n in range(8)),
        *(send(limiter, shared_chat) for limiter in (first, second) for _ in range(2)),
    )

    assert len(admitted) == 20
    assert most_in_any_window([at for at, _ in admitted], 1.0) <= 10
    into_shared = sorted(at for at, chat in admitted if chat == shared_chat)
    assert min(b - a for a, b in itertools.pairwise(into_shared)) >= 1.0


async def test_a_cool_down_recorded_by_one_process_holds_the_other(
    shared_storage: StorageFactory,
) -> None:
    first = TelegramLimiter(await shared_storage())
    second = TelegramLimiter(await shared_storage())

    await first.cool_down(777, 1)
    started = time.monotonic()
    await second.acquire(888)  # another chat: at once
    assert time.monotonic() - started < 0.5
    await second.acquire(777)
    assert time.monotonic() - started >= 1.0


async def test_a_shorter_cool_down_does_not_cut_a_longer_one(
    shared_storage: StorageFactory,
) -> None:
    limiter = TelegramLimiter(await shared_storage())
    await limiter.cool_down(777, 2)
    await limiter.cool_down(777, 1)
    started = time.monotonic()
    await limiter.wait_cool_down(777)
    assert time.monotonic() - started >= 1.5


# --------------------------------------------------------------------------- the SQL storage


async def test_sql_storage_admits_exactly_the_limit_under_concurrency(
    database_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    # PostgreSQL: three "processes" (engines); SQLite: one process, many concurrent sessions.
    engines = [create_engine(database_url) for _ in range(3 if "postgresql" in database_url else 0)]
    storages = [SQLRateLimitStorage(create_sessionmaker(engine)) for engine in engines]
    storages = storages or [SQLRateLimitStorage(sessionmaker)]
    key = "test/" + uuid.uuid4().hex
    try:
        results = await asyncio.gather(
            *(storages[n % len(storages)].acquire_entry(key, 10, 60) for n in range(60))
        )
    finally:
        for engine in engines:
            await engine.dispose()
    assert sum(results) == 10
    storage = SQLRateLimitStorage(sessionmaker)
    oldest, count = await storage.get_moving_window(key, 10, 60)
    assert count == 10
    assert time.time() - 5 < oldest <= time.time()


async def test_sql_storage_moving_window_frees_as_hits_age(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    now = [1_000.0]
    storage = SQLRateLimitStorage(sessionmaker, clock=lambda: now[0])
    assert await storage.acquire_entry("chat/1", 1, 1)
    now[0] += 0.999
    assert not await storage.acquire_entry("chat/1", 1, 1)  # within the second: refused
    now[0] += 0.002
    assert await storage.acquire_entry("chat/1", 1, 1)
    assert not await storage.acquire_entry("chat/2", 2, 60, amount=3)  # more than the limit


async def test_sql_storage_deletes_expired_rows_now_and_then(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    now = [1_000.0]
    storage = SQLRateLimitStorage(sessionmaker, clock=lambda: now[0], cleanup_interval=60)
    for n in range(5):
        await storage.acquire_entry(f"chat/{n}", 1, 1)
    await storage.incr("cool-down/1", 2)
    now[0] += 61  # all expired, and a cleanup is due
    await storage.acquire_entry("chat/new", 1, 1)

    async with sessionmaker() as session:
        hits = await session.scalar(select(func.count()).select_from(RateLimitHit))
        counters = await session.scalar(select(func.count()).select_from(RateLimitCounter))
    assert (hits, counters) == (1, 0)


async def test_sql_storage_counters_expire_and_restart(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    now = [1_000.0]
    storage = SQLRateLimitStorage(sessionmaker, clock=lambda: now[0])
    assert await storage.incr("k", 10) == 1
    assert await storage.incr("k", 10, amount=2) == 3
    assert await storage.get("k") == 3
    assert await storage.get_expiry("k") == 1_010.0
    now[0] += 10
    assert await storage.get("k") == 0
    assert await storage.incr("k", 5) == 1
    assert await storage.get_expiry("k") == 1_015.0
    await storage.clear("k")
    assert await storage.get("k") == 0
    assert await storage.check()


# --------------------------------------------------------------------------- what counts


async def test_a_media_group_counts_one_message_per_item() -> None:
    from aiogram.methods import SendMediaGroup, TelegramMethod
    from aiogram.types import InputMediaPhoto
    from limits.aio.storage import MemoryStorage

    from bot.telegram_limits import TelegramLimitsMiddleware

    limiter = TelegramLimiter(MemoryStorage(), TelegramRates(group="4 per 2 seconds"))
    middleware = TelegramLimitsMiddleware(limiter)
    sent: list[float] = []

    async def make_request(bot: Any, method: TelegramMethod[Any]) -> Any:
        sent.append(time.monotonic())
        return []

    album = SendMediaGroup(
        chat_id=-100_777, media=[InputMediaPhoto(media=f"photo-{n}") for n in range(3)]
    )
    started = time.monotonic()
    await middleware(make_request, None, album)  # type: ignore[arg-type]
    await middleware(make_request, None, album)  # type: ignore[arg-type]  # 6 > 4 in 2 s: waits
    assert sent[0] - started < 0.5
    assert sent[1] - sent[0] >= 2.0


@pytest.mark.redis
async def test_on_redis_a_message_is_admitted_in_one_round_trip(redis_prefix: str) -> None:
    # The general path reads the cool-down and both windows and records in both: five calls
    # for every message the bot sends. On Redis one script does it all.
    storage = RedisStorage(
        "async+" + REDIS_URL, implementation="redispy", key_prefix=f"{redis_prefix}:limits"
    )
    client = storage.bridge.storage  # type: ignore[attr-defined]
    commands: list[str] = []
    execute = client.execute_command

    async def counted(*args: Any, **kwargs: Any) -> Any:
        commands.append(str(args[0]))
        return await execute(*args, **kwargs)

    client.execute_command = counted
    try:
        limiter = TelegramLimiter(storage, TelegramRates(private_chat="1 per second"))
        await limiter.acquire(5001)
        assert commands in (["EVALSHA"], ["EVALSHA", "EVAL"])  # EVAL: the script's first load
        commands.clear()
        started = time.monotonic()
        await limiter.acquire(5001)  # the chat's second message waits out its window
        assert time.monotonic() - started >= 1.0
        assert commands == ["EVALSHA", "EVALSHA"]
    finally:
        await client.aclose()
