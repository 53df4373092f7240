"""Waking the background workers of other processes: a Redis channel.

In one process a handler that writes work (a ticket to file, a notice to send) wakes the worker
in memory, which starts its round at once. A webhook process that runs no workers
(RUN_WORKERS=false) has none to wake: it announces the work on the channel
`<REDIS_KEY_PREFIX>:wake` instead, and every `frontdesk worker` listening wakes its own. Only
speed depends on it: a worker finds any row at its next poll anyway (delivery every second,
filing and the other outboxes every two), so a lost announcement (Redis away, a worker
reconnecting) costs a second or two, never a row.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Mapping

from redis.asyncio import Redis

logger = logging.getLogger(__name__)

RECONNECT_SECONDS = 1.0


class WakeBus:
    def __init__(self, redis: Redis, channel: str) -> None:
        self._redis = redis
        self.channel = channel
        # At most one announcement of a worker on its way: a second one while it is would wake
        # nobody more (the round it starts sees every row committed before it was sent).
        self._sending: dict[str, asyncio.Task[None]] = {}

    def announcer(self, worker: str) -> Announcer:
        return Announcer(self, worker)

    def announce(self, worker: str) -> None:
        sending = self._sending.get(worker)
        if sending is not None and not sending.done():
            return
        self._sending[worker] = asyncio.create_task(self._publish(worker), name=f"wake-{worker}")

    async def _publish(self, worker: str) -> None:
        try:
            await self._redis.publish(self.channel, worker)
        except Exception as error:  # the worker polls anyway
            logger.debug("could not announce work for %s: %s", worker, error)

    async def listen(self, workers: Mapping[str, Callable[[], None]]) -> None:
        """Until cancelled: wakes the named local worker at each announcement."""
        while True:
            try:
                async with self._redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(self.channel)
                    async for message in pubsub.listen():
                        name = message.get("data")
                        if isinstance(name, bytes):
                            name = name.decode(errors="replace")
                        wake = workers.get(str(name))
                        if wake is not None:
                            wake()
            except asyncio.CancelledError:
                raise
            except Exception as error:
                logger.warning("wake channel lost (%s); the workers poll meanwhile", error)
            await asyncio.sleep(RECONNECT_SECONDS)

    async def close(self) -> None:
        for task in self._sending.values():
            task.cancel()
        await asyncio.gather(*self._sending.values(), return_exceptions=True)


class Announcer:
    """A Waker for a worker that runs in other processes."""

    def __init__(self, bus: WakeBus, worker: str) -> None:
        self._bus = bus
        self._worker = worker

    def wake(self) -> None:
        self._bus.announce(self._worker)


class NoWorker:
    """A Waker for a worker that runs elsewhere, without a channel to reach it: it polls."""

    def wake(self) -> None:
        pass
