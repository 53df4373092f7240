"""The wizard as people use it (issue 8, points 6, 8, 11 and 12): a long description pasted and
split by Telegram, several messages, edits at a step, commands mid-wizard, double taps, /cancel
after a description, a group chat; and every message the bot sends fits Telegram."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import select

from bot.sandbox.telegram_emulator import ChatMessage, SimUser, TelegramEmulator, utf16_len
from services.db.engine import create_engine, create_sessionmaker
from services.db.models import BuiltinQueueTicket, Role
from services.queue.console import RtConsole
from services.queue.rt import RequestTrackerQueue
from tests.e2e.driver import MerchantChat, containing
from tests.e2e.test_rules_e2e import seed
from tests.helpers.wizard import (
    TEXTS,
    describe,
    done_button,
    merchant,
    received,
    send_and_get_number,
    send_description,
    walk_to_description,
)
from tests.integration.rt_fixture import RtServer, rt_server

__all__ = ["rt_server"]  # the session fixture, imported to be found here

pytestmark = pytest.mark.e2e

LIMIT = 4096  # Telegram's limit of a message, UTF-16 code units

STEP = {
    "ru": "Шаг {i}: открыть карточку товара, нажать «Купить», увидеть ошибку 500 на оплате. ",
    "en": "Step {i}: open the product card, press Buy, see error 500 at the payment page. ",
}
WORDS = {
    "ru": {
        "length": "10\xa0000 символов",
        "beginning": "это начало; описание будет отправлено целиком",
        "subject_changed": "Тема изменена",
        "description_changed": "Описание обновлено",
        "cancel_question": "Удалить обращение",
        "yes_drop": "Да, удалить",
        "no_continue": "Нет, продолжить",
        "cancelled": "Обращение отменено",
        "no_store": "пока не привязан ни один магазин",
        "unknown": "Команды /frobnicate нет",
        "waiting": "Обращение ждёт вас",
        "finished": ("уже завершены", "уже отправлено", "отменено"),
        "group_note": "Я работаю только в личном чате",
        "open_private": "Открыть личный чат",
        "subject_too_long": "Длина темы — 101 символ, а тикетная система хранит не больше 100",
        "no_tickets": "У вас пока нет обращений",
        "already_done": "Уже сделано.",
    },
    "en": {
        "length": "10,000 characters",
        "beginning": "the beginning; the whole description",
        "subject_changed": "Subject changed",
        "description_changed": "The description is updated",
        "cancel_question": "Drop the request",
        "yes_drop": "Yes, drop it",
        "no_continue": "No, continue",
        "cancelled": "The request is cancelled",
        "no_store": "No store is linked",
        "unknown": "I do not know the command /frobnicate",
        "waiting": "Your request is waiting",
        "finished": ("already finished", "already sent", "cancelled"),
        "group_note": "I work in a private chat only",
        "open_private": "Open the private chat",
        "subject_too_long": "The subject is 101 characters long; the support queue keeps up to 100",
        "no_tickets": "You have no requests yet",
        "already_done": "Already done.",
    },
}


def long_paste(language: str, length: int = 10_000) -> str:
    """A text of `length` characters whose cuts at 4,096 fall inside words."""
    base = "".join(STEP[language].format(i=i) for i in range(1, 200))
    for shift in range(100):
        text = ("Ш" * shift + base)[: length - 1] + "."
        cuts = range(LIMIT, length, LIMIT)
        if all(text[cut - 1].isalnum() and text[cut].isalnum() for cut in cuts):
            return text
    raise AssertionError("no shift puts the cuts inside words")


def split_like_telegram(text: str) -> list[str]:
    """A client that cuts at the limit itself (Telegram for Android): 4,096 characters a
    message, in the middle of a word if that is where the limit falls."""
    return [text[start : start + LIMIT] for start in range(0, len(text), LIMIT)]


def assert_every_message_fits(emulator: TelegramEmulator) -> None:
    """Everything the bot sent or edited fits Telegram's 4,096, counted on the HTML as sent
    (escaping included), and no call was refused for its length."""
    for call in emulator.calls:
        if call.method in ("sendMessage", "editMessageText"):
            text = str(call.params.get("text") or "")
            assert utf16_len(text) <= LIMIT, (call.method, utf16_len(text))
            assert "too long" not in (call.description or ""), call.description
    assert emulator.internal_errors == []


async def queue_body(database_url: str, number: str) -> tuple[str, str]:
    """The builtin queue's ticket as filed: (subject, body)."""
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            row = (
                await session.execute(
                    select(BuiltinQueueTicket.subject, BuiltinQueueTicket.body).where(
                        BuiltinQueueTicket.id == int(number)
                    )
                )
            ).one()
            return row.subject, row.body
    finally:
        await engine.dispose()


