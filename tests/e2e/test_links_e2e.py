"""Linking as the platform does it, through the real bot and the Bot API emulator: POST
/api/links on the bot's HTTP server, `/start <token>` in Telegram, /stores, and what a linked or
an unlinked merchant may then file; flood control."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta

import pytest

from bot.sandbox.telegram_emulator import SimUser, TelegramEmulator
from services.db.engine import create_engine, create_sessionmaker
from services.queue.base import ConversationEntry
from services.queue.builtin import BuiltinQueue
from tests.e2e.driver import MerchantChat, containing
from tests.helpers.links import API_ENV, expire, request_link, store, wait_for_log
from tests.helpers.wizard import (
    TEXTS,
    describe,
    merchant,
    read_back,
    send_and_get_number,
    walk_to_description,
)

pytestmark = pytest.mark.e2e

LINKED = {
    "ru": {
        "linked": "Ваш аккаунт Telegram привязан к магазину",
        "owner": "с ролью владельца",
        "admin": "с ролью администратора",
        "stores": "Ваши магазины",
        "plan_role": "Тариф: Премиум · ваша роль: владелец",
        "unlink": "Отвязать Цветы",
        "yes": "Да, отвязать",
        "keep": "Нет, оставить",
        "within_3_hours": "в течение 3 часов",
        "used": "Эта ссылка уже использована",
        "expired": "Срок действия ссылки истёк",
        "unknown": "Ссылка недействительна",
        "how_to_link": "Помощь → Telegram",
        "unlinked": "отвязан от этого аккаунта Telegram",
        "already_unlinked": "Уже сделано: этот магазин отвязан от вашего аккаунта.",
    },
    "en": {
        "linked": "Your Telegram account is linked to the store",
        "owner": "as its owner",
        "admin": "as an administrator",
        "stores": "Your stores",
        "plan_role": "Plan: Premium · your role: owner",
        "unlink": "Unlink Цветы",
        "yes": "Yes, unlink",
        "keep": "No, keep it",
        "within_3_hours": "within 3 hours",
        "used": "This link has already been used",
        "expired": "This link has expired",
        "unknown": "This link is not valid",
        "how_to_link": "Help → Telegram",
        "unlinked": "is unlinked from this Telegram account",
        "already_unlinked": "Already done: this store is unlinked from your account.",
    },
}


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_platform_link_then_start_links_a_premium_store_promised_3_hours(
    emulator: TelegramEmulator, start_bot, sqlite_url: str, language: str
) -> None:
    t, w = LINKED[language], TEXTS[language]
    bot = await start_bot(env=API_ENV)
    chat = MerchantChat(emulator, merchant(language))
    token = await request_link(bot.base_url, store("501", "premium", "owner", name="Цветы"))

    linked = await chat.say(f"/start {token}")
    assert t["linked"] in linked.content and "Цветы" in linked.content
    assert "shop-501.example.com" in linked.content and t["owner"] in linked.content

    listing = await chat.say("/stores")
    assert t["stores"] in listing.content and t["plan_role"] in listing.content
    assert [b.text for b in listing.buttons] == [t["unlink"]]
    # Unlinking asks first; "keep it" leaves everything as it was.
    confirm = await chat.press(listing, t["unlink"])
    assert [b.text for b in confirm.buttons] == [t["yes"], t["keep"]]
    kept = await chat.press(confirm, t["keep"])
    assert t["plan_role"] in kept.content

    # A premium store: the first reaction within 3 hours, the requester the registered e-mail.
    await walk_to_description(chat, w)
    review = await describe(chat, w["description"])
    registered = emulator.wait_for_message(
        chat.user, containing(w["registered"]), since=emulator.mark(), timeout=20
    )
    await chat.press_for_new(review, w["send"], until=containing(w["accepted"]))
    answer = (await registered).content
    assert t["within_3_hours"] in answer, answer
    number = answer.split("#", 1)[1].split()[0].rstrip(".")
    assert (await read_back(sqlite_url, number)).requester == "anna@example.com"
    assert emulator.failed_calls == []


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_a_second_tap_on_yes_unlink_says_it_is_already_unlinked_with_no_security_warning(
    emulator: TelegramEmulator, start_bot, sqlite_url: str, language: str
) -> None:
    t = LINKED[language]
    bot = await start_bot(env=API_ENV)
    chat = MerchantChat(emulator, merchant(language))
    await chat.say(f"/start {await request_link(bot.base_url, store('504', 'site', 'owner'))}")
    listing = await chat.say("/stores")
    confirm = await chat.press(listing, listing.buttons[0].text)
    yes = confirm.buttons[0].callback_data
    assert confirm.buttons[0].text == t["yes"] and yes is not None

    done = await chat.press(confirm, t["yes"])
    assert t["unlinked"] in done.content
    # The second tap of the same button, which the chat showed a moment longer.
    assert await chat.press_stale(confirm, yes) == t["already_unlinked"]
    log = bot.log()
    assert "which is not linked to them" not in log
    assert "confirmed unlinking store" in log and "already unlinked" in log
    assert t["how_to_link"] in (await chat.say("/stores")).content


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_the_same_link_twice_and_an_expired_link_are_refused_with_their_reason(
    emulator: TelegramEmulator, start_bot, sqlite_url: str, language: str
) -> None:
    t = LINKED[language]
    bot = await start_bot(env=API_ENV)
    chat = MerchantChat(emulator, merchant(language))
    token = await request_link(bot.base_url, store("502", "site", "admin"))
    assert t["admin"] in (await chat.say(f"/start {token}")).content
    assert t["used"] in (await chat.say(f"/start {token}")).content
    # Someone else who got hold of the used link gets the same answer, and no store.
    other = MerchantChat(emulator, merchant(language, user_id=5_000_777))
    assert t["used"] in (await other.say(f"/start {token}")).content
    assert t["how_to_link"] in (await other.say("/stores")).content

    late = await request_link(bot.base_url, store("503", "site", "owner"))
    await expire(sqlite_url, late, datetime.now(UTC) - timedelta(seconds=1))
    assert t["expired"] in (await other.say(f"/start {late}")).content
    assert t["unknown"] in (await other.say("/start not-a-link-at-all")).content
    assert t["how_to_link"] in (await other.say("/stores")).content


async def test_free_store_refusal_and_an_admin_refused_an_owner_only_request(
    emulator: TelegramEmulator, start_bot
) -> None:
    bot = await start_bot(env=API_ENV)
    chat = MerchantChat(emulator, SimUser(id=5_000_801, first_name="Ирина", language_code="ru"))
    for payload in (store("601", "free", "owner"), store("602", "premium", "admin")):
        await chat.say(f"/start {await request_link(bot.base_url, payload)}")

    choice = await chat.say("/new", until=lambda m: bool(m.buttons))
    types = await chat.press(choice, "shop-601.example.com (shop-601.example.com)")
    categories = await chat.press(types, "Технический вопрос")
    refused = await chat.press(categories, "Оплата и доставка")
    # The free plan takes platform errors only (and paid modifications), in the regulation
    # wording: the refusal names what the plan allows.
    assert "На тарифе «Бесплатный» поддержка платформы не принимает такие обращения" in (
        refused.content
    )
    assert "• Технический вопрос → Ошибка в работе платформы" in refused.content

    await chat.say("/cancel")
    choice = await chat.say("/new", until=lambda m: bool(m.buttons))
    types = await chat.press(choice, "shop-602.example.com (shop-602.example.com)")
    categories = await chat.press(types, "Административный вопрос")
    refused = await chat.press(categories, "Удаление контента магазина")
    assert "может запросить только владелец магазина" in refused.content


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_unlinked_merchant_is_told_how_to_link_and_gets_no_wizard_by_default(
    emulator: TelegramEmulator, start_bot, language: str
) -> None:
    t = LINKED[language]
    await start_bot(env={"UNLINKED_MAY_FILE": "none"})
    chat = MerchantChat(emulator, merchant(language))
    greeting = await chat.say("/start")
    assert TEXTS[language]["greeting"] in greeting.content and t["how_to_link"] in greeting.content
    answer = await chat.say("/new")
    assert t["how_to_link"] in answer.content and answer.buttons == []


UNLINKED_TECHNICAL = {
    "ru": {
        "administrative": "Административный вопрос",
        "refund": "Возврат денежных средств",
        "modification": "Доработка",
        "template": "Шаблон магазина",
        "technical": "Технический вопрос",
        "platform_error": "Ошибка в работе платформы",
        "needs_store": "нужен привязанный магазин",
        "how_to_link": "Помощь → Telegram",
        "back": "« Назад",
        "subject_prompt": "Напишите <b>тему</b>",
    },
    "en": {
        "administrative": "Administrative question",
        "refund": "Refund",
        "modification": "Modification",
        "template": "Store template",
        "technical": "Technical question",
        "platform_error": "Platform error",
        "needs_store": "needs a linked store",
        "how_to_link": "Help → Telegram",
        "back": "« Back",
        "subject_prompt": "Write the <b>subject</b>",
    },
}


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_unlinked_merchant_may_file_technical_requests_only_when_the_operator_allows(
    emulator: TelegramEmulator, start_bot, language: str
) -> None:
    t = UNLINKED_TECHNICAL[language]
    await start_bot(env={"UNLINKED_MAY_FILE": "technical"})
    chat = MerchantChat(emulator, SimUser(id=5_000_802, first_name="Олег", language_code=language))
    types = await chat.say("/new", until=lambda m: bool(m.buttons))
    categories = await chat.press(types, t["administrative"])
    refused = await chat.press(categories, t["refund"])
    assert t["needs_store"] in refused.content and t["how_to_link"] in refused.content
    back = await chat.press(refused, t["back"])
    categories = await chat.press(back, t["modification"])
    refused = await chat.press(categories, t["template"])
    assert t["needs_store"] in refused.content
    back = await chat.press(refused, t["back"])
    categories = await chat.press(back, t["technical"])
    subject_prompt = await chat.press(categories, t["platform_error"])
    assert t["subject_prompt"] in (subject_prompt.raw_text or "")


async def test_flood_is_answered_once_and_what_was_accepted_stays(
    emulator: TelegramEmulator, start_bot
) -> None:
    bot = await start_bot(env={"FLOOD_MESSAGES": "3", "FLOOD_WINDOW_SECONDS": "60"})
    user = SimUser(id=5_000_803, first_name="Анна", language_code="en")
    for _ in range(8):
        emulator.send_text(user, "/help")
    await wait_for_log(bot.log, lambda log: log.count("Update id=") >= 8)
    texts = [m.content for m in emulator.bot_messages(user)]
    assert sum("How to file a request" in text for text in texts) == 3
    assert [text for text in texts if "too fast" in text] == [
        texts[-1]
    ]  # one polite answer, the rest dropped without a word
    assert "Please wait" in texts[-1]
    assert "sends too fast" in bot.log()


TOO_FAST = {
    "ru": re.compile(r"Вы отправляете сообщения слишком часто\. Подождите (\d+) с"),
    "en": re.compile(r"You are sending too fast\. Please wait (\d+) s"),
}


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_a_flood_mid_wizard_is_answered_once_and_the_written_draft_can_still_be_sent(
    emulator: TelegramEmulator, start_bot, sqlite_url: str, language: str
) -> None:
    w = TEXTS[language]
    # The walk to the review takes 7 updates: the flood comes right after, in the same window.
    bot = await start_bot(env={"FLOOD_MESSAGES": "10", "FLOOD_WINDOW_SECONDS": "8"})
    chat = MerchantChat(emulator, merchant(language, user_id=5_000_805))
    await walk_to_description(chat, w)
    review = await describe(chat, w["description"])
    assert w["description"] in review.content

    since = emulator.mark()
    for _ in range(12):
        emulator.send_text(chat.user, "/help")
    # A press of Send in the flood is dropped, not taken: the draft is not spent.
    dropped = emulator.press_button(chat.user, review, text=w["send"])
    await emulator.wait_for_callback_answer(dropped, timeout=10)
    await wait_for_log(bot.log, lambda log: log.count("Update id=") >= 7 + 13)
    notes = [
        m.content
        for m in emulator.bot_messages(chat.user)
        if m.seq > since and TOO_FAST[language].search(m.content)
    ]
    assert len(notes) == 1, notes  # once, politely; the rest dropped without a word
    assert all(w["accepted"] not in m.content for m in emulator.bot_messages(chat.user))
    kept = emulator.message(chat.user, review.message_id)
    assert w["description"] in kept.content and w["send"] in str(kept.button_rows)

    # After the wait the note names, the same review is sent as it was written.
    seconds = int(TOO_FAST[language].search(notes[0]).group(1))  # type: ignore[union-attr]
    await asyncio.sleep(seconds)
    number = await send_and_get_number(chat, kept, w)
    entries = await _conversation(sqlite_url, number)
    assert w["description"] in entries[0].body
    assert (await read_back(sqlite_url, number)).subject == w["subject"]


async def _conversation(database_url: str, number: str) -> list[ConversationEntry]:
    engine = create_engine(database_url)
    try:
        return await BuiltinQueue(create_sessionmaker(engine)).conversation(number)
    finally:
        await engine.dispose()


async def test_tickets_per_hour_refuse_send_politely_and_keep_the_draft(
    emulator: TelegramEmulator, start_bot
) -> None:
    w = TEXTS["en"]
    await start_bot(env={"TICKETS_PER_HOUR": "1"})
    chat = MerchantChat(emulator, merchant("en", user_id=5_000_804))
    await walk_to_description(chat, w)
    review = await describe(chat, w["description"])
    registered = emulator.wait_for_message(
        chat.user, containing(w["registered"]), since=emulator.mark(), timeout=20
    )
    await chat.press_for_new(review, w["send"], until=containing(w["accepted"]))
    # The number comes with a Reply button: wait for it, so that /new's buttons are the types.
    await registered

    await walk_to_description(chat, w)
    review = await describe(chat, "A second problem, described.")
    for _ in range(2):  # the draft stays: Send refuses again, it is never "finished"
        query = emulator.press_button(chat.user, review, text=w["send"])
        answer = await emulator.wait_for_callback_answer(query, timeout=10)
        assert answer.text and "many requests this hour" in answer.text
        assert "send it in 60 minutes" in answer.text or "send it in 59 minutes" in answer.text
    assert emulator.message(chat.user, review.message_id).buttons[0].text == w["send"]
