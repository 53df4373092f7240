"""The session keeps the parsed response models alive (bot/telegram_session.py)."""

from __future__ import annotations

import gc
import json
import weakref

from aiogram import Bot
from aiogram.methods import Response, SendMessage
from aiogram.types import Message

from bot.telegram_session import PinnedResponsesSession

ANSWER = json.dumps(
    {
        "ok": True,
        "result": {"message_id": 1, "date": 0, "chat": {"id": 1, "type": "private"}, "text": "hi"},
    }
)


def test_a_parsed_response_model_outlives_a_garbage_collection() -> None:
    session = PinnedResponsesSession()
    bot = Bot("42:unit-test-token", session=session)
    answer = session.check_response(bot, SendMessage(chat_id=1, text="hi"), 200, ANSWER)
    assert isinstance(answer.result, Message)
    del answer  # an answer keeps its model alive; the bot keeps none

    model = weakref.ref(Response[Message])
    gc.collect()
    # aiogram's plain session lets pydantic drop it here, and builds it again (~4 ms) next time.
    assert model() is not None
