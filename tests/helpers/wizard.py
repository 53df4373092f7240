"""A merchant walking the /new wizard in Telegram (the Bot API emulator), in both languages:
the words the bot shows, and the steps a person takes. Shared by the e2e tests."""

from __future__ import annotations

import re

from bot.sandbox.telegram_emulator import ChatMessage, SimUser
from services.db.engine import create_engine, create_sessionmaker
from services.queue.base import QueueTicket
from services.queue.builtin import BuiltinQueue
from tests.e2e.driver import MerchantChat, containing

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
        "first_reaction": "⏱ Первая реакция: завтра, {day}, до {time} по московскому времени.",
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
        "first_reaction": "⏱ First reaction: tomorrow, {day}, by {time} Moscow time.",
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


DONE = frozenset({"✅ Done", "✅ Готово"})
_RECEIVED = re.compile(r"(?:Received|Получено): (\d+) ")


def received(message: ChatMessage) -> int:
    """How many parts of the description the prompt says it has received."""
    found = _RECEIVED.search(message.content)
    return int(found.group(1)) if found else 0


def done_button(message: ChatMessage) -> str | None:
    return next((b.text for b in message.buttons if b.text in DONE), None)


async def send_description(chat: MerchantChat, *parts: str) -> ChatMessage:
    """Sends the description as these messages, one right after the other (as a client sends a
    split paste); returns the prompt once it counts them all, with its "Done" button."""
    since = chat.emu.mark()
    for part in parts:
        chat.emu.send_text(chat.user, part)
    status = await chat.emu.wait_for_message(
        chat.user, lambda m: done_button(m) is not None, since=since, timeout=chat.timeout
    )
    await chat.emu.wait_until(lambda: received(status) == len(parts), timeout=chat.timeout)
    return status


SKIP = frozenset({"Skip »", "Пропустить »"})


async def describe(chat: MerchantChat, *parts: str) -> ChatMessage:
    """The description step, start to end: the messages, then "Done", then the files step
    passed with none; returns the review."""
    files_prompt = await describe_to_files(chat, *parts)
    skip = next((b.text for b in files_prompt.buttons if b.text in SKIP), None)
    assert skip is not None, files_prompt.content
    return await chat.press(files_prompt, skip)


async def describe_to_files(chat: MerchantChat, *parts: str) -> ChatMessage:
    """The description as these messages, then "Done": returns the files step."""
    status = await send_description(chat, *parts)
    button = done_button(status)
    assert button is not None
    return await chat.press(status, button)


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
