"""Telegram's limits in one place: every message the bot sends waits for its turn here.

Telegram refuses (429 "Too Many Requests: retry after N") a bot that sends more than about 30
messages a second overall, more than one a second into one private chat, or more than 20 a minute
into one group (https://core.telegram.org/bots/faq#my-bot-is-hitting-limits-how-do-i-avoid-this).
`TelegramLimiter` admits a message only when the bot-wide window and the chat's window both have
room, using `limits`' moving-window strategy (a fixed or sliding-counter window would let two
messages into a chat within a second across a window boundary). The windows live in storage
shared by every process of the deployment: Redis when REDIS_URL is set, else the SQL database
(services/rate_limit_storage.py). On Redis a message is admitted in one round trip (a script
that checks and records both windows and the cool-down); on SQL through `limits`' calls. A 429 is
remembered per chat (`cool_down`) in the same storage, so every sender to that chat waits it out
while other chats go on.

`TelegramLimitsMiddleware` puts every Bot API call that creates a message through the limiter.
Callers that can retry later themselves (the notice delivery worker) wrap their sends in
`caller_reschedules()` and get the TelegramRetryAfter at once; others (a handler answering a
user) wait and retry a bounded number of times.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, cast

from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.exceptions import TelegramRetryAfter
from aiogram.methods import (
    CopyMessage,
    CopyMessages,
    EditMessageCaption,
    EditMessageLiveLocation,
    EditMessageMedia,
    EditMessageReplyMarkup,
    EditMessageText,
    ForwardMessage,
    ForwardMessages,
    SendAnimation,
    SendAudio,
    SendContact,
    SendDice,
    SendDocument,
    SendLocation,
    SendMediaGroup,
    SendMessage,
    SendPhoto,
    SendPoll,
    SendSticker,
    SendVenue,
    SendVideo,
    SendVideoNote,
    SendVoice,
    StopMessageLiveLocation,
    StopPoll,
    TelegramMethod,
)
from aiogram.methods.base import Response, TelegramType
from limits import RateLimitItem, parse
from limits.aio.storage import MovingWindowSupport, Storage
from limits.aio.storage import RedisStorage as LimitsRedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from redis.commands.core import AsyncScript
from redis.exceptions import RedisError
from sqlalchemy.exc import SQLAlchemyError

from bot.keyed_locks import KeyedLocks

if TYPE_CHECKING:
    from aiogram import Bot

logger = logging.getLogger(__name__)

# What the shared windows' storage raises while Redis or the database is down or restarting.
STORAGE_ERRORS = (RedisError, SQLAlchemyError, OSError)

ChatId = int | str

# Methods that put a message into a chat: each counts against the bot-wide and the chat's window.
SENDS: tuple[type[TelegramMethod[Any]], ...] = (
    SendMessage, SendDocument, SendPhoto, SendAnimation, SendAudio, SendVideo, SendVideoNote,
    SendVoice, SendSticker, SendLocation, SendVenue, SendContact, SendPoll, SendDice,
    SendMediaGroup, CopyMessage, CopyMessages, ForwardMessage, ForwardMessages,
)  # fmt: skip
# Methods that change a message already sent: not counted, but they wait out a chat's cool-down.
EDITS: tuple[type[TelegramMethod[Any]], ...] = (
    EditMessageText, EditMessageCaption, EditMessageMedia, EditMessageReplyMarkup,
    EditMessageLiveLocation, StopMessageLiveLocation, StopPoll,
)  # fmt: skip

STORAGE_CONCURRENCY = 4  # storage calls in flight per process

_caller_reschedules: contextvars.ContextVar[bool] = contextvars.ContextVar(
    "telegram_limits_caller_reschedules", default=False
)


@contextlib.contextmanager
def caller_reschedules() -> Iterator[None]:
    """Sends inside this block get TelegramRetryAfter at once instead of waiting: the caller (the
    delivery worker) records the cool-down anyway and reschedules the message itself."""
    token = _caller_reschedules.set(True)
    try:
        yield
    finally:
        _caller_reschedules.reset(token)


@dataclass(frozen=True)
class TelegramRates:
    """The windows, as `limits` rate strings ("30/second", "20 per minute", "20 per 2 seconds")."""

    bot: str = "30 per second"
    private_chat: str = "1 per second"
    group: str = "20 per minute"
    # Extra room kept in every window (seconds): a message is admitted only when the window
    # stretched by this much has room, so the delay between admission here and arrival at
    # Telegram (the event loop's latency, the network's jitter) cannot squeeze one message too
    # many into Telegram's window.
    margin: float = 0.1


# Redis: admission in one round trip. The cool-down, the chat's window and the bot's window are
# checked, and the message recorded in both, by one script (atomic, on Redis's own clock): the
# general path below takes five storage calls. Windows are lists of admission times, newest
# first, as `limits`' moving windows are; the cool-down key is the one `cool_down` writes.
# Returns {verdict, seconds to wait}: 0 admitted, 1 cooling down, 2 chat full, 3 bot full.
_ADMIT_LUA = """
local clock = redis.call('TIME')
local now = tonumber(clock[1]) + tonumber(clock[2]) / 1000000
local cooling = redis.call('PTTL', KEYS[1])
if cooling > 0 then return {1, tostring(cooling / 1000)} end
local function wait_for(key, amount, span, cost)
  local entry = redis.call('LINDEX', key, amount - cost)
  if entry then
    local wait = tonumber(entry) + span - now
    if wait > 0 then return wait end
  end
  return 0
