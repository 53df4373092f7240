"""Assignment notices through the real bot and the Bot API emulator, on the builtin queue: the
leads hear of a new ticket; when the queue assigns it to a linked specialist, that specialist (and
nobody else) gets the ticket's card in Telegram, once."""

from __future__ import annotations

import asyncio

import pytest

from bot.sandbox.telegram_emulator import TelegramEmulator
from services.db.engine import create_engine, create_sessionmaker
from services.db.models import StaffRole
from services.queue.builtin import BuiltinQueue
from services.queue.console import BuiltinConsole
from tests.e2e.driver import MerchantChat, containing
from tests.e2e.test_staff_e2e import staff_link
from tests.helpers.wizard import (
    TEXTS,
    describe,
    merchant,
    send_and_get_number,
    walk_to_description,
)

pytestmark = pytest.mark.e2e

ENV = {"SYNC_INTERVAL_SECONDS": "1"}


async def test_new_ticket_reaches_the_lead_and_its_assignment_the_specialist_once(
    emulator: TelegramEmulator, start_bot, sqlite_url: str
) -> None:
    await start_bot(env=ENV)
    lead = MerchantChat(emulator, merchant("ru", 5_700_001))
    specialist = MerchantChat(emulator, merchant("ru", 5_700_002))
    for chat, user, role in (
        (lead, "petrova", StaffRole.LEAD),
        (specialist, "ivanov", StaffRole.SPECIALIST),
    ):
        await chat.say(f"/start {await staff_link(sqlite_url, user, role)}")

    t = TEXTS["ru"]
    shopper = MerchantChat(emulator, merchant("ru", 5_700_003))
    await shopper.say("/start")
    await walk_to_description(shopper, t)
    review = await describe(shopper, t["description"])
    number = await send_and_get_number(shopper, review, t)

    new = await emulator.wait_for_message(
        lead.user, containing(f"🆕 Новая заявка #{number},"), timeout=20
    )
    assert t["subject"] in new.content

    since = emulator.mark()
    engine = create_engine(sqlite_url)
    try:
        console = BuiltinConsole(BuiltinQueue(create_sessionmaker(engine)), "petrova")
        await console.set_owner(number, "ivanov")
    finally:
        await engine.dispose()
    card = await emulator.wait_for_message(
        specialist.user,
        containing(f"📌 Вам назначена заявка #{number}:"),
        since=since,
        timeout=20,
    )
    assert "⏱ Первая реакция:" in card.content and "осталось" in card.content
    assert t["subject"] in card.content

    await asyncio.sleep(2.5)  # two more sync rounds: nothing is told twice
    assigned = [m for m in emulator.bot_messages(specialist.user.id) if "📌" in m.content]
    assert len(assigned) == 1
    assert not [m for m in emulator.bot_messages(shopper.user.id) if "📌" in m.content]
    assert not [m for m in emulator.bot_messages(lead.user.id) if "📌" in m.content]
    assert emulator.failed_calls == []
