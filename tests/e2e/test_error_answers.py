"""A button press is answered once (handlers/callback_answers.py): a press whose handler fails
gets the apology as an alert if the handler had not answered the press, else in the chat
(Telegram refuses a second answer); in webhook mode the answer rides on the webhook's response,
and a press that fails there gets the alert."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
from aiogram import Dispatcher, F, Router
from aiogram.methods import AnswerCallbackQuery
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup
from aiogram.utils.i18n import I18n

from bot.config import locales_dir
from bot.sandbox.runner import release_routers
from bot.sandbox.telegram_emulator import SimUser, TelegramEmulator
from handlers.callback_answers import AnswerInResponse, CallbackAnswers, answers_in_response
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

    @router.callback_query(F.data == "answers")
    async def answers(query: CallbackQuery) -> None:
        await query.answer("Done")

    @router.callback_query(F.data == "fails")
    async def fails(query: CallbackQuery) -> None:
        raise RuntimeError("the database went away")

    release_routers()  # the errors router is the module's own, perhaps held by another test
    dispatcher = Dispatcher()
    dispatcher.update.outer_middleware(AnswerInResponse())
    dispatcher.include_routers(router, errors_router)
    yield dispatcher
    release_routers()


@pytest.mark.parametrize(
    ("data", "webhook", "alert", "in_chat"),
    [
        ("answers-then-fails", False, None, True),
        ("fails", False, APOLOGY, False),
        # The held answer goes with the failure: the error handler's alert is the only one.
        ("answers-then-fails", True, APOLOGY, False),
        ("fails", True, APOLOGY, False),
    ],
)
async def test_a_failed_press_is_apologised_for_once(
    emulator: TelegramEmulator,
    dispatcher: Dispatcher,
    data: str,
    webhook: bool,
    alert: str | None,
    in_chat: bool,
) -> None:
    emulator.add_user(ANNA)
    bot = emulator.create_bot()
    bot.session.middleware(CallbackAnswers())
    i18n = I18n(path=locales_dir(), default_locale="en", domain="messages")
    try:
        keyboard = InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="Go", callback_data=data)]]
        )
        sent = await bot.send_message(ANNA.id, "Press", reply_markup=keyboard)
        since = emulator.mark()
        emulator.press_button(ANNA, sent, data)
        [update] = [u for u in emulator.updates if u.callback_query is not None]
        token = answers_in_response.set(webhook)
        try:
            with i18n.context(), i18n.use_locale("en"):
                assert await dispatcher.feed_update(bot, update) is None
        finally:
            answers_in_response.reset(token)

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


async def test_in_webhook_mode_a_press_is_answered_in_the_response(
    emulator: TelegramEmulator, dispatcher: Dispatcher
) -> None:
    emulator.add_user(ANNA)
    bot = emulator.create_bot()
    bot.session.middleware(CallbackAnswers())
    try:
        keyboard = InlineKeyboardMarkup(
            inline_keyboard=[[InlineKeyboardButton(text="Go", callback_data="answers")]]
        )
        sent = await bot.send_message(ANNA.id, "Press", reply_markup=keyboard)
        since = emulator.mark()
        emulator.press_button(ANNA, sent, "answers")
        [update] = [u for u in emulator.updates if u.callback_query is not None]
        token = answers_in_response.set(True)
        try:
            result = await dispatcher.feed_update(bot, update)
        finally:
            answers_in_response.reset(token)
        # No call to Telegram: the answer is the update's result, for the webhook's response.
        assert isinstance(result, AnswerCallbackQuery) and result.text == "Done"
        assert [c for c in emulator.calls if c.seq > since] == []
    finally:
        await bot.session.close()
