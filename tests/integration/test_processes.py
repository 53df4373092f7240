"""The pieces that let several processes share one bot: updates claimed once (Redis across
processes, memory within one), leases with takeover (Redis and the SQL database), the sync read
by one process at a time, and work announced to other processes' workers."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.types import Chat, Message, TelegramObject, Update, User
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.process_lock import RedisLease, dead_on_this_host, polling_lease
from bot.startup import StartupError
from bot.update_dedupe import MemoryClaims, RedisClaims, UpdateClaims, UpdateDedupeMiddleware
from bot.wake_bus import WakeBus
from services.leases import Lease, SqlLease
from services.queue.builtin import BuiltinQueue
from services.sync import SyncWorker
from tests.helpers.databases import REDIS_URL


@pytest.fixture
async def redis(redis_prefix: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(REDIS_URL)
    yield client
    await client.aclose()


# --- updates claimed once -------------------------------------------------------------------


def update(update_id: int) -> Update:
    user = User(id=1, is_bot=False, first_name="A")
    message = Message(
        message_id=1,
        date=datetime.now(UTC),
        chat=Chat(id=1, type="private"),
        from_user=user,
        text="hi",
    )
    return Update(update_id=update_id, message=message)


class Claims:
    """Two processes' view of the same claims (Redis), or one process's (memory)."""

    def __init__(self, first: UpdateClaims, second: UpdateClaims) -> None:
        self.first, self.second = first, second


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def claims(request: pytest.FixtureRequest) -> Claims:
    if request.param == "memory":
        memory = MemoryClaims(ttl=3600)
        return Claims(memory, memory)
    client: Redis = request.getfixturevalue("redis")
    prefix = request.getfixturevalue("redis_prefix") + ":update:7000001"
    return Claims(RedisClaims(client, prefix, ttl=3600), RedisClaims(client, prefix, ttl=3600))


async def test_an_update_is_claimed_once_whichever_process_gets_it(claims: Claims) -> None:
    assert await claims.first.claim(101)
    assert not await claims.second.claim(101)  # being handled
    await claims.first.done(101)
    assert not await claims.second.claim(101)  # handled
    assert await claims.second.claim(102)  # another update


async def test_an_update_whose_handling_failed_is_handled_when_telegram_sends_it_again(
    claims: Claims,
) -> None:
    assert await claims.first.claim(201)
    await claims.first.release(201)
    assert await claims.second.claim(201)


@pytest.mark.redis
async def test_redis_keeps_a_handled_update_for_the_dedupe_time_and_a_claim_for_less(
    redis: Redis, redis_prefix: str
) -> None:
    claims = RedisClaims(redis, f"{redis_prefix}:update:7", ttl=600)
    await claims.claim(5)
    assert 0 < await redis.ttl(f"{redis_prefix}:update:7:5") <= 120
    await claims.done(5)
    assert 120 < await redis.ttl(f"{redis_prefix}:update:7:5") <= 600


async def test_memory_forgets_a_handled_update_after_the_dedupe_time_and_stays_bounded() -> None:
    now = [0.0]
    claims = MemoryClaims(ttl=60, size=3, clock=lambda: now[0])
    assert await claims.claim(1)
    await claims.done(1)
    now[0] = 59
    assert not await claims.claim(1)
    now[0] = 61
    assert await claims.claim(1)
    for update_id in (2, 3, 4):
        assert await claims.claim(update_id)
    assert len(claims._claims) == 3  # the oldest went first
    assert await claims.claim(1)


async def test_the_middleware_drops_a_duplicate_counts_it_and_lets_a_failed_update_be_retried() -> (
    None
):
    claims = MemoryClaims(ttl=3600)
    duplicates: list[int] = []
    middleware = UpdateDedupeMiddleware(claims, on_duplicate=lambda: duplicates.append(1))
    handled: list[int] = []

    async def handler(event: TelegramObject, data: dict[str, Any]) -> str:
        assert isinstance(event, Update)
        handled.append(event.update_id)
        return "ok"

    async def failing(event: TelegramObject, data: dict[str, Any]) -> str:
        raise RuntimeError("boom")

    assert await middleware(handler, update(1), {}) == "ok"
    assert await middleware(handler, update(1), {}) is UNHANDLED
    assert (handled, duplicates) == ([1], [1])
    with pytest.raises(RuntimeError):
        await middleware(failing, update(2), {})
    assert await middleware(handler, update(2), {}) == "ok"  # Telegram's next try
    assert handled == [1, 2]


# --- leases -----------------------------------------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


async def test_a_sql_lease_has_one_holder_and_passes_on_when_it_lapses_or_is_released(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    clock = Clock()
    ttl = timedelta(seconds=15)
    first = SqlLease(sessionmaker, "poller:1", ttl=ttl, holder="host:1:a", clock=clock)
    second = SqlLease(sessionmaker, "poller:1", ttl=ttl, holder="host:2:b", clock=clock)
    other = SqlLease(sessionmaker, "poller:2", ttl=ttl, holder="host:2:b", clock=clock)

    assert await first.hold()
    assert not await second.hold()
    assert await second.holder() == "host:1:a"
    assert await other.hold()  # another bot's poller
    clock.now += timedelta(seconds=10)
    assert await first.hold()  # renewed: until 25 s
    clock.now += timedelta(seconds=10)
    assert not await second.hold()
    clock.now += timedelta(seconds=6)  # the first was killed: no renewal, it lapsed
    assert await first.holder() is None
    assert await second.hold()
    assert not await first.hold()  # back after a freeze: it lost it
    await first.release()  # not its own: nothing happens
    assert await first.holder() == "host:2:b"
    await second.release()
    assert await first.hold()  # at once


@pytest.mark.redis
async def test_a_redis_lease_has_one_holder_and_lapses_after_its_ttl(
    redis: Redis, redis_prefix: str
) -> None:
    ttl = timedelta(milliseconds=300)
    first = RedisLease(redis, f"{redis_prefix}:lease:poller:1", ttl=ttl, holder="host:1:a")
    second = RedisLease(redis, f"{redis_prefix}:lease:poller:1", ttl=ttl, holder="host:2:b")
    assert await first.hold()
    assert not await second.hold()
    assert await second.holder() == "host:1:a"
    await second.release()  # not its own: nothing happens
    assert await first.hold()
    await asyncio.sleep(0.4)  # the TTL: the first was killed, nothing renewed it
    assert await second.hold()
    assert not await first.hold()
    await second.release()
    assert await first.hold()


async def test_polling_refuses_to_start_without_the_lease_and_stops_when_it_is_taken(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    ttl = timedelta(milliseconds=300)
    first = SqlLease(sessionmaker, "poller:9", ttl=ttl, holder="host:1:a")
    second = SqlLease(sessionmaker, "poller:9", ttl=ttl, holder="host:2:b")
    lost = asyncio.Event()
    async with polling_lease(first, on_lost=lost.set):
        with pytest.raises(StartupError) as refused:
            async with polling_lease(second, on_lost=lambda: None):
                pytest.fail("two pollers")
        assert refused.value.setting == "BOT_TOKEN"
        assert "already polling Telegram for this bot (host:1:a)" in str(refused.value)
        await asyncio.sleep(0.35)  # kept alive by its keeper meanwhile
        assert await second.holder() == "host:1:a"
        # A poller frozen past its TTL finds another in its place: it stops.
        await first.release()
        assert await second.hold()
        await asyncio.wait_for(lost.wait(), 2)
    assert await second.holder() == "host:2:b"  # the loser's exit released nothing of it


# --- the sync: one reader of the queue at a time -------------------------------------------------


class CountedQueue:
    """The builtin queue, counting the sync's reads of its changes."""

    def __init__(self, queue: BuiltinQueue) -> None:
        self._queue = queue
        self.reads = 0

    async def changed_since(self, since: datetime) -> Any:
        self.reads += 1
        return await self._queue.changed_since(since)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._queue, name)