def bot_messages_since(emulator: TelegramEmulator, user: SimUser, since: int) -> list[ChatMessage]:
    return [m for m in emulator.bot_messages(user) if m.seq > since]


# --- Point 6: descriptions as people write them ----------------------------------------------


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_10000_character_paste_split_in_three_is_filed_whole(
    emulator: TelegramEmulator, start_bot, language: str
) -> None:
    t, w = TEXTS[language], WORDS[language]
    bot = await start_bot()
    chat = MerchantChat(emulator, merchant(language))
    await walk_to_description(chat, t)

    paste = long_paste(language)
    parts = split_like_telegram(paste)
    assert [len(part) for part in parts] == [4096, 4096, 1808]
    since = emulator.mark()
    status = await send_description(chat, *parts)
    # One message follows the paste, edited as parts arrive: not one answer per part.
    assert bot_messages_since(emulator, chat.user, since) == [status]
    assert w["length"] in status.content

    files_prompt = await chat.press(status, t["done"])
    assert t["files_prompt"] in (files_prompt.raw_text or "")
    review = await chat.press(files_prompt, t["skip"])
    assert t["review"] in review.content
    assert w["length"] in review.content and w["beginning"] in review.content
    assert utf16_len(review.raw_text or "") <= LIMIT

    number = await send_and_get_number(chat, review, t)
    subject, body = await queue_body(bot.env["DATABASE_URL"], number)
    assert subject == t["subject"]
    assert body == paste  # whole, in order, the words cut by the client put back together
    assert_every_message_fits(emulator)


@pytest.mark.parametrize("language", ["ru", "en"])
@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_description_in_four_messages_is_joined_in_order(
    emulator: TelegramEmulator, start_bot, language: str, mode: str
) -> None:
    """Sent at once, the parts are handled concurrently (polling hands them over in one batch,
    the webhook gets them as parallel requests): none is lost, the order is the chat's."""
    t = TEXTS[language]
    bot = await start_bot(webhook=mode == "webhook")
    chat = MerchantChat(emulator, merchant(language))
    await walk_to_description(chat, t)

    parts = ["Здравствуйте!", "У нас не работает оплата.", "Ошибка 500 с утра.", "Спасибо."]
    review = await describe(chat, *parts)  # sent at once, as fast as a person cannot
    assert all(part in review.content for part in parts)
    number = await send_and_get_number(chat, review, t)
    _, body = await queue_body(bot.env["DATABASE_URL"], number)
    assert body == "\n".join(parts)


async def test_a_split_paste_is_answered_within_one_message_a_second(
    emulator: TelegramEmulator, start_bot
) -> None:
    """Telegram's limits as they are (one message a second into a chat, enforced): the paste
    gets one prompt, edited, and nothing is refused with 429."""
    t = TEXTS["ru"]
    emulator.enforce_limits()
    await start_bot(env={"TELEGRAM_CHAT_RATE": "1 per second"})
    chat = MerchantChat(emulator, merchant("ru"))
    await walk_to_description(chat, t)
    since = emulator.mark()
    status = await send_description(chat, *split_like_telegram(long_paste("ru")))
    assert bot_messages_since(emulator, chat.user, since) == [status]
    files_prompt = await chat.press(status, t["done"])
    review = await chat.press(files_prompt, t["skip"])
    assert t["review"] in review.content
    assert emulator.rate_limited == []
    assert_every_message_fits(emulator)


