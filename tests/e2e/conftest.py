"""End-to-end fixtures: the Bot API emulator on loopback and the real bot process."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from tests.e2e.bot_process import BotProcess
from tests.e2e.telegram_emulator import TelegramEmulator
from tests.helpers.databases import REDIS_URL

TOKEN = "7000001:e2e-test-token"

StartBot = Callable[..., Awaitable[BotProcess]]


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator(token=TOKEN, bot_username="frontdesk_e2e_bot") as emu:
        yield emu


@pytest.fixture
async def start_bot(
    emulator: TelegramEmulator, tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[StartBot]:
    """Starts `python -m bot run` against the emulator. Each call is a new process over the same
    database (a restart); keyword `env` adds settings."""
    processes: list[BotProcess] = []
    base_env = {
        "BOT_TOKEN": TOKEN,
        "TELEGRAM_API_URL": emulator.base_url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'frontdesk.sqlite3'}",
        "FILING_RETRY_BASE_SECONDS": "0.5",
        "FILING_RETRY_CAP_SECONDS": "2",
        "FILING_LEASE_SECONDS": "5",
    }

    async def start(*, webhook: bool = False, env: dict[str, str] | None = None) -> BotProcess:
        process = BotProcess(
            {**base_env, **(env or {})},
            webhook=webhook,
            log_path=tmp_path / f"bot-{len(processes)}.log",
        )
        processes.append(process)
        await process.start()
        return process

    yield start
    for process in processes:
        await process.stop()
    failed = getattr(request.node, "rep_call", None)
    if (failed is not None and failed.failed) or os.environ.get("FRONTDESK_E2E_LOGS"):
        for process in processes:
            print(f"--- {process.log_path.name}\n{process.log()}")


@pytest.fixture
def redis_env(redis_prefix: str) -> dict[str, str]:
    return {"REDIS_URL": REDIS_URL, "REDIS_KEY_PREFIX": redis_prefix}


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
