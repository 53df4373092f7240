"""The emulator's observers (what the sandbox's event stream is made of): every message a user
or the bot adds to a private chat, every edit and deletion, as it stands then."""

from __future__ import annotations

import pytest
from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup

from bot.sandbox.telegram_emulator import ChatMessage, SimUser, TelegramEmulator

pytestmark = pytest.mark.e2e

ANNA = SimUser(id=42, first_name="Анна", language_code="ru")


async def test_observers_see_messages_edits_and_deletions_of_both_sides() -> None:
    seen: list[tuple[int, str, bool, bool, bool]] = []

    def observe(record: ChatMessage, changed: bool) -> None:
        seen.append((record.message_id, record.content, record.from_bot, changed, record.deleted))

    async with TelegramEmulator() as emu:
        emu.observers.append(observe)
        bot = emu.create_bot()
        try:
            emu.send_text(ANNA, "/start")
            keyboard = InlineKeyboardMarkup(
                inline_keyboard=[[InlineKeyboardButton(text="A", callback_data="a")]]
            )
            sent = await bot.send_message(ANNA.id, "<b>Hi</b> 🌷", reply_markup=keyboard)
            await bot.edit_message_text("Bye", chat_id=ANNA.id, message_id=sent.message_id)
            await bot.delete_message(ANNA.id, sent.message_id)
            emu.send_document(ANNA, "a.txt", b"x", "file")
            emu.observers.remove(observe)
            emu.send_text(ANNA, "unseen")
        finally:
            await bot.session.close()
    assert seen == [
        (1, "/start", False, False, False),
        (2, "Hi 🌷", True, False, False),
        (2, "Bye", True, True, False),
        (2, "Bye", True, True, True),
        (3, "file", False, False, False),
    ]
    record = emu.message(ANNA, 2)
    assert record.versions == ["Hi 🌷"]


async def test_a_failing_observer_never_fails_the_bots_call() -> None:
    def broken(record: ChatMessage, changed: bool) -> None:
        raise RuntimeError("observer bug")

    async with TelegramEmulator() as emu:
        emu.add_user(ANNA)
        emu.observers.append(broken)
        bot = emu.create_bot()
        try:
            sent = await bot.send_message(ANNA.id, "still delivered")
        finally:
            await bot.session.close()
        assert sent.text == "still delivered"
        assert emu.last_message(ANNA) is not None