@pytest.mark.redis
async def test_parts_sent_at_once_are_all_kept_with_the_redis_storage(
    emulator: TelegramEmulator, start_bot, redis_env: dict[str, str]
) -> None:
    t = TEXTS["ru"]
    bot = await start_bot(env=redis_env)
    chat = MerchantChat(emulator, merchant("ru"))
    await walk_to_description(chat, t)
    parts = [f"Часть {i}." for i in range(1, 7)]
    review = await describe(chat, *parts)
    number = await send_and_get_number(chat, review, t)
    _, body = await queue_body(bot.env["DATABASE_URL"], number)
    assert body == "\n".join(parts)


async def test_every_message_fits_telegram_with_maximal_inputs(
    emulator: TelegramEmulator, start_bot, sqlite_url: str
) -> None:
    """Every step with the longest inputs: two stores of long domains, a paid modification (the
    review's longest form, with the quota and the price), the longest subject of characters
    HTML escaping makes five times longer, a description of 30,000 such characters, an edit at
    the review, /new and /cancel over the draft: all within 4,096, nothing refused."""
    user = SimUser(id=6_200_002, first_name="Олег" * 16, language_code="ru")
    domains = ["магазин-" + "о" * 50 + f"-{i}.example.com" for i in (1, 2)]
    await seed(sqlite_url, user, [(domain, "combo", Role.OWNER, 4) for domain in domains])
    await start_bot()
    chat = MerchantChat(emulator, user)

    stores = await chat.say("/new", until=lambda m: bool(m.buttons))
    types = await chat.press(stores, f"{domains[0]} ({domains[0]})")
    categories = await chat.press(types, "Доработка")
    await chat.press(categories, "Шаблон письма")
    await chat.say("&" * 100, until=containing("Опишите проблему"))
    description = "<b>&amp;</b>" * 2_500  # 30,000 characters, about 100,000 once escaped
    parts = split_like_telegram(description)
    review = await describe(chat, *parts)
    assert "30\xa0000 символов" in review.content
    assert "500\xa0₽" in review.content

    # An edit of a part at the review shows the review again.
    first = next(m for m in emulator.history(user) if not m.from_bot and m.content == parts[0])
    since = emulator.mark()
    emulator.edit_text(user, first, "<i>" * 1365)
    review = await emulator.wait_for_message(
        user, containing("Проверьте обращение"), since=since, timeout=15
    )
    # /new over the draft, then back to it; /cancel, then back to it.
    question = await chat.say("/new", until=containing("незавершённое обращение"))
    review = await chat.press(question, "Продолжить черновик")
    question = await chat.say("/cancel", until=containing("Удалить обращение"))
    review = await chat.press(question, "Нет, продолжить")
    assert "Проверьте обращение" in review.content
    registered = emulator.wait_for_message(
        user, containing("под номером"), since=emulator.mark(), timeout=20
    )
    await chat.press_for_new(review, "✅ Отправить, подтверждаю оплату 500\xa0₽")
    await registered
    assert_every_message_fits(emulator)


# --- Point 11: the subject fits the queue; edits at a step replace -------------------------


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_subject_is_limited_to_what_the_queue_keeps(
    emulator: TelegramEmulator, start_bot, language: str
) -> None:
    t, w = TEXTS[language], WORDS[language]
    bot = await start_bot()
    chat = MerchantChat(emulator, merchant(language))
    types = await chat.say("/new", until=lambda m: bool(m.buttons))
    categories = await chat.press(types, t["technical"])
    prompt = await chat.press(categories, t["system_error"])
    assert "100" in prompt.content

    refused = await chat.say("Ж" * 101)
    assert w["subject_too_long"] in refused.content
    subject = ("Неоплачиваемыйзаказ" * 6)[:100]  # 100 Cyrillic letters: RT's 200 bytes
    assert len(subject.encode()) == 200
    await chat.say(subject, until=containing(t["description_prompt"]))
    review = await describe(chat, t["description"])
    number = await send_and_get_number(chat, review, t)
    filed_subject, _ = await queue_body(bot.env["DATABASE_URL"], number)
    assert filed_subject == subject


