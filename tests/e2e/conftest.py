"""End-to-end fixtures: the Bot API emulator on loopback and the real bot, either in the test's
event loop (`start_bot`, the default) or as a child process (`start_bot_process`, for what is
about the process: SIGKILL, signals, the command line)."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from pathlib import Path

import pytest

from bot.sandbox.telegram_emulator import TelegramEmulator
from tests.e2e.bot_in_process import InProcessBot, RunningBot
from tests.e2e.bot_process import BotProcess
from tests.helpers.databases import REDIS_URL
from tests.helpers.forked_cli import ForkServer

TOKEN = "7000001:e2e-test-token"


StartBot = Callable[..., Awaitable[RunningBot]]


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator(token=TOKEN, bot_username="frontdesk_e2e_bot") as emu:
        yield emu


def _bot_env(emulator: TelegramEmulator, database_url: str) -> dict[str, str]:
    return {
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": emulator.base_url,
        "DATABASE_URL": database_url,
        "FILING_RETRY_BASE_SECONDS": "0.5",
        "FILING_RETRY_CAP_SECONDS": "2",
        "FILING_LEASE_SECONDS": "5",
        # Simulated merchants answer at machine speed, which Telegram's one message a second per
        # chat would turn into seconds of waiting per step; the limits have their own tests
        # (test_telegram_limits_e2e.py), and this emulator does not enforce them unless asked.
        "TELEGRAM_CHAT_RATE": "20 per second",
        # Most tests walk the wizard as a merchant linked to no store, filing a platform error:
        # the operator's `technical` choice allows it (test_links_e2e.py tests both choices).
        "UNLINKED_MAY_FILE": "technical",
        # Simulated merchants press at machine speed; flood control has its own tests.
        "FLOOD_MESSAGES": "1000",
        "TICKETS_PER_HOUR": "1000",
    }


async def _starter(
    kind: Callable[..., InProcessBot | BotProcess],
    base_env: dict[str, str],
    tmp_path: Path,
    request: pytest.FixtureRequest,
) -> AsyncIterator[StartBot]:
    """Each call starts a new bot over the same database (a restart); keyword `env` adds
    settings. Every bot is stopped at the end; the logs are printed when the test failed."""
    bots: list[RunningBot] = []

    async def start(*, webhook: bool = False, env: dict[str, str] | None = None) -> RunningBot:
        bot = kind(
            {**base_env, **(env or {})},
            webhook=webhook,
            log_path=tmp_path / f"bot-{len(bots)}.log",
        )
        bots.append(bot)
        await bot.start()
        return bot

    yield start
    for bot in bots:
        await bot.stop()
    failed = getattr(request.node, "rep_call", None)
    if (failed is not None and failed.failed) or os.environ.get("FRONTDESK_E2E_LOGS"):
        for bot in bots:
            print(f"--- {bot.log_path.name}\n{bot.log()}")


@pytest.fixture
async def start_bot(
    emulator: TelegramEmulator, sqlite_url: str, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[StartBot]:
    """Runs the bot application in this test's event loop against the emulator."""
    async for start in _starter(InProcessBot, _bot_env(emulator, sqlite_url), tmp_path, request):
        yield start


@pytest.fixture
async def start_bot_process(
    emulator: TelegramEmulator,
    sqlite_url: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    fork_server: ForkServer | None,
) -> AsyncIterator[StartBot]:
    """Starts `python -m bot run` against the emulator: for tests of the process itself. The
    process is forked from the session's fork server (frontdesk imported once)."""
    env = _bot_env(emulator, sqlite_url)
    async for start in _starter(partial(BotProcess, server=fork_server), env, tmp_path, request):
        yield start


@pytest.fixture
def redis_env(redis_prefix: str) -> dict[str, str]:
    return {"REDIS_URL": REDIS_URL, "REDIS_KEY_PREFIX": redis_prefix}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
