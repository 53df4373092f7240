"""A button press whose handler fails gets the apology once: as an alert if the handler had not
answered the press, else in the chat (Telegram refuses a second answer to a query)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Dispatcher, F, Router
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import I18n

from bot.config import locales_dir
from bot.sandbox.runner import release_routers
from bot.sandbox.telegram_emulator import SimUser, TelegramEmulator
from handlers.callback_answers import RememberCallbackAnswers
from handlers.errors import router as errors_router

pytestmark = pytest.mark.e2e

ANNA = SimUser(id=5_900_001, first_name="Anna", language_code="en")
APOLOGY = "Sorry, something went wrong on our side."


@pytest.fixture
async def dispatcher() -> AsyncIterator[Dispatcher]:
    router = Router()

    @router.callback_query(F.data == "answers-then-fails")
    async def answers_then_fails(query: CallbackQuery) -> None:
        await query.answer()
        raise RuntimeError("the database went away after the press was answered")

    @router.callback_query(F.data == "fails")
    async def fails(query: CallbackQuery) -> None:
        raise RuntimeError("the database went away")

    release_routers()  # the errors router is the module's own, perhaps held by another test
    dispatcher = Dispatcher()
    dispatcher.include_routers(router, errors_router)
    yield dispatcher
    release_routers()


@pytest.mark.parametrize(
    ("data", "alert", "in_chat"), [("answers-then-fails", None, True), ("fails", APOLOGY, False)]
)
async def test_a_failed_press_is_apologised_for_once(
    emulator: TelegramEmulator, dispatcher: Dispatcher, data: str, alert: str | None, in_chat: bool
) -> None:
    emulator.add_user(ANNA)
    bot = emulator.create_bot()
    bot.session.middleware(RememberCallbackAnswers())
    i18n = I18n(path=locales_dir(), default_locale="en", domain="messages")
    try:
        keyboard = InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="Go", callback_data=data)]]
        )
        sent = await bot.send_message(ANNA.id, "Press", reply_markup=keyboard)
        since = emulator.mark()
        emulator.press_button(ANNA, sent, data)
        [update] = [u for u in emulator.updates if u.callback_query is not None]
        with i18n.context(), i18n.use_locale("en"):
            await dispatcher.feed_update(bot, update)

        assert update.callback_query is not None
        [answer] = [
            a
            for a in emulator.answered_callbacks
            if a.callback_query_id == update.callback_query.id
        ]
        if alert:
            assert answer.text is not None and alert in answer.text and answer.show_alert
        else:
            assert answer.text is None  # the handler's own answer, before it failed
        apologies = [m for m in emulator.bot_messages(ANNA) if APOLOGY in m.content]
        assert len(apologies) == (1 if in_chat else 0)
        assert [c for c in emulator.calls if c.seq > since and not c.ok] == []
    finally:
        await bot.session.close()