async def test_request_tracker_keeps_the_longest_subject_and_the_whole_paste(
    emulator: TelegramEmulator, start_bot, rt_server: RtServer
) -> None:
    """Through the real RT: the Subject of the filed ticket is the merchant's subject of 100
    Cyrillic letters (RT keeps 200 bytes), the first message the whole 10,000 characters."""
    t = TEXTS["ru"]
    env = {"QUEUE": "rt", "RT_URL": rt_server.base_url, "RT_TOKEN": rt_server.token}
    await start_bot(env=env)
    chat = MerchantChat(emulator, merchant("ru", 5_000_077))
    types = await chat.say("/new", until=lambda m: bool(m.buttons))
    categories = await chat.press(types, t["technical"])
    await chat.press(categories, t["system_error"])
    subject = ("Неоплачиваемыйзаказ" * 6)[:100]
    await chat.say(subject, until=containing(t["description_prompt"]))
    paste = long_paste("ru")
    review = await describe(chat, *split_like_telegram(paste))
    number = await send_and_get_number(chat, review, t)

    queue = RequestTrackerQueue(rt_server.base_url, rt_server.queue, token=rt_server.token)
    console = RtConsole(
        rt_server.base_url,
        rt_server.queue,
        user=rt_server.admin_user,
        password=rt_server.admin_password,
    )
    try:
        assert (await queue.get_ticket(number)).subject == subject
        assert (await console.list_messages(number))[0].body.strip() == paste
    finally:
        await console.close()
        await queue.close()


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_edits_of_the_subject_and_the_description_replace_them(
    emulator: TelegramEmulator, start_bot, language: str
) -> None:
    t, w = TEXTS[language], WORDS[language]
    bot = await start_bot()
    chat = MerchantChat(emulator, merchant(language))
    await walk_to_description(chat, t)
    subject_message = next(
        m for m in emulator.history(chat.user) if not m.from_bot and m.content == t["subject"]
    )

    # At the description step the merchant corrects the subject.
    since = emulator.mark()
    emulator.edit_text(chat.user, subject_message, "Ошибка 502 при оплате")
    note = await emulator.wait_for_message(
        chat.user, containing(w["subject_changed"]), since=since, timeout=15
    )
    assert "Ошибка 502 при оплате" in note.content
    assert t["description_prompt"] in note.content  # the step is shown again

    # A part of the description is corrected before "Done".
    status = await send_description(chat, "Первая часть с опечаткой.", "Вторая часть.")
    typo = next(
        m
        for m in emulator.history(chat.user)
        if not m.from_bot and m.content == "Первая часть с опечаткой."
    )
    since = emulator.mark()
    emulator.edit_text(chat.user, typo, "Первая часть без опечатки.")
    await emulator.wait_for_message(
        chat.user, containing(w["description_changed"]), since=since, timeout=15
    )
    assert received(status) == 2 and done_button(status) is not None  # the same two parts
    files_prompt = await chat.press(status, t["done"])
    review = await chat.press(files_prompt, t["skip"])
    assert "Первая часть без опечатки." in review.content
    assert "Ошибка 502 при оплате" in review.content

    # And once more at the review: the review is shown again with the new text.
    since = emulator.mark()
    emulator.edit_text(chat.user, typo, "Первая часть, исправленная дважды.")
    review = await emulator.wait_for_message(
        chat.user, containing(t["review"], w["description_changed"]), since=since, timeout=15
    )
    assert "Первая часть, исправленная дважды." in review.content
    number = await send_and_get_number(chat, review, t)
    subject, body = await queue_body(bot.env["DATABASE_URL"], number)
    assert subject == "Ошибка 502 при оплате"
    assert body == "Первая часть, исправленная дважды.\nВторая часть."


