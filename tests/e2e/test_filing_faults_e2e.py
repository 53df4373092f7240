"""The real bot filing into a real RT that fails: the merchant is told, nothing is lost, and RT
ends up with exactly one ticket. The bot runs in the test's event loop, except where it is
killed (a process)."""

from __future__ import annotations

import asyncio

import pytest

from bot.sandbox.telegram_emulator import TelegramEmulator
from tests.e2e.driver import MerchantChat, containing
from tests.helpers.rt_faults import FaultProxy, rt_tickets_with_reference
from tests.helpers.wizard import TEXTS, describe, merchant, walk_to_description
from tests.integration.rt_fixture import RtServer, rt_server

__all__ = ["rt_server"]

# With the integration fault tests, on one xdist worker (see test_filing_rt_faults.py).
pytestmark = [pytest.mark.e2e, pytest.mark.rt, pytest.mark.xdist_group("rt-faults")]


def _env(proxy: FaultProxy, rt: RtServer) -> dict[str, str]:
    return {
        "QUEUE": "rt",
        "RT_URL": proxy.base_url,
        "RT_TOKEN": rt.token,
        "RT_TIMEOUT_SECONDS": "3",
        "FILING_RETRY_BASE_SECONDS": "0.3",
        "FILING_RETRY_CAP_SECONDS": "1",
        "FILING_LEASE_SECONDS": "3",
        "SYNC_ENABLED": "false",
    }


async def _reference(bot_env: dict[str, str]) -> str:
    from sqlalchemy import select

    from services.db.engine import create_engine, create_sessionmaker
    from services.db.models import Ticket

    engine = create_engine(bot_env["DATABASE_URL"])
    try:
        async with create_sessionmaker(engine)() as session:
            return (await session.scalars(select(Ticket.reference))).one()
    finally:
        await engine.dispose()


async def test_rt_down_when_the_merchant_presses_send(
    emulator: TelegramEmulator, start_bot, rt_server: RtServer
) -> None:
    t = TEXTS["ru"]
    async with FaultProxy(rt_server.base_url) as proxy:
        bot = await start_bot(env=_env(proxy, rt_server))
        chat = MerchantChat(emulator, merchant("ru", user_id=5_100_001))
        await walk_to_description(chat, t)
        review = await describe(chat, t["description"])
        await proxy.down()
        since = emulator.mark()
        await chat.press_for_new(review, t["send"], until=containing(t["accepted"]))
        delayed = await emulator.wait_for_message(
            chat.user, containing("тикетная система сейчас не отвечает"), since=since, timeout=20
        )
        assert "отсчитывается с момента регистрации" in delayed.content
        assert "↩️ Ответить" in str(delayed.button_rows)  # every notice of a ticket has Reply

        await proxy.up()
        registered = await emulator.wait_for_message(
            chat.user, containing(t["registered"]), since=since, timeout=30
        )
        assert "Первая реакция" in registered.content
        reference = await _reference(bot.env)
        numbers = await rt_tickets_with_reference(rt_server, reference)
        assert len(numbers) == 1 and f"#{numbers[0]}" in registered.content


async def test_bot_killed_between_rts_answer_and_the_local_commit(
    emulator: TelegramEmulator, start_bot_process, rt_server: RtServer
) -> None:
    t = TEXTS["ru"]
    async with FaultProxy(rt_server.base_url) as proxy:
        env = _env(proxy, rt_server)
        bot = await start_bot_process(env=env)
        chat = MerchantChat(emulator, merchant("ru", user_id=5_100_002))
        await walk_to_description(chat, t)
        review = await describe(chat, t["description"])

        killed = asyncio.Event()

        async def kill_the_bot() -> None:
            await bot.stop(kill=True)  # SIGKILL: RT has the ticket, the bot never hears it
            killed.set()

        proxy.after_create = kill_the_bot
        await chat.press_for_new(review, t["send"], until=containing(t["accepted"]))
        await asyncio.wait_for(killed.wait(), 20)
        proxy.after_create = None

        since = emulator.mark()
        await start_bot_process(env=env)
        registered = await emulator.wait_for_message(
            chat.user, containing(t["registered"]), since=since, timeout=30
        )
        reference = await _reference(bot.env)
        numbers = await rt_tickets_with_reference(rt_server, reference)
        assert len(numbers) == 1 and f"#{numbers[0]}" in registered.content
        assert proxy.creates_forwarded == 1


async def _attempts(bot_env: dict[str, str]) -> list[int]:
    from sqlalchemy import select

    from services.db.engine import create_engine, create_sessionmaker
    from services.db.models import FilingOutbox

    engine = create_engine(bot_env["DATABASE_URL"])
    try:
        async with create_sessionmaker(engine)() as session:
            return list(await session.scalars(select(FilingOutbox.attempts)))
    finally:
        await engine.dispose()


async def test_revoked_rt_token_alerts_tells_once_and_files_once_after_outbox_retry(
    emulator: TelegramEmulator, start_bot, rt_server: RtServer
) -> None:
    import os
    import sys

    import aiohttp

    t = TEXTS["ru"]
    version, user, _ = rt_server.token.split("-", 2)
    env = {
        "QUEUE": "rt",
        "RT_URL": rt_server.base_url,
        "RT_TIMEOUT_SECONDS": "5",
        "FILING_RETRY_BASE_SECONDS": "0.2",
        "FILING_RETRY_CAP_SECONDS": "0.4",
        "SYNC_ENABLED": "false",
    }
    # RT answers a token it does not know (revoked) with 401, as it answers a revoked one.
    bot = await start_bot(env={**env, "RT_TOKEN": f"{version}-{user}-{'0' * 32}"})
    chat = MerchantChat(emulator, merchant("ru", user_id=5_100_003))
    await walk_to_description(chat, t)
    review = await describe(chat, t["description"])
    since = emulator.mark()
    await chat.press_for_new(review, t["send"], until=containing(t["accepted"]))
    refused = await emulator.wait_for_message(
        chat.user, containing("отказалась его зарегистрировать"), since=since, timeout=20
    )
    assert "Служба поддержки уже оповещена" in refused.content
    assert "↩️ Ответить" in str(refused.button_rows)  # every notice of a ticket has Reply

    async with aiohttp.ClientSession() as http, http.get(bot.base_url + "/healthz") as response:
        health = await response.json()
    assert (response.status, health["status"]) == (200, "degraded"), health
    assert health["checks"]["queue"]["status"] == "refusing"
    # No retry storm: at these backoff settings a retried filing would be tried again and again.
    await asyncio.sleep(1.5)
    assert await _attempts(bot.env) == [1]
    await bot.stop()

    # The operator installs a valid token and re-drives what the queue refused.
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "outbox", "retry",
        env={**os.environ, **bot.env}, stdout=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, _ = await process.communicate()
    assert (process.returncode, out.decode().strip()) == (
        0,
        "frontdesk: 1 refused filing(s) re-driven",
    )
    await start_bot(env={**env, "RT_TOKEN": rt_server.token})
    registered = await emulator.wait_for_message(
        chat.user, containing(t["registered"]), since=since, timeout=30
    )
    numbers = await rt_tickets_with_reference(rt_server, await _reference(bot.env))
    assert len(numbers) == 1 and f"#{numbers[0]}" in registered.content
    said = [m.content for m in emulator.bot_messages(chat.user)]
    assert sum("отказалась его зарегистрировать" in text for text in said) == 1
    assert sum(t["registered"] in text for text in said) == 1
