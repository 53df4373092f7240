"""Several processes (issue 11, point 2): two webhook processes on one port (SO_REUSEPORT, no
workers of their own) and two `frontdesk worker` processes, against one PostgreSQL database and
Redis, the builtin queue; Telegram sends some updates twice. Every update is handled once,
every ticket filed once, every notice delivered once. And: a second poller of one bot is
refused while the first polls; SQLite refuses to be several processes.

Real processes (`python -m bot …`), as a deployment runs them; the emulator is Telegram.
"""

from __future__ import annotations

import asyncio
import os
import re
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import pytest
from aiogram.types import Update
from redis.asyncio import Redis
from sqlalchemy import func, select

from bot.sandbox.telegram_emulator import SimUser, TelegramEmulator
from services.db.engine import create_engine, create_sessionmaker
from services.db.models import BuiltinQueueTicket, FilingOutbox, Notice, NoticeState, Ticket
from tests.e2e.bot_process import ROOT, BotProcess, free_port
from tests.e2e.conftest import TOKEN, StartBot, _bot_env
from tests.e2e.driver import MerchantChat, containing
from tests.e2e.test_crowd_e2e import (
    ACCEPTED,
    PLATFORM_ERROR,
    REGISTERED,
    SEND,
    SKIP,
    TECHNICAL,
    CrowdChat,
    Watcher,
    apologies,
    crowd,
    gather_all,
)
from tests.e2e.test_metrics_e2e import scrape_until, value
from tests.helpers.databases import REDIS_URL
from tests.helpers.forked_cli import ForkServer, run_plain

pytestmark = pytest.mark.e2e

T = TypeVar("T")
HANDLED = re.compile(r"Update id=(\d+) is (handled|not handled)")


class Processes:
    """Starts `python -m bot …` processes over one set of settings; stops them all at the end
    and prints their logs when the test failed."""

    def __init__(self, env: dict[str, str], tmp_path: Path, server: ForkServer | None) -> None:
        self.env = env
        self.tmp_path = tmp_path
        self.server = server
        self.started: list[BotProcess] = []

    async def start(
        self, *, webhook: bool = False, command: tuple[str, ...] = ("run",), **env: str
    ) -> BotProcess:
        process = BotProcess(
            {**self.env, **env},
            webhook=webhook,
            log_path=self.tmp_path / f"{command[0]}-{len(self.started)}.log",
            command=command,
            server=self.server,
        )
        self.started.append(process)
        await process.start(timeout=60)
        return process


@pytest.fixture
async def processes(
    emulator: TelegramEmulator,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    fork_server: ForkServer | None,
) -> AsyncIterator[Callable[[dict[str, str]], Processes]]:
    made: list[Processes] = []

    def make(env: dict[str, str]) -> Processes:
        made.append(Processes(env, tmp_path, fork_server))
        return made[-1]

    yield make
    everything = [process for group in made for process in group.started]
    await asyncio.gather(*(process.stop() for process in everything))
    failed = getattr(request.node, "rep_call", None)
    if (failed is not None and failed.failed) or os.environ.get("FRONTDESK_E2E_LOGS"):
        for process in everything:
            print(f"--- {process.log_path.name}\n{process.log()}")


def handled_lines(logs: list[str]) -> list[tuple[int, bool]]:
    """(update_id, handled) for each update a process's dispatcher finished with."""
    return [
        (int(found.group(1)), found.group(2) == "handled")
        for log in logs
        for found in HANDLED.finditer(log)
    ]


def latest_update_of(emulator: TelegramEmulator, user: SimUser) -> Update:
    for update in reversed(emulator.updates):
        event = update.message or update.callback_query
        if event is not None and event.from_user is not None and event.from_user.id == user.id:
            return update
    raise LookupError(f"no update of user {user.id}")


async def walk_with_redeliveries(chat: CrowdChat, *, redeliver: bool) -> None:
    """The wizard from /new to the ticket's number. With `redeliver`, Telegram sends three of
    the merchant's updates again: /new once it was answered (a redelivery long after), the
    subject and Send at once (a redelivery while the first is being handled)."""
    emu, user = chat.emu, chat.user
    types = await chat.say("/new", until=lambda m: bool(m.buttons))
    if redeliver:
        emu.redeliver(latest_update_of(emu, user))
    categories = await chat.press(types, TECHNICAL)
    await chat.press(categories, PLATFORM_ERROR)
    since = emu.mark()
    emu.send_text(user, f"Checkout fails for merchant {user.id}")
    if redeliver:
        emu.redeliver(latest_update_of(emu, user))
    await chat.next_message(containing("Describe the problem"), since)
    status = await chat.say(
        "Steps: add a product to the cart, press Checkout. Error 500.",
        until=containing("Received: 1 message"),
    )
    files = await chat.press(status, "✅ Done")
    review = await chat.press(files, SKIP)
    since = emu.mark()
    emu.press_button(user, review, text=SEND)
    if redeliver:
        emu.redeliver(latest_update_of(emu, user))
    await chat.next_message(containing(ACCEPTED), since)
    await chat.next_message(containing(REGISTERED), since)


