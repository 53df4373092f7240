"""The real bot, through aiogram's real HTTP client, against the Bot API emulator: in the test's
event loop, and as a process where the test is about the process (a crash, a restart)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from babel.dates import format_date

from bot.sandbox.telegram_emulator import SimUser, TelegramEmulator
from services.db.engine import create_engine, create_sessionmaker
from services.db.models import TicketStatus
from services.queue.builtin import BuiltinQueue
from services.queue.console import BuiltinConsole
from tests.e2e.driver import MerchantChat, containing
from tests.helpers.wizard import (
    TEXTS,
    describe,
    merchant,
    read_back,
    send_and_get_number,
    walk_to_description,
)

pytestmark = pytest.mark.e2e

MSK = ZoneInfo("Europe/Moscow")


def expected_first_reaction(t: dict[str, str], registered_around: datetime) -> set[str]:
    """Technical requests: 24 hours round the clock, so tomorrow at the minute of registration,
    with its date."""
    locale = "ru" if "Первая" in t["first_reaction"] else "en"
    return {
        t["first_reaction"].format(
            day=format_date((registered_around + delta).astimezone(MSK), "d MMMM", locale=locale),
            time=(registered_around + delta).astimezone(MSK).strftime("%H:%M"),
        )
        for delta in (timedelta(hours=24), timedelta(hours=24, minutes=1))
    }


@pytest.mark.parametrize("language", ["ru", "en"])
@pytest.mark.parametrize("mode", ["polling", "webhook"])
async def test_merchant_files_a_ticket_from_start_to_queue_number(
    emulator: TelegramEmulator, start_bot, tmp_path: Path, language: str, mode: str
) -> None:
    t = TEXTS[language]
    bot = await start_bot(webhook=mode == "webhook")
    chat = MerchantChat(emulator, merchant(language))

    greeting = await chat.say("/start")
    assert t["greeting"] in greeting.content

    description_prompt = await walk_to_description(chat, t)
    review = await describe(chat, t["description"])
    assert t["review"] in review.content and t["description"] in review.content
    # An answered prompt loses its buttons.
    await emulator.wait_until(lambda: description_prompt.buttons == [])

    started = datetime.now(UTC).replace(second=0, microsecond=0)
    number = await send_and_get_number(chat, review, t)
    registered = emulator.last_message(chat.user)
    assert registered is not None
    assert set(registered.content.splitlines()) & expected_first_reaction(t, started)
    await emulator.wait_until(lambda: review.buttons == [])  # the sent review cannot be resent

    ticket = await read_back(bot.env["DATABASE_URL"], number)
    assert ticket.subject == t["subject"]
    assert ticket.status is TicketStatus.REGISTERED
    assert ticket.requester == "telegram-5000001@frontdesk.invalid"

    # The command menu is registered in both languages.
    commands = {
        language: [c.command for c in emulator.commands[("all_private_chats", language)]]
        for language in ("ru", "en")
    }
    assert (
        commands["ru"]
        == commands["en"]
        == ["new", "cancel", "tickets", "quota", "stores", "language", "help"]
    )
    assert emulator.failed_calls == []
    if mode == "webhook":
        assert emulator.webhook is not None and emulator.webhook.secret_token
        assert emulator.webhook_deliveries
        assert all(delivery.ok for delivery in emulator.webhook_deliveries)
    # Each press is answered once; in webhook mode in the webhook's response (one call fewer).
    answers = [call.via for call in emulator.calls if call.method == "answerCallbackQuery"]
    assert len(answers) >= 4
    assert set(answers) == {"webhook-reply" if mode == "webhook" else "http"}


async def _fill_restart_and_send(
    emulator: TelegramEmulator, start_bot, env: dict[str, str], *, crash: bool
) -> None:
    """Half the wizard, the process ends (SIGKILL: a crash; SIGTERM: a deploy, which exits 0),
    a new process (after a deploy: in webhook mode, `run --webhook`) finishes the request."""
    t = TEXTS["ru"]
    bot = await start_bot(env=env)
    chat = MerchantChat(emulator, merchant("ru"))
    await walk_to_description(chat, t)

    exit_code = await bot.stop(kill=crash)
    assert exit_code == (-9 if crash else 0)
    restarted = await start_bot(env=env, webhook=not crash)

    review = await describe(chat, t["description"])
    assert t["subject"] in review.content
    number = await send_and_get_number(chat, review, t)
    assert (await read_back(bot.env["DATABASE_URL"], number)).subject == t["subject"]
    assert await restarted.stop() == 0


async def test_half_filled_ticket_survives_a_crash_with_the_sql_storage(
    emulator: TelegramEmulator, start_bot_process
) -> None:
    """The embedded default (SQLite, FSM in SQL): the bot is killed with SIGKILL mid-wizard."""
    await _fill_restart_and_send(emulator, start_bot_process, {}, crash=True)


@pytest.mark.redis
@pytest.mark.postgres
async def test_half_filled_ticket_survives_a_restart_with_redis_and_postgres(
    emulator: TelegramEmulator, start_bot_process, redis_env: dict[str, str], postgres_url: str
) -> None:
    await _fill_restart_and_send(
        emulator, start_bot_process, {**redis_env, "DATABASE_URL": postgres_url}, crash=False
    )


async def test_bad_input_is_answered_politely_and_loses_nothing(
    emulator: TelegramEmulator, start_bot
) -> None:
    t = TEXTS["ru"]
    bot = await start_bot()
    chat = MerchantChat(emulator, merchant("ru"))

    types = await chat.say("/new", until=lambda m: bool(m.buttons))
    # Text where a button is expected: a hint, and the step shown again with its buttons.
    hint = await chat.say("хочу спросить про оплату")
    assert "выберите вариант кнопками" in hint.content
    types = await emulator.wait_for_message(chat.user, lambda m: bool(m.buttons), timeout=15)
    categories = await chat.press(types, t["technical"])
    subject_prompt = await chat.press(categories, t["system_error"])

    too_long = await chat.say("Т" * 101)
    assert "Длина темы — 101 символ, а тикетная система хранит не больше 100 символов" in (
        too_long.content
    )
    assert emulator.message(chat.user, subject_prompt.message_id).buttons  # still on this step
    await chat.say(t["subject"])

    empty = await chat.say("   \n  ")
    assert "Описание пустое" in empty.content
    emulator.send_photo(chat.user, b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")
    photo = await emulator.wait_for_message(chat.user, timeout=15)
    assert "текстовым сообщением" in photo.content

    # /new in the middle of a draft asks instead of dropping it.
    question = await chat.say("/new", until=containing("незавершённое обращение"))
    prompt = await chat.press(question, "Продолжить черновик")
    assert t["description_prompt"] in prompt.content

    review = await describe(chat, t["description"])
    number = await send_and_get_number(chat, review, t)

    # A button of the finished wizard: explained, and nothing is filed twice.
    send = next(
        b
        for b in emulator.calls_to("sendMessage")
        if b.result and b.result["message_id"] == review.message_id
    )
    send_data = send.params["reply_markup"]["inline_keyboard"][0][0]["callback_data"]
    alert = await chat.press_stale(review, send_data)
    assert alert is not None and "уже отправлено" in alert

    engine = create_engine(bot.env["DATABASE_URL"])
    try:
        console = BuiltinConsole(BuiltinQueue(create_sessionmaker(engine)), "anna")
        tickets = await console.list_tickets("telegram-5000001@frontdesk.invalid")
    finally:
        await engine.dispose()
    assert [ticket.id for ticket in tickets] == [number]
    assert emulator.internal_errors == []


async def test_english_user_can_switch_to_russian_and_it_is_remembered(
    emulator: TelegramEmulator, start_bot
) -> None:
    await start_bot()
    chat = MerchantChat(emulator, merchant("en"))
    menu = await chat.say("/language", until=lambda m: bool(m.buttons))
    done = await chat.press(menu, "Русский")
    assert "по-русски" in done.content
    helped = await chat.say("/help")
    assert "Как оставить обращение" in helped.content


async def test_webhook_call_without_the_right_secret_is_refused(
    emulator: TelegramEmulator, start_bot
) -> None:
    bot = await start_bot(webhook=True)
    await emulator.wait_until(lambda: emulator.webhook is not None)
    emulator.add_user(SimUser(id=5_000_009, first_name="Mallory", language_code="en"))
    update = {
        "update_id": 999_001,
        "message": {
            "message_id": 1,
            "date": 1_764_000_000,
            "text": "/start",
            "chat": {"id": 5_000_009, "type": "private", "first_name": "Mallory"},
            "from": {"id": 5_000_009, "is_bot": False, "first_name": "Mallory"},
            "entities": [{"type": "bot_command", "offset": 0, "length": 6}],
        },
    }
    since = emulator.mark()
    url = bot.base_url + "/telegram/webhook"
    async with aiohttp.ClientSession() as http:
        for headers in ({}, {"X-Telegram-Bot-Api-Secret-Token": "wrong"}):
            async with http.post(url, json=update, headers=headers) as response:
                assert response.status == 401
        # The same update with the secret is processed: the refusal above was the secret's.
        headers = {"X-Telegram-Bot-Api-Secret-Token": bot.env["WEBHOOK_SECRET"]}
        async with http.post(url, json=update, headers=headers) as response:
            assert response.status == 200
    answered = await emulator.wait_for_message(5_000_009, since=since, timeout=15)
    assert answered.chat_id == 5_000_009
    assert len([c for c in emulator.calls_to("sendMessage") if c.seq > since]) == 1
