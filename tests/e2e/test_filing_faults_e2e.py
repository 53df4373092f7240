"""The real bot filing into a real RT that fails: the merchant is told, nothing is lost, and RT
ends up with exactly one ticket. The bot runs in the test's event loop, except where it is
killed (a process)."""

from __future__ import annotations

import asyncio

import pytest

from tests.e2e.driver import MerchantChat, containing
from tests.e2e.telegram_emulator import TelegramEmulator
from tests.helpers.rt_faults import FaultProxy, rt_tickets_with_reference
from tests.helpers.wizard import TEXTS, merchant, walk_to_description
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
        review = await chat.say(t["description"], until=containing(t["review"]))
        await proxy.down()
        since = emulator.mark()
        await chat.press_for_new(review, t["send"], until=containing(t["accepted"]))
        delayed = await emulator.wait_for_message(
            chat.user, containing("тикетная система сейчас не отвечает"), since=since, timeout=20
        )
        assert "отсчитывается с момента регистрации" in delayed.content

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
        review = await chat.say(t["description"], until=containing(t["review"]))

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