async def until_async(
    read: Callable[[], Awaitable[T]], done: Callable[[T], bool], timeout: float
) -> T:
    """Reads until `done` says so (a peer's state: a Redis key, a count)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        value = await read()
        if done(value):
            return value
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"still {value!r} after {timeout} s")
        await asyncio.sleep(0.1)


class Announcements:
    """What the webhook processes announce to the workers (bot/wake_bus.py), heard as a worker
    hears it."""

    def __init__(self, channel: str) -> None:
        self.channel = channel
        self.names: list[str] = []
        self._redis = Redis.from_url(REDIS_URL)
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> Announcements:
        pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
        await pubsub.subscribe(self.channel)

        async def listen() -> None:
            async for message in pubsub.listen():
                self.names.append(message["data"].decode())

        self._task = asyncio.create_task(listen())
        self._pubsub = pubsub
        return self

    async def until_listened_by(self, count: int, timeout: float) -> None:
        """Until `count` subscribers listen on the channel (the workers subscribe as they start)."""

        async def listeners() -> int:
            return int((await self._redis.pubsub_numsub(self.channel))[0][1])

        await until_async(listeners, lambda listening: listening >= count, timeout)

    async def __aexit__(self, *_: object) -> None:
        assert self._task is not None
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)
        await self._pubsub.aclose()
        await self._redis.aclose()


async def until(condition: Callable[[], Any], timeout: float, what: str) -> None:
    """Waits for what other processes do (their logs, their database rows)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not condition():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"not within {timeout} s: {what}")
        await asyncio.sleep(0.1)


async def database_counts(url: str) -> dict[str, int]:
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:

            async def count(*where: Any, table: Any) -> int:
                return int(
                    await session.scalar(select(func.count()).select_from(table).where(*where)) or 0
                )

            return {
                "tickets": await count(table=Ticket),
                "registered": await count(Ticket.queue_ticket_id.is_not(None), table=Ticket),
                "numbers": int(
                    await session.scalar(select(func.count(func.distinct(Ticket.queue_ticket_id))))
                    or 0
                ),
                "in_queue": await count(table=BuiltinQueueTicket),
                "unfiled": await count(table=FilingOutbox),
                "notices": await count(table=Notice),
                "sent": await count(Notice.state == NoticeState.SENT, table=Notice),
            }
    finally:
        await engine.dispose()


@pytest.mark.postgres
@pytest.mark.redis
async def test_two_webhook_and_two_worker_processes_do_each_update_ticket_and_notice_once(
    emulator: TelegramEmulator,
    processes: Callable[[dict[str, str]], Processes],
    postgres_url: str,
    redis_prefix: str,
) -> None:
    env = {
        **_bot_env(emulator, postgres_url),
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": redis_prefix,
        "MIGRATE_ON_START": "false",  # `frontdesk migrate` ran (the fixture's database)
        "TELEGRAM_GLOBAL_RATE": "1000 per second",
        "LOG_LEVEL": "INFO",  # aiogram logs each update it finished with
    }
    group = processes(env)
    port = str(free_port())
    web = {"RUN_WORKERS": "false", "WEB_REUSE_PORT": "true", "WEB_PORT": port}
    webhooks = await asyncio.gather(
        group.start(webhook=True, **web), group.start(webhook=True, **web)
    )
    workers = await asyncio.gather(
        group.start(command=("worker",)), group.start(command=("worker",))
    )
    # Both listen: each set the webhook once it served.
    await emulator.wait_until(lambda: len(emulator.calls_to("setWebhook")) >= 2, timeout=30)

    users = crowd(10, first_id=7_300_000)
    async with Watcher(emulator) as watcher, Announcements(f"{redis_prefix}:wake") as heard:
        # Both workers listen for the webhook processes' announcements of new work.
        await heard.until_listened_by(2 + 1, timeout=10)  # and this test
        await gather_all(
            [
                walk_with_redeliveries(CrowdChat(watcher, user, timeout=30), redeliver=i % 2 == 0)
                for i, user in enumerate(users)
            ]
        )
    # Send announced the ticket to the filing workers, and its "accepted" to the delivery.
    assert {"filing", "delivery"} <= set(heard.names), heard.names
    redelivered = {update.update_id for update in emulator.redelivered}
    assert len(redelivered) == 15

    def lines() -> list[tuple[int, bool]]:
        return handled_lines([process.log() for process in webhooks])

    # Every second copy has come and gone (dropped) before anything is counted.
    await until(
        lambda: redelivered <= {update_id for update_id, handled in lines() if not handled},
        timeout=20,
        what="each redelivered update dropped",
    )

    # Every update handled once, across both processes.
    handled = Counter(update_id for update_id, was in lines() if was)
    mine = [update.update_id for update in emulator.updates]
    assert {update_id: handled[update_id] for update_id in mine} == dict.fromkeys(mine, 1)
    # Both processes took their share of the webhook's calls.
    shares = [len(handled_lines([process.log()])) for process in webhooks]
    print(f"updates per webhook process: {shares}")
    assert all(shares), shares

    # Every step answered once: the same conversation in every chat, redelivered or not.
    assert apologies(emulator, users) == []
    assert [call for call in emulator.failed_calls if call.method != "getUpdates"] == []
    answers = Counter(answer.callback_query_id for answer in emulator.answered_callbacks)
    assert set(answers.values()) == {1}
    conversations = {len(emulator.bot_messages(user)) for user in users}
    assert len(conversations) == 1, conversations
    for user in users:  # every notice delivered once: "accepted", then the number
        told = [
            m.content
            for m in emulator.bot_messages(user)
            if ACCEPTED in m.content or REGISTERED in m.content
        ]
        assert [ACCEPTED in told[0], REGISTERED in told[-1], len(told)] == [True, True, 2], told

    # Every ticket filed once, in the one queue.
    counts = await database_counts(postgres_url)
    assert counts == {
        "tickets": 10,
        "registered": 10,
        "numbers": 10,
        "in_queue": 10,
        "unfiled": 0,
        "notices": 20,
        "sent": 20,
    }
    for process in [*webhooks, *workers]:  # nobody crashed meanwhile
        assert process.process is not None and process.process.returncode is None


