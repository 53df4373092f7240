"""A merchant walking the /new wizard in Telegram (the Bot API emulator), in both languages:
the words the bot shows, and the steps a person takes. Shared by the e2e tests."""

from __future__ import annotations

import re

from services.db.engine import create_engine, create_sessionmaker
from services.queue.base import QueueTicket
from services.queue.builtin import BuiltinQueue
from tests.e2e.driver import MerchantChat, containing
from tests.e2e.telegram_emulator import ChatMessage, SimUser

TEXTS = {
    "ru": {
        "greeting": "Здравствуйте, Анна!",
        "technical": "Технический вопрос",
        "system_error": "Ошибка в работе платформы",
        "subject_prompt": "Напишите <b>тему</b>",
        "description_prompt": "Опишите проблему",
        "review": "Проверьте обращение",
        "files_prompt": "<b>Файлы</b>",
        "skip": "Пропустить »",
        "done": "✅ Готово",
        "send": "✅ Отправить",
        "accepted": "Обращение принято",
        "registered": "зарегистрировано в официальной тикетной системе под номером",
        "first_reaction": "⏱ Первая реакция: завтра до {time} (по московскому времени).",
        "subject": "Ошибка 500 при оформлении заказа",
        "description": "Шаги: добавить товар в корзину, нажать «Оформить». Видна ошибка 500.",
    },
    "en": {
        "greeting": "Hello, Анна!",
        "technical": "Technical question",
        "system_error": "Platform error",
        "subject_prompt": "Write the <b>subject</b>",
        "description_prompt": "Describe the problem",
        "review": "Please check your request",
        "files_prompt": "<b>Files</b>",
        "skip": "Skip »",
        "done": "✅ Done",
        "send": "✅ Send",
        "accepted": "Your request is accepted",
        "registered": "is registered in the official support queue under number",
        "first_reaction": "⏱ First reaction: tomorrow by {time} (Moscow time).",
        "subject": "Checkout fails with error 500",
        "description": "Steps: add a product to the cart, press Checkout. Error 500 appears.",
    },
}


def merchant(language: str, user_id: int = 5_000_001) -> SimUser:
    return SimUser(id=user_id, first_name="Анна", username="anna_shop", language_code=language)


async def read_back(database_url: str, number: str) -> QueueTicket:
    engine = create_engine(database_url)
    try:
        return await BuiltinQueue(create_sessionmaker(engine)).get_ticket(number)
    finally:
        await engine.dispose()


async def walk_to_description(chat: MerchantChat, t: dict[str, str]) -> ChatMessage:
    types = await chat.say("/new", until=lambda m: bool(m.buttons))
    categories = await chat.press(types, t["technical"])
    subject_prompt = await chat.press(categories, t["system_error"])
    assert t["subject_prompt"] in subject_prompt.raw_text
    description_prompt = await chat.say(t["subject"])
    assert t["description_prompt"] in description_prompt.content
    return description_prompt


async def describe(chat: MerchantChat, t: dict[str, str], text: str | None = None) -> ChatMessage:
    """Writes the description and passes the files step with none: gives the review (the files
    prompt, edited)."""
    files_prompt = await chat.say(
        text or t["description"], until=lambda m: t["files_prompt"] in (m.raw_text or "")
    )
    review = await chat.press(files_prompt, t["skip"])
    assert t["review"] in review.content, review.content
    return review


async def send_and_get_number(chat: MerchantChat, review: ChatMessage, t: dict[str, str]) -> str:
    registered = chat.emu.wait_for_message(
        chat.user, containing(t["registered"]), since=chat.emu.mark(), timeout=20
    )
    accepted = await chat.press_for_new(review, t["send"], until=containing(t["accepted"]))
    assert accepted.content
    message = await registered
    number = re.search(r"#(\d+)", message.content)
    assert number, message.content
    return number.group(1)
