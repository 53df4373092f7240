"""A crowd of merchants at once, and a slow Telegram: the bot queues instead of failing, no
database connection waits for Telegram, and /healthz tells the truth about each part.

The bot runs in-process, in the test's event loop (bot.app's own application, web server and
polling or webhook), against the Bot API emulator over HTTP through aiogram's real client.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

import aiohttp
import pytest

from bot.app import Application
from bot.sandbox.telegram_emulator import ChatMessage, SimUser, TelegramEmulator
from tests.e2e.bot_in_process import InProcessBot
from tests.e2e.conftest import StartBot
from tests.e2e.driver import MerchantChat, containing
from tests.helpers.databases import REDIS_URL

pytestmark = pytest.mark.e2e

APOLOGY = "Sorry, something went wrong on our side"
TECHNICAL, PLATFORM_ERROR, SKIP, SEND = "Technical question", "Platform error", "Skip »", "✅ Send"
ACCEPTED = "Your request is accepted"
REGISTERED = "is registered in the official support queue under number"
MERCHANT_MESSAGES = {"sendMessage", "editMessageText"}
T = TypeVar("T")


# Telegram's limits have tests of their own; here they would only pace the crowd.
CROWD_ENV = {
    "SYNC_ENABLED": "false",
    "LOG_LEVEL": "WARNING",
    "TELEGRAM_GLOBAL_RATE": "1000 per second",
}


@asynccontextmanager
async def bot_in_process(
    start_bot: StartBot, emulator: TelegramEmulator, *, webhook: bool = False, **settings: Any
) -> AsyncIterator[Application]:
    """The suite's in-process bot with these settings, once it is polling (its commands set and
    its first long poll waiting) or its webhook is set."""
    env = {**CROWD_ENV, **{name.upper(): str(value) for name, value in settings.items()}}
    bot = await start_bot(webhook=webhook, env=env)
    assert isinstance(bot, InProcessBot) and bot.app is not None
    if not webhook:
        await emulator.wait_until(lambda: emulator.polling)
    try:
        yield bot.app
    finally:
        await bot.stop()


class Watcher:
    """One waiter on the emulator for a whole crowd. The emulator wakes every waiter at every
    event; 200 merchants each waiting on their own would cost more than the bot itself."""

    def __init__(self, emu: TelegramEmulator) -> None:
        self.emu = emu
        self._probes: list[tuple[Callable[[], Any], asyncio.Future[Any]]] = []
        self._task: asyncio.Task[Any] | None = None

    async def __aenter__(self) -> Watcher:
        self._task = asyncio.create_task(self.emu.wait_until(self._check, timeout=3600))
        return self

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        with suppress(asyncio.CancelledError):
            await self._task

    async def until(self, probe: Callable[[], T | None], timeout: float) -> T:
        found = probe()
        if found:
            return found
        future: asyncio.Future[T] = asyncio.get_running_loop().create_future()
        self._probes.append((probe, future))
        try:
            return await asyncio.wait_for(future, timeout)
        finally:
            self._probes = [(p, f) for p, f in self._probes if f is not future]

    def _check(self) -> bool:
        for probe, future in self._probes:
            if not future.done() and (found := probe()):
                future.set_result(found)
        return False  # never done: cancelled by __aexit__


class CrowdChat:
    """A merchant among many: MerchantChat's moves, waited for through the crowd's Watcher."""

    def __init__(self, watcher: Watcher, user: SimUser, *, timeout: float = 60) -> None:
        self.emu, self.watcher, self.user, self.timeout = watcher.emu, watcher, user, timeout

    async def say(self, text: str, until: Callable[[ChatMessage], bool]) -> ChatMessage:
        since = self.emu.mark()
        self.emu.send_text(self.user, text)
        return await self.next_message(until, since)

    async def press(self, message: ChatMessage, text: str) -> ChatMessage:
        """Presses a button that edits `message`; returns it edited."""
        edits = len(message.versions)
        self.emu.press_button(self.user, message, text=text)
        await self.watcher.until(lambda: len(message.versions) > edits, self.timeout)
        return message

    async def press_for_new(
        self, message: ChatMessage, text: str, until: Callable[[ChatMessage], bool]
    ) -> ChatMessage:
        since = self.emu.mark()
        self.emu.press_button(self.user, message, text=text)
        return await self.next_message(until, since)

    async def next_message(
        self, until: Callable[[ChatMessage], bool], since: int = 0
    ) -> ChatMessage:
        def probe() -> ChatMessage | None:
            return next(
                (m for m in self.emu.bot_messages(self.user) if m.seq > since and until(m)), None
            )

        return await self.watcher.until(probe, self.timeout)


def crowd(size: int, first_id: int = 7_100_000) -> list[SimUser]:
    return [
        SimUser(id=first_id + i, first_name=f"Merchant {i}", language_code="en")
        for i in range(size)
    ]


async def file_a_request(chat: CrowdChat) -> None:
    """/new → type → category → subject → description → Done → files (skipped) → review → Send
    → accepted → number."""
    types = await chat.say("/new", until=lambda m: bool(m.buttons))
    categories = await chat.press(types, TECHNICAL)
    subject_prompt = await chat.press(categories, PLATFORM_ERROR)
    assert "subject" in subject_prompt.content
    await chat.say(
        f"Checkout fails for merchant {chat.user.id}", until=containing("Describe the problem")
    )
    status = await chat.say(
        "Steps: add a product to the cart, press Checkout. Error 500.",
        until=containing("Received: 1 message"),
    )
    files = await chat.press(status, "✅ Done")
    assert "<b>Files</b>" in files.raw_text
    review = await chat.press(files, SKIP)
    assert "Please check your request" in review.content
    await chat.press_for_new(review, SEND, until=containing(ACCEPTED))
    await chat.next_message(containing(REGISTERED))


def apologies(emulator: TelegramEmulator, users: list[SimUser]) -> list[str]:
    said = [
        m.content for user in users for m in emulator.bot_messages(user) if APOLOGY in m.content
    ]
    alerts = [a.text or "" for a in emulator.answered_callbacks if APOLOGY in (a.text or "")]
    return said + alerts


async def get_health(app: Application, timeout: float = 5) -> tuple[int, dict[str, Any]]:
    url = f"http://127.0.0.1:{app.settings.web_port}/healthz"
    async with (
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http,
        http.get(url) as response,
    ):
        return response.status, await response.json()


class CallWatch:
    """Watches the bot's calls of `methods` as they reach the emulator; with `hold`, each one
    is kept that long before it is answered (a Telegram slow for them)."""

    def __init__(self, emulator: TelegramEmulator, methods: set[str], hold: float = 0) -> None:
        self.methods, self.hold = methods, hold
        self.arrived = self.in_flight = self.most = 0
        self._arrivals: list[tuple[int, asyncio.Event]] = []
        emulator.on_call = self._on_call

    async def until_arrived(self, count: int, timeout: float = 10) -> None:
        event = asyncio.Event()
        self._arrivals.append((count, event))
        self._signal()
        await asyncio.wait_for(event.wait(), timeout)

    async def _on_call(self, method: str) -> None:
        if method not in self.methods:
            return
        self.arrived += 1
        self.in_flight += 1
        self.most = max(self.most, self.in_flight)
        self._signal()
        try:
            await asyncio.sleep(self.hold)
        finally:
            self.in_flight -= 1

    def _signal(self) -> None:
        for count, event in self._arrivals:
            if self.arrived >= count:
                event.set()


async def gather_all(walks: list[Awaitable[None]]) -> None:
    results = await asyncio.gather(*walks, return_exceptions=True)
    failures = [r for r in results if isinstance(r, BaseException)]
    if failures:
        first = (str(failures[0]) or repr(failures[0]))[:500]
        raise AssertionError(f"{len(failures)} of {len(results)} walks failed, first: {first}")


# --- A crowd ---------------------------------------------------------------------------------


@pytest.fixture(
    params=[
        ("sqlite", "sql"),
        pytest.param(("postgres", "sql"), marks=pytest.mark.postgres),
        pytest.param(("sqlite", "redis"), marks=pytest.mark.redis),
    ],
    ids=["sqlite", "postgres", "sqlite-redis-fsm"],
)
def storage_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    """The database, and where the FSM lives: SQLite and PostgreSQL with the SQL FSM, and the
    Redis FSM."""
    database, fsm = request.param
    settings: dict[str, Any] = {"database_url": request.getfixturevalue(f"{database}_url")}
    if fsm == "redis":
        settings["redis_url"] = REDIS_URL
        settings["redis_key_prefix"] = request.getfixturevalue("redis_prefix")
    return settings


# One crowd at a time, on one xdist worker (the group is handed out first): three crowds of 200
# at once on two cores left a walk timing out, while the other workers take the rest meanwhile.
@pytest.mark.xdist_group("crowds")
async def test_two_hundred_merchants_file_requests_at_once_and_nobody_gets_an_apology(
    emulator: TelegramEmulator, start_bot: StartBot, storage_settings: dict[str, Any]
) -> None:
    users = crowd(200)
    # The default pool and concurrency: the set-up a deployment gets.
    async with bot_in_process(start_bot, emulator, **storage_settings) as app:
        loop = asyncio.get_running_loop()
        started = loop.time()
        # Each walks the wizard, presses Send, and gets the number from the queue.
        async with Watcher(emulator) as watcher:
            await gather_all([file_a_request(CrowdChat(watcher, user)) for user in users])
        walked = loop.time() - started
        code, health = await get_health(app)
    print(f"200 merchants from /new to their ticket's number: {walked:.1f} s")
    assert apologies(emulator, users) == []
    assert [c for c in emulator.failed_calls if c.method in MERCHANT_MESSAGES] == []
    assert code == 200 and health["status"] == "ok", health
    for user in users:  # every one told once, "accepted" before the number
        said = [m.content for m in emulator.bot_messages(user)]
        told = [text for text in said if ACCEPTED in text or REGISTERED in text]
        assert [ACCEPTED in told[0], REGISTERED in told[-1], len(told)] == [True, True, 2], said


async def test_no_connection_waits_for_telegram_so_a_pool_of_one_serves_several_chats(
    emulator: TelegramEmulator, start_bot: StartBot
) -> None:
    """One connection, five merchants at once, and Telegram takes longer to answer each message
    than an update may wait for a connection: only an update that lets go of its connection
    before it calls Telegram lets the others through."""
    settings = dict(
        database_pool_size=1,
        database_max_overflow=0,
        database_pool_timeout_seconds=1.0,
        max_concurrent_updates=5,
    )
    users = crowd(5)
    async with bot_in_process(start_bot, emulator, **settings):
        CallWatch(emulator, MERCHANT_MESSAGES, hold=1.5)
        await gather_all(
            [
                MerchantChat(emulator, user).say("/new", until=lambda m: bool(m.buttons))
                for user in users
            ]
        )
    assert apologies(emulator, users) == []


@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_a_crowd_is_handled_a_few_updates_at_a_time(
    emulator: TelegramEmulator, start_bot: StartBot, mode: str
) -> None:
    settings = dict(max_concurrent_updates=3)
    users = crowd(12)
    async with bot_in_process(start_bot, emulator, webhook=mode == "webhook", **settings):
        calls = CallWatch(emulator, {"sendMessage"}, hold=0.3)
        await gather_all(
            [
                MerchantChat(emulator, user).say("/new", until=lambda m: bool(m.buttons))
                for user in users
            ]
        )
    assert calls.most == 3
    assert apologies(emulator, users) == []


# --- /healthz -------------------------------------------------------------------------------


async def test_healthz_stays_green_while_telegram_is_slow_and_the_pool_is_taken(
    emulator: TelegramEmulator, start_bot: StartBot
) -> None:
    """Telegram takes 3 s to answer, ten merchants write at once, the pool's two connections
    are taken: /healthz answers at once, and green, from a connection of its own."""
    settings = dict(database_pool_size=2, database_max_overflow=0, max_concurrent_updates=10)
    users = crowd(10)
    async with bot_in_process(start_bot, emulator, **settings) as app:
        calls = CallWatch(emulator, {"sendMessage"})
        emulator.slow_down(3.0)
        walks = [
            MerchantChat(emulator, user, timeout=30).say("/new", until=lambda m: bool(m.buttons))
            for user in users
        ]
        walking = asyncio.gather(*walks)
        # Merchants' answers are on their way to a Telegram that takes its time.
        await calls.until_arrived(2, timeout=30)
        # And whatever holds the bot's whole pool (here the test) cannot hold the check up.
        async with app.engine.connect() as first, app.engine.connect() as second:
            await first.exec_driver_sql("SELECT 1")
            await second.exec_driver_sql("SELECT 1")
            code, health = await get_health(app, timeout=2)
        emulator.slow_down(0)  # Telegram recovers; everyone gets their answer
        await walking
    assert code == 200, health
    assert health["status"] == "ok"
    assert health["checks"]["database"] == {"status": "ok"}


async def test_healthz_reports_each_part_as_json(
    emulator: TelegramEmulator, start_bot: StartBot, redis_prefix: str
) -> None:
    settings = dict(redis_url=REDIS_URL, redis_key_prefix=redis_prefix)
    async with bot_in_process(start_bot, emulator, **settings) as app:
        code, health = await get_health(app)
        assert code == 200
        assert health["status"] == "ok"
        assert health["checks"]["database"] == {"status": "ok"}
        assert health["checks"]["redis"] == {"status": "ok"}
        assert health["checks"]["queue"]["status"] == "ok"
        assert health["checks"]["filing"] == {
            "status": "ok",
            "backlog": 0,
            "refused": 0,
            "oldest_seconds": None,
            "alert_after_seconds": 600,
        }

        # The queue said no, for good (a revoked token): degraded, not down.
        app.queue_health.refused("QueueRejected: 401 Unauthorized")
        code, health = await get_health(app)
        assert code == 200
        assert health["status"] == "degraded"
        assert health["checks"]["queue"]["status"] == "refusing"
        assert (
            health["checks"]["queue"]["last_refusal"]["error"] == "QueueRejected: 401 Unauthorized"
        )

        # Transient failures after the refusal do not hide it; a success ends it.
        app.queue_health.failed_transiently("QueueUnavailable: timeout")
        assert (await get_health(app))[1]["status"] == "degraded"
        app.queue_health.succeeded()
        code, health = await get_health(app)
        assert (code, health["status"], health["checks"]["queue"]["status"]) == (200, "ok", "ok")