# --- Point 12: commands, double taps, "not modified", /cancel -------------------------------


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_commands_mid_wizard_answer_and_the_step_waits(
    emulator: TelegramEmulator, start_bot, language: str
) -> None:
    t, w = TEXTS[language], WORDS[language]
    bot = await start_bot()
    chat = MerchantChat(emulator, merchant(language))
    # At a step of buttons: /tickets answers, and the step's buttons still work after.
    types = await chat.say("/new", until=lambda m: bool(m.buttons))
    shown = [(b.text, b.callback_data) for b in types.buttons]
    assert w["no_tickets"] in (await chat.say("/tickets")).content
    assert [
        (b.text, b.callback_data) for b in emulator.message(chat.user, types.message_id).buttons
    ] == shown
    categories = await chat.press(types, t["technical"])
    subject_prompt = await chat.press(categories, t["system_error"])

    # At a step of text: no command is taken for the subject, and the step waits.
    assert w["no_tickets"] in (await chat.say("/tickets")).content
    quota = await chat.say("/quota")
    assert w["no_store"] in quota.content
    unknown = await chat.say("/frobnicate")
    assert w["unknown"] in unknown.content and w["waiting"] in unknown.content
    helped = await chat.say("/help")
    assert "/new" in helped.content
    # The subject step still waits, its buttons in place.
    assert emulator.message(chat.user, subject_prompt.message_id).buttons
    await chat.say(t["subject"], until=containing(t["description_prompt"]))
    await chat.say("/quota", until=containing(w["no_store"]))
    await chat.say("/tickets", until=containing(w["no_tickets"]))
    review = await describe(chat, t["description"])
    number = await send_and_get_number(chat, review, t)
    subject, body = await queue_body(bot.env["DATABASE_URL"], number)
    assert (subject, body) == (t["subject"], t["description"])


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_an_older_steps_button_keeps_the_current_steps_buttons_and_says_nothing_finished(
    emulator: TelegramEmulator, start_bot, language: str
) -> None:
    t, w = TEXTS[language], WORDS[language]
    await start_bot()
    chat = MerchantChat(emulator, merchant(language, 5_000_012))
    types = await chat.say("/new", until=lambda m: bool(m.buttons))
    category_data = next(b.callback_data for b in types.buttons if b.text == t["technical"])
    categories = await chat.press(types, t["technical"])
    system_error = next(b.callback_data for b in categories.buttons if b.text == t["system_error"])
    await chat.press(categories, t["system_error"])
    description_prompt = await chat.say(t["subject"], until=containing(t["description_prompt"]))

    def buttons() -> list[tuple[str, str | None]]:
        message = emulator.message(chat.user, description_prompt.message_id)
        return [(b.text, b.callback_data) for b in message.buttons]

    current = buttons()
    assert current

    # The first prompt's buttons, pressed on a client that still shows them: the type and the
    # category of this live draft, steps it has left.
    for data in (category_data, system_error):
        assert data is not None
        answer = await chat.press_stale(types, data)
        assert answer == w["already_done"]
        assert not any(word in answer for word in w["finished"])
    assert buttons() == current
    # The draft goes on from the current step.
    review = await describe(chat, t["description"])
    assert t["subject"] in review.content and t["description"] in review.content


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_double_tap_keeps_the_buttons_and_says_nothing_about_finished(
    emulator: TelegramEmulator, start_bot, language: str
) -> None:
    t, w = TEXTS[language], WORDS[language]
    await start_bot()
    chat = MerchantChat(emulator, merchant(language))
    types = await chat.say("/new", until=lambda m: bool(m.buttons))
    since = emulator.mark()
    first = emulator.press_button(chat.user, types, text=t["technical"])
    second = emulator.press_button(chat.user, types, text=t["technical"])
    answers = [
        await emulator.wait_for_callback_answer(query, timeout=15) for query in (first, second)
    ]
    await emulator.wait_until(lambda: t["system_error"] in [b.text for b in types.buttons])
    await asyncio.sleep(0.3)  # nothing more happens to the message
    categories = emulator.message(chat.user, types.message_id)
    assert t["system_error"] in [b.text for b in categories.buttons]
    assert not any(answer.show_alert for answer in answers)
    for answer in answers:
        assert not any(word in (answer.text or "") for word in w["finished"])
    assert bot_messages_since(emulator, chat.user, since) == []
    await chat.press(categories, t["system_error"])  # the wizard goes on


