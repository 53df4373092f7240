"""One Telegram poller per token: the lease `frontdesk run` (polling) takes before it polls.

Two pollers on one token would each get a share of the updates and, after a failed
confirmation, the same ones (Telegram's getUpdates offset is per call, not per process): issue
11 saw updates handled twice. So polling starts only with the token's lease (services/leases.py:
in Redis when REDIS_URL is set, else in the database), renews it while it polls, and lets it go
on a clean stop; a poller that is killed lets it lapse within POLLER_LEASE (15 s), and a new one
may start — at once on the same host, where the dead holder is recognised by its pid. A second
poller while the first lives is refused at start-up, in one line.
"""

from __future__ import annotations

import asyncio
import logging
import os
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress
from datetime import timedelta

from redis.asyncio import Redis

from bot import startup
from services.leases import Lease, holder_name

logger = logging.getLogger(__name__)

POLLER_LEASE = timedelta(seconds=15)

# Takes the lease if free or ours (renewing it), else leaves it: one round trip, atomic.
_HOLD = """
local current = redis.call('GET', KEYS[1])
if current == ARGV[1] then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
if current then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return 1
"""
_REPLACE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
"""
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


class RedisLease:
    """A lease as a Redis key holding its holder's name, with the TTL as its expiry."""

    def __init__(
        self, redis: Redis, key: str, *, ttl: timedelta, holder: str | None = None
    ) -> None:
        self._redis = redis
        self.key = key
        self.ttl = ttl
        self.me = holder or holder_name()

    async def hold(self) -> bool:
        milliseconds = int(self.ttl.total_seconds() * 1000)
        held = await self._redis.eval(_HOLD, 1, self.key, self.me, milliseconds)  # type: ignore[misc]
        return bool(held)

    async def holder(self) -> str | None:
        value = await self._redis.get(self.key)
        if value is None:
            return None
        return value.decode() if isinstance(value, bytes) else str(value)

    async def replace(self, previous: str) -> bool:
        milliseconds = int(self.ttl.total_seconds() * 1000)
        replaced = await self._redis.eval(_REPLACE, 1, self.key, previous, self.me, milliseconds)  # type: ignore[misc]
        return bool(replaced)

    async def release(self) -> None:
        await self._redis.eval(_RELEASE, 1, self.key, self.me)  # type: ignore[misc]


def dead_on_this_host(holder: str) -> bool:
    """Whether the lease's holder (host:pid:tag, services.leases.holder_name) was a process of
    this host that is gone: its pid runs nothing, or runs this very process (a container
    restarted as pid 1 again). Another host's holder is never judged: its lease must lapse."""
    host, _, pid_text = holder.rpartition(":")[0].rpartition(":")
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    pid = int(pid_text)
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:  # alive, another user's
        return False
    return False


def bot_id(token: str) -> str:
    """The bot's number (the token's part before the colon): a lease or key per bot, never
    the secret."""
    return token.split(":", 1)[0]


@asynccontextmanager
async def polling_lease(lease: Lease, *, on_lost: Callable[[], object]) -> AsyncIterator[None]:
    """Holds the poller's lease for the block: refused (StartupError) if another process has
    it; renewed every third of its TTL; `on_lost` is called (stop polling) if it is lost."""
    held = await lease.hold()
    if not held:
        # A poller of this host killed a moment ago (a crash, then systemd or Docker restarting
        # it): its lease is taken over at once rather than after its TTL.
        previous = await lease.holder()
        if previous is not None and dead_on_this_host(previous):
            held = await lease.replace(previous)
            if held:
                logger.info("took over the poller's lease of %s, a process now gone", previous)
    if not held:
        holder = await lease.holder()
        raise startup.StartupError(
            "BOT_TOKEN",
            f"another process is already polling Telegram for this bot ({holder or 'unknown'})",
            "stop it first, or run several processes in webhook mode (`frontdesk run --webhook`, "
            "docs/deploy.md); a killed poller's claim lapses within "
            f"{int(POLLER_LEASE.total_seconds())} s",
        )
    keeper = asyncio.create_task(_keep(lease, on_lost), name="poller-lease")
    try:
        yield
    finally:
        keeper.cancel()
        with suppress(asyncio.CancelledError):
            await keeper
        with suppress(Exception):  # a lease not released lapses anyway
            await lease.release()


async def _keep(lease: Lease, on_lost: Callable[[], object]) -> None:
    ttl = getattr(lease, "ttl", POLLER_LEASE).total_seconds()
    while True:
        await asyncio.sleep(ttl / 3)
        try:
            held = await lease.hold()
        except Exception as error:  # Redis or the database briefly away: try again soon
            logger.warning("could not renew the poller's lease: %s", error)
            continue
        if not held:
            # Another poller took it (this one was frozen longer than the TTL): two must never
            # poll at once, so this one stops.
            logger.error("the poller's lease was taken by %s; polling stops", await lease.holder())
            result = on_lost()
            if asyncio.iscoroutine(result):
                await result
            return
