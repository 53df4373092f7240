"""A merchant out of reach, end to end (builtin queue): the merchant files a request, then blocks
the bot; a specialist replies. Telegram refuses (the my_chat_member kick, then the reply's notice
with 403), and the ticket in the queue gets exactly one internal note saying so — not the
merchant's correspondence."""

from __future__ import annotations

import asyncio
import time
from typing import cast

import pytest

from bot.sandbox.telegram_emulator import TelegramEmulator
from services.db.engine import create_engine, create_sessionmaker
from services.queue.builtin import BuiltinQueue
from services.queue.console import BuiltinConsole
from tests.e2e.bot_in_process import InProcessBot
from tests.e2e.driver import MerchantChat
from tests.helpers.staff_notes import builtin_notes
from tests.helpers.wizard import (
    TEXTS,
    describe,
    merchant,
    send_and_get_number,
    walk_to_description,
)

pytestmark = pytest.mark.e2e


async def test_a_merchant_who_blocked_the_bot_gets_one_internal_note_in_the_queue(
    emulator: TelegramEmulator, start_bot
) -> None:
    t = TEXTS["ru"]
    bot = cast(InProcessBot, await start_bot(env={"SYNC_INTERVAL_SECONDS": "0.5"}))
    chat = MerchantChat(emulator, merchant("ru"))
    await chat.say("/start")
    await walk_to_description(chat, t)
    review = await describe(chat, t["description"])
    number = await send_and_get_number(chat, review, t)

    emulator.block_bot(chat.user)
    engine = create_engine(bot.env["DATABASE_URL"])
    try:
        sessionmaker = create_sessionmaker(engine)
        console = BuiltinConsole(BuiltinQueue(sessionmaker), "specialist")
        await console.reply(number, "Проверили корзину, ответьте, пожалуйста")
        deadline = time.monotonic() + 20
        while not await builtin_notes(sessionmaker, number):
            assert time.monotonic() < deadline, "no internal note in the queue"
            await asyncio.sleep(0.2)
        await asyncio.sleep(2)  # the refused reply's notice comes too: still one note
        [(author, body)] = await builtin_notes(sessionmaker, number)
        assert author == "frontdesk" and "недоступен в Telegram" in body
        messages = await console.list_messages(number)
        assert all("недоступен" not in m.body for m in messages)
    finally:
        await engine.dispose()