async def test_second_refused_category_logs_no_error(
    emulator: TelegramEmulator, start_bot, sqlite_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    user = SimUser(id=6_200_001, first_name="Ирина", language_code="ru")
    await seed(sqlite_url, user, [("free.example.com", "free", Role.OWNER, 0)])
    await start_bot()
    chat = MerchantChat(emulator, user)
    types = await chat.say("/new", until=lambda m: bool(m.buttons))
    categories = await chat.press(types, "Технический вопрос")
    caplog.set_level(logging.INFO)
    refused = await chat.press(categories, "Оплата и доставка")
    assert "На тарифе «Бесплатный» поддержка платформы не принимает такие обращения" in (
        refused.content
    )
    query = emulator.press_button(user, refused, text="Оплата и доставка")
    answer = await emulator.wait_for_callback_answer(query, timeout=15)
    assert not answer.show_alert
    query = emulator.press_button(user, refused, text="Оплата и доставка")
    await emulator.wait_for_callback_answer(query, timeout=15)
    assert refused.buttons  # the step keeps its buttons
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []
    assert not [m for m in emulator.bot_messages(user) if "что-то пошло не так" in m.content]


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_cancel_after_a_description_asks_once(
    emulator: TelegramEmulator, start_bot, language: str
) -> None:
    t, w = TEXTS[language], WORDS[language]
    await start_bot()
    chat = MerchantChat(emulator, merchant(language))

    # Without a description: cancelled at once.
    await walk_to_description(chat, t)
    assert w["cancelled"] in (await chat.say("/cancel")).content

    # With one: asked; "No" goes on where the merchant was.
    await walk_to_description(chat, t)
    status = await send_description(chat, t["description"])
    question = await chat.say("/cancel", until=containing(w["cancel_question"]))
    back = await chat.press(question, w["no_continue"])
    assert t["description_prompt"] in back.content and done_button(back) is not None
    files_prompt = await chat.press(back, t["done"])
    review = await chat.press(files_prompt, t["skip"])
    assert t["description"] in review.content
    assert status.buttons == []  # only the newest prompt keeps buttons

    # Asked again; "Yes" drops it, and its buttons say so.
    question = await chat.say("/cancel", until=containing(w["cancel_question"]))
    dropped = await chat.press(question, w["yes_drop"])
    assert w["cancelled"] in dropped.content
    assert dropped.buttons == []


# --- Point 8: groups -------------------------------------------------------------------------


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_group_gets_a_note_for_a_command_and_nothing_else(
    emulator: TelegramEmulator, start_bot, language: str
) -> None:
    w = WORDS[language]
    await start_bot()
    group = -1_000_000_123
    emulator.add_group(group, "Магазин: команда")
    user = merchant(language)

    since = emulator.mark()
    emulator.send_group_text(user, group, "/new@frontdesk_e2e_bot")
    note = await emulator.wait_for_message(group, since=since, timeout=15)
    assert w["group_note"] in note.content
    button = note.button(w["open_private"])
    assert button.url == "https://t.me/frontdesk_e2e_bot"
    assert note.buttons == [button]  # no wizard button in a group

    since = emulator.mark()
    emulator.send_group_text(user, group, "Коллеги, у кого-нибудь работает оплата?")
    emulator.send_group_text(user, group, "Ответ боту", reply_to=note)
    emulator.send_group_text(user, group, "/new@another_bot")
    emulator.send_group_text(user, group, "/quota@frontdesk_e2e_bot")
    quota_note = await emulator.wait_for_message(group, since=since, timeout=15)
    assert w["group_note"] in quota_note.content
    await asyncio.sleep(0.5)
    assert [m for m in emulator.bot_messages(group) if m.seq > since] == [quota_note]
    assert emulator.bot_messages(user) == []  # nothing in the private chat either