# --- one process: the same, in memory ------------------------------------------------------


async def test_an_update_telegram_sends_again_is_dropped_and_counted(
    emulator: TelegramEmulator, start_bot: StartBot
) -> None:
    """One process without Redis (SQLite): the update ids it handled are in its memory."""
    bot = await start_bot(webhook=True)
    user = crowd(1, first_id=7_400_000)[0]
    chat = MerchantChat(emulator, user)
    types = await chat.say("/new", until=lambda m: bool(m.buttons))
    again = latest_update_of(emulator, user)
    emulator.redeliver(again)
    samples = await scrape_until(
        bot.base_url, lambda s: value(s, "frontdesk_updates_duplicate_total") == 1
    )
    assert value(samples, "frontdesk_updates_duplicate_total") == 1
    assert [d.ok for d in emulator.webhook_deliveries if d.update_id == again.update_id] == [
        True,
        True,
    ]
    # Handled once: one answer to /new, and the wizard goes on from it.
    assert [m.message_id for m in emulator.bot_messages(user)] == [types.message_id]
    categories = await chat.press(types, TECHNICAL)
    assert categories.buttons


# --- one poller per bot -------------------------------------------------------------------


async def run_once(
    server: ForkServer | None, tmp_path: Path, env: dict[str, str], *args: str, timeout: float = 60
) -> tuple[int, str]:
    """`python -m bot <args>` until it exits: its exit code and stderr. Forked from the fork
    server when there is one (frontdesk imported once), else a plain `python -m bot`."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **env}
    if server is not None:
        try:
            return await server.run(list(args), env=env, cwd=ROOT, logs=tmp_path, timeout=timeout)
        except TimeoutError as error:
            pytest.fail(str(error))
    try:
        return await run_plain(list(args), env=env, cwd=ROOT, timeout=timeout)
    except TimeoutError as error:
        pytest.fail(str(error))


def _poller_env(
    emulator: TelegramEmulator, sqlite_url: str, lease_in: str, redis_prefix: str
) -> dict[str, str]:
    """A polling bot whose poller lease lives in the database, or in Redis."""
    env = _bot_env(emulator, sqlite_url)
    if lease_in == "redis":
        env |= {"REDIS_URL": REDIS_URL, "REDIS_KEY_PREFIX": redis_prefix}
    return env


def one_line(code: int, stderr: str) -> str:
    assert code == 2, stderr
    assert "Traceback" not in stderr, stderr
    lines = stderr.strip().splitlines()
    assert len(lines) == 1, stderr
    return lines[0]


@pytest.mark.parametrize("lease_in", ["database", pytest.param("redis", marks=pytest.mark.redis)])
async def test_a_second_poller_of_the_bot_is_refused_while_the_first_polls(
    emulator: TelegramEmulator,
    processes: Callable[[dict[str, str]], Processes],
    sqlite_url: str,
    redis_prefix: str,
    lease_in: str,
    fork_server: ForkServer | None,
    tmp_path: Path,
) -> None:
    env = _poller_env(emulator, sqlite_url, lease_in, redis_prefix)
    group = processes(env)
    first = await group.start()
    await emulator.wait_until(lambda: emulator.polling, timeout=30)

    second = {**env, "WEB_HOST": "127.0.0.1", "WEB_PORT": str(free_port()), "LOG_LEVEL": "WARNING"}
    line = one_line(*await run_once(fork_server, tmp_path, second, "run"))
    assert line.startswith(
        "frontdesk: cannot start: BOT_TOKEN: another process is already polling Telegram for "
        "this bot ("
    ), line
    assert "run several processes in webhook mode" in line
    assert TOKEN.split(":")[1] not in line  # never the secret

    # The first still polls, alone; stopped, it lets go, and the next one starts at once.
    assert first.process is not None and first.process.returncode is None
    assert await first.stop() == 0
    await group.start()
    await emulator.wait_until(lambda: emulator.polling, timeout=30)


@pytest.mark.parametrize("lease_in", ["database", pytest.param("redis", marks=pytest.mark.redis)])
async def test_a_poller_killed_on_this_host_is_replaced_at_once(
    emulator: TelegramEmulator,
    processes: Callable[[dict[str, str]], Processes],
    sqlite_url: str,
    redis_prefix: str,
    lease_in: str,
) -> None:
    """A crash, and systemd (or Docker) restarts the bot at once: its lease names a pid of this
    host that runs nothing now, so the new poller takes it without waiting for its TTL."""
    env = _poller_env(emulator, sqlite_url, lease_in, redis_prefix)
    group = processes(env)
    first = await group.start()
    assert await first.stop(kill=True) == -9  # nothing let the lease go
    second = await group.start()
    assert "took over the poller's lease of" in second.log()


@pytest.mark.redis
async def test_a_poller_of_another_host_holds_the_bot_until_its_claim_lapses(
    emulator: TelegramEmulator,
    processes: Callable[[dict[str, str]], Processes],
    sqlite_url: str,
    redis_prefix: str,
    redis_env: dict[str, str],
    fork_server: ForkServer | None,
    tmp_path: Path,
) -> None:
    """Another host's poller is never judged from here: its claim must lapse (at most
    POLLER_LEASE after it was last renewed, here two seconds)."""
    env = _bot_env(emulator, sqlite_url) | {
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": redis_prefix,
    }
    key = f"{redis_prefix}:lease:poller:{TOKEN.split(':')[0]}"
    redis = Redis.from_url(REDIS_URL)

    async def poll_elsewhere() -> None:  # that host's poller renewing its claim, as ours does
        while True:
            await redis.set(key, "elsewhere:4242:0badcafe", px=2000)
            await asyncio.sleep(0.5)

    elsewhere = asyncio.create_task(poll_elsewhere())
    try:
        await until_async(lambda: redis.exists(key), bool, timeout=5)
        refused = {**env, "WEB_HOST": "127.0.0.1", "WEB_PORT": str(free_port())}
        refused["LOG_LEVEL"] = "WARNING"
        line = one_line(*await run_once(fork_server, tmp_path, refused, "run"))
        assert "already polling Telegram for this bot (elsewhere:4242:0badcafe)" in line
        elsewhere.cancel()  # that host dies: its claim lapses within two seconds
        await until_async(lambda: redis.exists(key), lambda held: not held, timeout=10)
    finally:
        elsewhere.cancel()
        await asyncio.gather(elsewhere, return_exceptions=True)
        await redis.aclose()
    await processes(env).start()  # the lapsed lease is its


# --- SQLite is one process ----------------------------------------------------------------


async def test_sqlite_refuses_a_worker_process(
    emulator: TelegramEmulator, sqlite_url: str, fork_server: ForkServer | None, tmp_path: Path
) -> None:
    env = {**_bot_env(emulator, sqlite_url), "WEB_HOST": "127.0.0.1", "WEB_PORT": str(free_port())}
    line = one_line(*await run_once(fork_server, tmp_path, env, "worker"))
    assert line == (
        "frontdesk: cannot start: DATABASE_URL: `frontdesk worker` needs PostgreSQL: with SQLite "
        "the bot is one process that runs its own workers; run `frontdesk run` alone, or move "
        "to PostgreSQL (docs/deploy.md: several processes)"
    )


async def test_sqlite_refuses_a_bot_without_its_workers(
    emulator: TelegramEmulator, sqlite_url: str, fork_server: ForkServer | None, tmp_path: Path
) -> None:
    env = {
        **_bot_env(emulator, sqlite_url),
        "WEB_HOST": "127.0.0.1",
        "WEB_PORT": str(free_port()),
        "RUN_WORKERS": "false",
    }
    line = one_line(*await run_once(fork_server, tmp_path, env, "run"))
    assert line.startswith("frontdesk: cannot start: RUN_WORKERS: false needs PostgreSQL"), line
    assert line.endswith("unset it, or move to PostgreSQL (docs/deploy.md: several processes)")
