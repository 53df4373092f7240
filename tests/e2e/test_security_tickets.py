"""Ticket ids are untrusted input: another merchant's ticket id in a button's callback data or in
a replied-to message, a page or a store the list does not have. Each is refused politely, nothing
about the other ticket is revealed, and a warning is logged."""

from __future__ import annotations

import asyncio

import pytest
from aiogram.types import Message, Update

from bot.sandbox.telegram_emulator import TelegramEmulator
from handlers.my_tickets.keyboards import Act, HeldAction, HeldCallback, TicketsCallback
from services.db.engine import create_engine, create_sessionmaker
from services.queue.builtin import BuiltinQueue
from tests.e2e.driver import MerchantChat, containing
from tests.helpers.wizard import (
    TEXTS,
    describe,
    merchant,
    send_and_get_number,
    walk_to_description,
)

pytestmark = pytest.mark.e2e

NOT_YOURS = {
    "ru": "Это обращение недоступно.",
    "en": "This request is not available.",
}
STALE = {"ru": "Этот список устарел.", "en": "This list is out of date."}


async def _comments(database_url: str, number: str) -> int:
    engine = create_engine(database_url)
    try:
        return len(await BuiltinQueue(create_sessionmaker(engine)).conversation(number))
    finally:
        await engine.dispose()


async def _victim(emulator: TelegramEmulator) -> tuple[MerchantChat, str]:
    t = TEXTS["ru"]
    chat = MerchantChat(emulator, merchant("ru", 5_400_001), timeout=20)
    await chat.say("/start")
    await walk_to_description(chat, t)
    review = await describe(chat, t["description"])
    return chat, await send_and_get_number(chat, review, t)


def _revealed(emulator: TelegramEmulator, user_id: int) -> list[str]:
    secret = TEXTS["ru"]["subject"]
    return [m.content for m in emulator.history(user_id) if secret in m.content]


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_another_merchants_ticket_id_in_callback_data_is_refused_and_logged(
    emulator: TelegramEmulator, start_bot, sqlite_url: str, language: str
) -> None:
    bot = await start_bot()
    _, number = await _victim(emulator)
    before = await _comments(sqlite_url, number)
    intruder = MerchantChat(emulator, merchant(language, 5_400_002), timeout=20)
    listing = await intruder.say("/tickets")
    # The victim's ticket is frontdesk's ticket 1; every action on it, forged.
    forged = [
        TicketsCallback(action=Act.CARD, ticket=1).pack(),
        TicketsCallback(action=Act.REPLY, ticket=1).pack(),
        TicketsCallback(action=Act.CLOSE, ticket=1).pack(),
        HeldCallback(action=HeldAction.ADD, held="deadbeef", ticket=1).pack(),
    ]
    for data in forged:
        alert = await intruder.press_stale(listing, data)
        assert alert is not None and alert.startswith(NOT_YOURS[language]), (data, alert)
    await asyncio.sleep(0.5)
    assert _revealed(emulator, intruder.user.id) == []
    assert await _comments(sqlite_url, number) == before
    warnings = [
        line for line in bot.log().splitlines() if "WARNING" in line and "not theirs" in line
    ]
    assert len(warnings) == len(forged), bot.log()
    assert emulator.failed_calls == []


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_a_stale_or_forged_page_or_store_is_refused_and_logged(
    emulator: TelegramEmulator, start_bot, language: str
) -> None:
    bot = await start_bot()
    await _victim(emulator)
    intruder = MerchantChat(emulator, merchant(language, 5_400_012), timeout=20)
    listing = await intruder.say("/tickets")
    for data in (
        TicketsCallback(action=Act.PAGE, page=7).pack(),
        # The victim's tickets have no store here; a store id the intruder has nothing in.
        TicketsCallback(action=Act.PAGE, store=-1).pack(),
        TicketsCallback(action=Act.PAGE, store=42).pack(),
    ):
        alert = await intruder.press_stale(listing, data)
        assert alert is not None and alert.startswith(STALE[language]), (data, alert)
    assert _revealed(emulator, intruder.user.id) == []
    assert bot.log().count("WARNING handlers.my_tickets") == 3, bot.log()


async def test_a_reply_to_a_message_of_another_chat_goes_to_no_ticket(
    emulator: TelegramEmulator, start_bot, sqlite_url: str
) -> None:
    bot = await start_bot()
    victim, number = await _victim(emulator)
    registered = emulator.last_message(victim.user)
    assert registered is not None and f"#{number}" in registered.content
    before = await _comments(sqlite_url, number)
    intruder = MerchantChat(emulator, merchant("en", 5_400_022), timeout=20)
    await intruder.say("/start")

    # A client cannot reply to another chat's message; a forged update can claim it.
    since = emulator.mark()
    own = emulator.send_text(intruder.user, "please add this to that ticket")
    forged = own.model_copy(
        update={
            "message_id": own.message_id + 1,
            "reply_to_message": registered.to_message(with_reply=False),
        }
    )
    emulator.inject_update(Update(update_id=emulator.new_update_id(), message=forged))
    # And a reply to the intruder's own message that has the same id as the victim's notice.
    if registered.message_id < own.message_id:
        emulator.send_text(intruder.user, "and this", reply_to=registered.message_id)
    offers = [
        await emulator.wait_for_message(
            intruder.user, containing("not a registered request"), since=since
        )
    ]
    await asyncio.sleep(1.0)
    offers = [
        m for m in emulator.bot_messages(intruder.user) if "not a registered request" in m.content
    ]
    assert offers
    # Offered nothing of the victim's: only a new request.
    for offer in offers:
        assert all(not b.text.startswith("➕") for b in offer.buttons), offer.button_rows
    assert _revealed(emulator, intruder.user.id) == []
    assert await _comments(sqlite_url, number) == before
    assert "a reply to a message of chat" in bot.log()
    assert isinstance(forged, Message)
