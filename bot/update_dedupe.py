"""Each update handled once, whichever process Telegram sends it to, however often.

Telegram sends an update again when its webhook call failed (a timeout, a connection cut, a
process killed before it answered), possibly to another of the webhook processes. The outermost
update middleware claims the update's id first: the claim is held while the update is handled
(HANDLING_SECONDS, so a process killed mid-update lets a redelivery through once it lapses),
then kept as done for UPDATE_DEDUPE_SECONDS; an update whose handler raised is let go, so
Telegram's next try is handled. With Redis the claim is a key (`SET NX`) shared by every
process; without Redis it is this process's memory — one process, as SQLite requires anyway.
"""

from __future__ import annotations

import logging
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from contextlib import suppress
from typing import Any, Protocol

from aiogram import BaseMiddleware
from aiogram.dispatcher.event.bases import UNHANDLED
from aiogram.types import TelegramObject, Update
from redis.asyncio import Redis

logger = logging.getLogger(__name__)

# A handler taking longer than this is exceptional (a Telegram that answers in minutes); after
# it, a redelivery of an update whose process died is handled.
HANDLING_SECONDS = 120
# Updates remembered in memory at most (~2 MB): minutes of a busy bot's updates, the time in
# which Telegram sends a failed one again.
MEMORY_SIZE = 20_000

Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class UpdateClaims(Protocol):
    async def claim(self, update_id: int) -> bool:
        """True if no process has claimed this update: this one handles it."""
        ...

    async def done(self, update_id: int) -> None:
        """Handled: a redelivery within the dedupe time is dropped."""
        ...

    async def release(self, update_id: int) -> None:
        """Not handled (the handler raised): Telegram's next try is handled."""
        ...


class RedisClaims:
    def __init__(self, redis: Redis, prefix: str, *, ttl: int) -> None:
        self._redis = redis
        self._prefix = prefix
        self._ttl = ttl

    def _key(self, update_id: int) -> str:
        return f"{self._prefix}:{update_id}"

    async def claim(self, update_id: int) -> bool:
        return bool(await self._redis.set(self._key(update_id), b"1", nx=True, ex=HANDLING_SECONDS))

    async def done(self, update_id: int) -> None:
        await self._redis.set(self._key(update_id), b"2", ex=self._ttl)

    async def release(self, update_id: int) -> None:
        await self._redis.delete(self._key(update_id))


class MemoryClaims:
    """The ids this process claimed, newest last, at most `size`; each with its expiry."""

    def __init__(
        self,
        *,
        ttl: int,
        size: int = MEMORY_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._ttl = ttl
        self._size = size
        self._clock = clock
        self._claims: OrderedDict[int, float] = OrderedDict()

    async def claim(self, update_id: int) -> bool:
        now = self._clock()
        # The oldest first: forgotten once expired (the dict stays small while the bot is calm).
        while self._claims and next(iter(self._claims.values())) <= now:
            self._claims.popitem(last=False)
        expires = self._claims.get(update_id)
        if expires is not None and expires > now:
            return False
        self._claims[update_id] = now + HANDLING_SECONDS
        self._claims.move_to_end(update_id)
        while len(self._claims) > self._size:
            self._claims.popitem(last=False)
        return True

    async def done(self, update_id: int) -> None:
        if update_id in self._claims:
            self._claims[update_id] = self._clock() + self._ttl

    async def release(self, update_id: int) -> None:
        self._claims.pop(update_id, None)


class UpdateDedupeMiddleware(BaseMiddleware):
    """Drops an update already claimed (handled, or being handled) by any process."""

    def __init__(self, claims: UpdateClaims, on_duplicate: Callable[[], None]) -> None:
        self._claims = claims
        self._on_duplicate = on_duplicate

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if not isinstance(event, Update):
            return await handler(event, data)
        update_id = event.update_id
        try:
            claimed = await self._claims.claim(update_id)
        except Exception as error:  # Redis away: better handled twice than not at all
            logger.warning("could not claim update %s, handled unclaimed: %s", update_id, error)
            return await handler(event, data)
        if not claimed:
            logger.debug("update %s was already handled or is being handled: dropped", update_id)
            self._on_duplicate()
            return UNHANDLED  # aiogram logs it as "not handled"
        try:
            result = await handler(event, data)
        except BaseException:
            with suppress(Exception):  # the claim lapses anyway
                await self._claims.release(update_id)
            raise
        with suppress(Exception):  # then a redelivery after HANDLING_SECONDS is handled again
            await self._claims.done(update_id)
        return result
