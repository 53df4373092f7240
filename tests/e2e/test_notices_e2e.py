"""The real bot process killed between a commit and its message to Telegram: after a restart the
merchant gets the number, and the specialist's reply, exactly once."""

from __future__ import annotations

import asyncio

import pytest

from bot.sandbox.telegram_emulator import TelegramEmulator
from services.db.engine import create_engine, create_sessionmaker
from services.db.models import Notice, NoticeState, Ticket, TicketStatus
from services.queue.builtin import BuiltinQueue
from services.queue.console import BuiltinConsole
from tests.e2e.driver import MerchantChat, containing
from tests.helpers.wizard import TEXTS, describe, merchant, walk_to_description

pytestmark = pytest.mark.e2e

# Short leases: a killed process's claims lapse in seconds, not minutes.
ENV = {"SYNC_INTERVAL_SECONDS": "0.5", "SYNC_OVERLAP_SECONDS": "5", "DELIVERY_LEASE_SECONDS": "3"}


def _text_has(fragment: str):  # type: ignore[no-untyped-def]
    return lambda params: fragment in str(params.get("text", ""))


async def _notice_states(database_url: str) -> dict[str, tuple[NoticeState, int]]:
    from sqlalchemy import select

    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            rows = await session.scalars(select(Notice))
            return {row.kind: (row.state, row.parts_sent) for row in rows}
    finally:
        await engine.dispose()


async def _any_pending(database_url: str) -> bool:
    states = await _notice_states(database_url)
    return any(state is NoticeState.PENDING for state, _ in states.values())


async def test_killed_after_the_commit_and_before_the_send_the_merchant_is_told_once(
    emulator: TelegramEmulator, start_bot_process
) -> None:
    start_bot = start_bot_process  # a process: this test kills it
    t = TEXTS["ru"]
    bot = await start_bot(env=ENV)
    chat = MerchantChat(emulator, merchant("ru"))
    await chat.say("/start")
    await walk_to_description(chat, t)
    review = await describe(chat, t["description"])

    # The registration is committed; the message with the number is on its way when the
    # process dies (Telegram never answers it).
    emulator.hold("sendMessage", _text_has(t["registered"]))
    await chat.press_for_new(review, t["send"], until=containing(t["accepted"]))
    await emulator.wait_until(lambda: emulator.held_calls, timeout=20)
    await bot.stop(kill=True)
    emulator.release_holds()
    database = bot.env["DATABASE_URL"]
    assert (await _notice_states(database))["registered"] == (NoticeState.PENDING, 0)

    restarted = await start_bot(env=ENV)
    await chat.emu.wait_for_message(chat.user, containing(t["registered"]), timeout=20)
    engine = create_engine(database)
    try:
        sessionmaker = create_sessionmaker(engine)
        async with sessionmaker() as session:
            from sqlalchemy import select

            [ticket] = await session.scalars(select(Ticket))
            assert ticket.status is TicketStatus.REGISTERED and ticket.queue_ticket_id
            number = ticket.queue_ticket_id

        # A specialist answers; the reply's event is applied and committed, and the process
        # dies while its message is in flight.
        emulator.hold("sendMessage", _text_has("💬"))
        console = BuiltinConsole(BuiltinQueue(sessionmaker), "ivan")
        await console.reply(number, "Исправили, проверьте.")
        await emulator.wait_until(lambda: len(emulator.held_calls) == 2, timeout=20)
        await restarted.stop(kill=True)
        emulator.release_holds()
        await start_bot(env=ENV)
        await chat.emu.wait_for_message(chat.user, containing("Исправили, проверьте."), timeout=20)
    finally:
        await engine.dispose()

    said = [m.content for m in emulator.bot_messages(chat.user)]
    assert sum(t["accepted"] in text for text in said) == 1
    assert sum(t["registered"] in text for text in said) == 1
    assert sum("Исправили, проверьте." in text for text in said) == 1
    # The message arrived; the worker records it as sent right after.
    async with asyncio.timeout(10):
        while await _any_pending(database):  # noqa: ASYNC110 (a database condition)
            await asyncio.sleep(0.05)
    states = await _notice_states(database)
    assert {kind: state for kind, (state, _) in states.items()} == {
        "accepted": NoticeState.SENT,
        "registered": NoticeState.SENT,
        "reply": NoticeState.SENT,
    }