end
local function record(key, amount, span, cost)
  for _ = 1, cost do redis.call('LPUSH', key, tostring(now)) end
  redis.call('LTRIM', key, 0, amount - 1)
  redis.call('PEXPIRE', key, math.ceil(span * 1000))
end
local chat_amount, chat_span, chat_cost = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local bot_amount, bot_span, bot_cost = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local wait = wait_for(KEYS[2], chat_amount, chat_span, chat_cost)
if wait > 0 then return {2, tostring(wait)} end
wait = wait_for(KEYS[3], bot_amount, bot_span, bot_cost)
if wait > 0 then return {3, tostring(wait)} end
record(KEYS[2], chat_amount, chat_span, chat_cost)
record(KEYS[3], bot_amount, bot_span, bot_cost)
return {0, '0'}
"""
_ADMITTED, _COOLING, _CHAT_FULL, _BOT_FULL = 0, 1, 2, 3


class TelegramLimiter:
    """Admits messages within Telegram's limits, across every process sharing `storage`."""

    def __init__(self, storage: Storage, rates: TelegramRates | None = None) -> None:
        if not isinstance(storage, MovingWindowSupport):
            raise TypeError(f"{type(storage).__name__} does not support moving windows")
        rates = rates or TelegramRates()
        self.storage = storage
        self._strategy = MovingWindowRateLimiter(storage)
        self._bot = parse(rates.bot)
        self._private = parse(rates.private_chat)
        self._group = parse(rates.group)
        self._margin = rates.margin
        # In one process, one sender at a time competes for a chat, and one at a time for the
        # bot-wide window (FIFO): the shared storage then sees a few calls per message, not a
        # stampede of every waiting sender each time a window frees.
        self._chat_locks = KeyedLocks()
        self._bot_lock = asyncio.Lock()
        # A thousand chats waiting at once must not take a thousand storage connections.
        self._storage_slots = asyncio.Semaphore(STORAGE_CONCURRENCY)
        # On Redis, admission is one script call (_ADMIT_LUA); elsewhere the general path.
        self._admit_script: AsyncScript | None = None
        self._key_prefix: str = ""
        if isinstance(storage, LimitsRedisStorage):
            client = storage.bridge.storage  # type: ignore[attr-defined]  # limits' redis-py client
            self._admit_script = client.register_script(_ADMIT_LUA)
            self._key_prefix = str(storage.bridge.key_prefix)

    async def acquire(self, chat_id: ChatId, cost: int = 1) -> None:
        """Waits (sleeping, never spinning) until one message (or `cost`, e.g. a media group)
        may go to the chat now; records it in both windows."""
        chat = str(chat_id)
        window = self._window_for(chat_id)
        chat_cost = min(cost, window.amount)  # a media group fills a private chat's second
        if self._admit_script is not None:
            await self._acquire_in_one_call(chat_id, window, chat_cost, min(cost, self._bot.amount))
            return
        async with self._chat_locks.hold(chat):
            while True:
                await self.wait_cool_down(chat_id)
                await self._wait_for_room(window, chat_cost, "chat", chat)
                # The sender holding the bot lock is about to send: its storage calls skip the
                # queue of waiting senders, so nothing delays the send after its admission.
                async with self._bot_lock:
                    bot_cost = min(cost, self._bot.amount)
                    while True:
                        await self._wait_for_room(self._bot, bot_cost, "bot", first=True)
                        if await self._hit(self._bot, bot_cost, "bot", first=True):
                            break
                    if await self._hit(window, chat_cost, "chat", chat, first=True):
                        return
                # Another process took the chat's turn meanwhile: the bot-wide unit is spent
                # (windows cannot give back), which only slows the bot a little.

    async def _acquire_in_one_call(
        self, chat_id: ChatId, window: RateLimitItem, chat_cost: int, bot_cost: int
    ) -> None:
        assert self._admit_script is not None
        chat = str(chat_id)
        keys = [
            f"{self._key_prefix}:{self._cool_down_key(chat_id)}",
            f"{self._key_prefix}:telegram/window/{window.key_for('chat', chat)}",
            f"{self._key_prefix}:telegram/window/{self._bot.key_for('bot')}",
        ]
        arguments = [
            window.amount,
            window.get_expiry() + self._margin,
            chat_cost,
            self._bot.amount,
            self._bot.get_expiry() + self._margin,
            bot_cost,
        ]
        async with self._chat_locks.hold(chat):
            while True:
                # One sender at a time per process tries the bot's window, and keeps trying
                # while only the bot's window is full: the waiting senders queue here (FIFO)
                # rather than all waking at once when it frees.
                async with self._bot_lock:
                    while True:
                        async with self._storage_slots:
                            verdict, wait = await self._admit_script(keys=keys, args=arguments)
                        if int(verdict) == _ADMITTED:
                            return
                        if int(verdict) != _BOT_FULL:
                            break
                        await asyncio.sleep(float(wait))
                await asyncio.sleep(max(float(wait), 0.001))  # the chat's window or cool-down

    async def cool_down(self, chat_id: ChatId, seconds: float) -> None:
        """Telegram said "retry after `seconds`" for this chat: no process sends to it before."""
        key = self._cool_down_key(chat_id)
        until = time.time() + seconds
        async with self._storage_slots:
            if await self.storage.get(key) and await self.storage.get_expiry(key) >= until:
                return  # a longer cool-down is already running
            await self.storage.clear(key)
            # The counter's expiry is the cool-down. Redis reports TTLs rounded to whole
            # seconds, up to half a second early: half a second more keeps the wait long enough.
            await self.storage.incr(key, math.ceil(seconds + 0.5))

    async def wait_cool_down(self, chat_id: ChatId) -> None:
        key = self._cool_down_key(chat_id)
        while True:
            async with self._storage_slots:
                if not await self.storage.get(key):
                    return
                until = await self.storage.get_expiry(key)
            await asyncio.sleep(max(until - time.time(), 0.1))

    async def close(self) -> None:
        """Closes the storage's connections if it owns any (Redis)."""
        bridge = getattr(self.storage, "bridge", None)
        client = getattr(bridge, "storage", None)
        if client is not None and hasattr(client, "aclose"):
            await client.aclose()

    # ------------------------------------------------------------------ internals

    def _window_for(self, chat_id: ChatId) -> RateLimitItem:
        # Private chats have positive ids; groups, supergroups and channels negative ones (or
        # an @username, which only channels and public groups have).
        return self._private if isinstance(chat_id, int) and chat_id > 0 else self._group

    @staticmethod
    def _cool_down_key(chat_id: ChatId) -> str:
        return f"telegram/cool-down/{chat_id}"

    async def _wait_for_room(
        self, item: RateLimitItem, cost: int, *identifiers: str, first: bool = False
    ) -> None:
        """Sleeps until the window, stretched by the margin, has room for `cost`."""
        storage = cast(MovingWindowSupport, self.storage)
        stretched = item.get_expiry() + self._margin
        while True:
            async with self._storage_slot(first):
                oldest, count = await storage.get_moving_window(
                    item.key_for(*identifiers),
                    item.amount,
                    stretched,  # type: ignore[arg-type]  # a fractional window is fine to read
                )
            if count + cost <= item.amount:
                return
            await asyncio.sleep(max(oldest + stretched - time.time(), 0.001))

    async def _hit(
        self, item: RateLimitItem, cost: int, *identifiers: str, first: bool = False
    ) -> bool:
        async with self._storage_slot(first):
            return await self._strategy.hit(item, *identifiers, cost=cost)

    def _storage_slot(self, first: bool) -> contextlib.AbstractAsyncContextManager[Any]:
        return contextlib.nullcontext() if first else self._storage_slots


