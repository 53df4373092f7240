"""The FSM in Redis, shaped for many chats and several processes.

- `CompactRedisStorage`: drafts as UTF-8 JSON (aiogram's default escapes every Cyrillic letter
  into six bytes), compressed above a size where compression pays, and expiring after FSM_TTL:
  an abandoned draft does not live for ever.
- `ChatLocks`: a chat's updates one at a time. Inside a process an asyncio lock orders them with
  no round trip and no polling; across processes a Redis lock with a short TTL, renewed while
  the update runs, so a process killed mid-update holds its chats for at most that TTL (aiogram's
  default lock outlives a SIGKILL by 60 s and polls every 100 ms, which delayed every step).
- `create_redis`: the application's one client (a blocking pool of REDIS_POOL_SIZE connections:
  a crowd waits for a connection instead of failing) for the FSM, the chat locks, the handled
  updates, the leases and the wake channel.
"""

from __future__ import annotations

import asyncio
import json
import logging
import zlib
from collections.abc import AsyncGenerator, Mapping
from contextlib import asynccontextmanager, suppress
from typing import Any, cast

from aiogram.fsm.storage.base import BaseEventIsolation, KeyBuilder, StorageKey
from aiogram.fsm.storage.redis import RedisStorage
from redis.asyncio import BlockingConnectionPool, Redis
from redis.asyncio.lock import Lock
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import LockError
from redis.exceptions import TimeoutError as RedisTimeoutError

from bot.keyed_locks import KeyedLocks

logger = logging.getLogger(__name__)

# Below this many bytes zlib saves little and costs a call; a described problem is far above it.
COMPRESS_FROM = 512
# zlib's streams start with 0x78 ("x"); JSON objects with "{": the first byte tells them apart,
# so drafts written before compression existed still load.
_ZLIB_HEADER = 0x78


def dumps(data: Mapping[str, Any]) -> bytes:
    raw = json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode()
    if len(raw) < COMPRESS_FROM:
        return raw
    return zlib.compress(raw, 6)


def loads(value: bytes | str) -> dict[str, Any]:
    if isinstance(value, bytes) and value[:1] == bytes([_ZLIB_HEADER]):
        value = zlib.decompress(value)
    return cast(dict[str, Any], json.loads(value))


class CompactRedisStorage(RedisStorage):
    """aiogram's RedisStorage with compact data and a TTL on both the state and the data."""

    def __init__(self, redis: Redis, key_builder: KeyBuilder, ttl_seconds: int | None) -> None:
        super().__init__(
            redis, key_builder=key_builder, state_ttl=ttl_seconds, data_ttl=ttl_seconds
        )

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        redis_key = self.key_builder.build(key, "data")
        if not data:
            await self.redis.delete(redis_key)
            return
        await self.redis.set(redis_key, dumps(data), ex=self.data_ttl)

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        value = await self.redis.get(self.key_builder.build(key, "data"))
        return {} if value is None else loads(value)

    async def close(self) -> None:
        """The client is the application's (bot/app.py), closed once, after everything."""


class ChatLocks(BaseEventIsolation):
    """One update of a chat at a time: in this process, then across processes (with Redis)."""

    def __init__(
        self,
        redis: Redis | None,
        key_builder: KeyBuilder,
        *,
        ttl_seconds: float = 10.0,
        poll_seconds: float = 0.01,
    ) -> None:
        self._redis = redis
        self._key_builder = key_builder
        self._ttl = ttl_seconds
        self._poll = poll_seconds
        self._local = KeyedLocks()

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        name = self._key_builder.build(key, "lock")
        async with self._local.hold(name):
            if self._redis is None:
                yield
            else:
                async with self._shared(name):
                    yield

    @asynccontextmanager
    async def _shared(self, name: str) -> AsyncGenerator[None, None]:
        assert self._redis is not None
        lock = Lock(self._redis, name, timeout=self._ttl, sleep=self._poll, thread_local=False)
        await lock.acquire()
        renewal = asyncio.create_task(self._renew(lock), name="chat-lock-renewal")
        try:
            yield
        finally:
            renewal.cancel()
            with suppress(asyncio.CancelledError):
                await renewal
            try:
                await lock.release()
            except LockError:
                # It lapsed (the update outlived the TTL while renewals failed): another
                # update of the chat may have run meanwhile; nothing is left to release.
                logger.warning("a chat's lock %s had lapsed before its update ended", name)

    async def _renew(self, lock: Lock) -> None:
        while True:
            await asyncio.sleep(self._ttl / 3)
            try:
                await lock.reacquire()
            except Exception:
                logger.warning("could not renew a chat's lock", exc_info=True)

    async def close(self) -> None:
        """The client is the application's (bot/app.py), closed once, after everything."""


def create_redis(url: str, *, pool_size: int, pool_timeout: float) -> Redis:
    """One client for the FSM and the chat locks. A blocking pool: past REDIS_POOL_SIZE, callers
    wait up to pool_timeout for a connection (redis-py's default pool raises at once)."""
    pool = BlockingConnectionPool.from_url(
        url,
        max_connections=pool_size,
        timeout=pool_timeout,
        # A pool given to the client brings its own retry policy, and redis-py's is none: a
        # connection that a Redis restart cut would fail its next command (one more apology to
        # a merchant). Retried on a new connection instead, briefly.
        retry=Retry(ExponentialWithJitterBackoff(base=0.05, cap=1.0), retries=3),
        retry_on_error=[RedisConnectionError, RedisTimeoutError],
        health_check_interval=30,
    )
    return Redis(connection_pool=pool)