async def test_of_two_sync_workers_one_reads_the_queue_and_the_other_takes_over_when_it_stops(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    def worker(holder: str) -> tuple[SyncWorker, CountedQueue, Lease]:
        queue = CountedQueue(BuiltinQueue(sessionmaker))
        lease = SqlLease(sessionmaker, "sync:builtin", ttl=timedelta(seconds=30), holder=holder)
        return SyncWorker(sessionmaker, queue, interval=0.05, lease=lease), queue, lease  # type: ignore[arg-type]

    async def until(condition: Callable[[], bool], timeout: float = 10) -> None:
        async with asyncio.timeout(timeout):
            while not condition():  # noqa: ASYNC110 (a counter of the test's queue)
                await asyncio.sleep(0.01)

    (first, first_reads, lease), (second, second_reads, _) = worker("a"), worker("b")
    running = asyncio.create_task(first.run())
    await until(lambda: first_reads.reads >= 1)
    standing_by = asyncio.create_task(second.run())
    # Rounds of the first go on (the second's rounds with them, every 0.05 s), and the second
    # never reads: waited for by counting, not by a fixed sleep a loaded machine may outrun.
    rounds = first_reads.reads
    await until(lambda: first_reads.reads >= rounds + 4)
    assert second_reads.reads == 0
    running.cancel()  # a clean stop lets the lease go
    await asyncio.gather(running, return_exceptions=True)
    assert await lease.holder() in (None, "b")
    await until(lambda: second_reads.reads >= 1)
    standing_by.cancel()
    await asyncio.gather(standing_by, return_exceptions=True)


# --- work announced to the workers of other processes -------------------------------------------


@pytest.mark.redis
async def test_a_webhook_process_wakes_the_workers_of_other_processes(
    redis: Redis, redis_prefix: str
) -> None:
    web, worker = WakeBus(redis, f"{redis_prefix}:wake"), WakeBus(redis, f"{redis_prefix}:wake")
    woken = {"delivery": asyncio.Event(), "filing": asyncio.Event()}
    listening = asyncio.create_task(
        worker.listen({name: event.set for name, event in woken.items()})
    )
    try:
        announce = web.announcer("delivery")
        async with asyncio.timeout(5):
            while not woken["delivery"].is_set():  # until the listener has subscribed
                announce.wake()
                await asyncio.sleep(0.05)
        assert not woken["filing"].is_set()
    finally:
        listening.cancel()
        await asyncio.gather(listening, return_exceptions=True)
        await web.close()


# --- a dead poller of this host ---------------------------------------------------------------


def test_a_holder_of_this_host_whose_pid_runs_nothing_or_this_process_is_dead() -> None:
    host = socket.gethostname()
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that ran, ended and was reaped: a killed poller
    assert dead_on_this_host(f"{host}:{gone.pid}:0a0a0a0a")
    assert dead_on_this_host(f"{host}:{os.getpid()}:0a0a0a0a")  # a container restarted as pid 1
    assert not dead_on_this_host(f"{host}:{os.getppid()}:0a0a0a0a")  # alive
    assert not dead_on_this_host(f"elsewhere:{os.getpid()}:0a0a0a0a")  # never judged
    assert not dead_on_this_host("garbage")


async def test_a_dead_holders_lease_is_replaced_only_while_it_still_has_it(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    ttl = timedelta(seconds=15)
    dead = SqlLease(sessionmaker, "poller:3", ttl=ttl, holder="host:1:a")
    heir = SqlLease(sessionmaker, "poller:3", ttl=ttl, holder="host:2:b")
    late = SqlLease(sessionmaker, "poller:3", ttl=ttl, holder="host:3:c")
    assert await dead.hold()
    assert await heir.replace("host:1:a")
    assert not await late.replace("host:1:a")  # the heir was first
    assert await heir.holder() == "host:2:b"


@pytest.mark.redis
async def test_a_dead_holders_redis_lease_is_replaced_only_while_it_still_has_it(
    redis: Redis, redis_prefix: str
) -> None:
    key, ttl = f"{redis_prefix}:lease:poller:3", timedelta(seconds=15)
    assert await RedisLease(redis, key, ttl=ttl, holder="host:1:a").hold()
    heir = RedisLease(redis, key, ttl=ttl, holder="host:2:b")
    assert await heir.replace("host:1:a")
    assert not await RedisLease(redis, key, ttl=ttl, holder="host:3:c").replace("host:1:a")
    assert await heir.holder() == "host:2:b"
    assert 0 < await redis.pttl(key) <= 15_000