@dataclass(frozen=True)
class RetryBudget:
    """How long a caller that cannot reschedule (a handler) waits out 429s before giving up."""

    attempts: int = 3
    seconds: float = 60.0


class TelegramLimitsMiddleware(BaseRequestMiddleware):
    """Every message-creating Bot API call waits for the limiter; a 429 cools the chat down."""

    def __init__(
        self,
        limiter: TelegramLimiter,
        budget: RetryBudget | None = None,
        *,
        on_retry_after: Callable[[], None] | None = None,
    ) -> None:
        self.limiter = limiter
        self.budget = budget or RetryBudget()
        self._on_retry_after = on_retry_after or (lambda: None)  # frontdesk_telegram_retry_after

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        counted = isinstance(method, SENDS)
        chat_id = _chat_of(method) if counted or isinstance(method, EDITS) else None
        if chat_id is None:
            return await make_request(bot, method)
        retries = 0
        waited = 0.0
        while True:
            try:
                if counted:
                    await self.limiter.acquire(chat_id, _cost_of(method))
                else:
                    await self.limiter.wait_cool_down(chat_id)
            except STORAGE_ERRORS:
                # The windows are unreachable (Redis or the database restarting): the message
                # goes out unpaced rather than not at all (an apology for that very outage
                # among them); a 429 from Telegram is still waited out below.
                logger.warning(
                    "Telegram limits storage unreachable: %s to chat %s sent unpaced",
                    method.__api_method__,
                    chat_id,
                )
            try:
                return await make_request(bot, method)
            except TelegramRetryAfter as error:
                self._on_retry_after()
                try:
                    await self.limiter.cool_down(chat_id, error.retry_after)
                except STORAGE_ERRORS:
                    if not _caller_reschedules.get():
                        await asyncio.sleep(error.retry_after)
                retries += 1
                waited += error.retry_after
                if (
                    _caller_reschedules.get()
                    or retries > self.budget.attempts
                    or waited > self.budget.seconds
                ):
                    raise
                logger.warning(
                    "Telegram asked to wait %s s before %s to chat %s; waiting",
                    error.retry_after,
                    method.__api_method__,
                    chat_id,
                )


def _chat_of(method: TelegramMethod[Any]) -> ChatId | None:
    chat_id = getattr(method, "chat_id", None)
    if isinstance(chat_id, str) and chat_id.lstrip("-").isdigit():
        return int(chat_id)
    return chat_id if isinstance(chat_id, int | str) else None


def _cost_of(method: TelegramMethod[Any]) -> int:
    if isinstance(method, SendMediaGroup):
        return max(len(method.media), 1)
    if isinstance(method, CopyMessages | ForwardMessages):
        return max(len(method.message_ids), 1)
    return 1
