"""The emulator's Telegram limits, fault bursts and slow answers, driven by a plain aiogram Bot
(no limiter): what a bot that ignores the limits meets."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
from aiogram import Bot
from aiogram.exceptions import TelegramRetryAfter, TelegramServerError
from aiogram.types import BufferedInputFile

from bot.sandbox.telegram_emulator import RateLimits, SimUser, TelegramEmulator

TOKEN = "123456:TEST"
ALICE = SimUser(id=1001, first_name="Alice")
BORIS = SimUser(id=1002, first_name="Борис")
GROUP = -100_500


@pytest.fixture
async def emu() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator(token=TOKEN) as emulator:
        emulator.add_user(ALICE)
        emulator.add_user(BORIS)
        yield emulator


@pytest.fixture
async def bot(emu: TelegramEmulator) -> AsyncIterator[Bot]:
    bot = emu.create_bot()
    yield bot
    await bot.session.close()


async def test_a_second_message_into_a_private_chat_within_a_second_gets_429(
    emu: TelegramEmulator, bot: Bot
) -> None:
    emu.enforce_limits()
    await bot.send_message(ALICE.id, "первое")
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(ALICE.id, "второе")
    await bot.send_message(BORIS.id, "другой чат")  # other chats are not affected

    assert caught.value.retry_after == 1
    [refused] = emu.rate_limited
    assert refused.response == {
        "ok": False,
        "error_code": 429,
        "description": "Too Many Requests: retry after 1",
        "parameters": {"retry_after": 1},
    }
    await asyncio.sleep(1.0)
    await bot.send_message(ALICE.id, "второе")
    assert [m.text for m in emu.bot_messages(ALICE)] == ["первое", "второе"]


async def test_edits_and_chat_actions_do_not_count(emu: TelegramEmulator, bot: Bot) -> None:
    emu.enforce_limits()
    sent = await bot.send_message(ALICE.id, "первое")
    await bot.send_chat_action(ALICE.id, "typing")
    await bot.edit_message_text("первое ✓", chat_id=ALICE.id, message_id=sent.message_id)
    assert emu.rate_limited == []


async def test_the_bot_wide_limit_counts_every_chat(emu: TelegramEmulator, bot: Bot) -> None:
    emu.enforce_limits(RateLimits(per_bot=(5, 1.0)))
    users = [SimUser(id=2000 + n, first_name=f"U{n}") for n in range(6)]
    for user in users:
        emu.add_user(user)
    results = await asyncio.gather(
        *(bot.send_message(user.id, "привет") for user in users), return_exceptions=True
    )
    assert sum(isinstance(result, TelegramRetryAfter) for result in results) == 1
    assert len(emu.rate_limited) == 1


async def test_a_group_takes_its_rate_per_window(emu: TelegramEmulator, bot: Bot) -> None:
    emu.enforce_limits(RateLimits(per_group=(3, 60.0)))
    emu.add_group(GROUP, "Поддержка")
    for n in range(3):
        await bot.send_message(GROUP, f"событие {n}")
    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(GROUP, "событие 3")
    assert 58 <= caught.value.retry_after <= 60
    [first, *_] = emu.bot_messages(GROUP)
    assert first.chat.type == "supergroup"
    assert first.chat.title == "Поддержка"


async def test_without_enforce_limits_nothing_is_refused(emu: TelegramEmulator, bot: Bot) -> None:
    for n in range(5):
        await bot.send_message(ALICE.id, f"{n}")
    assert emu.rate_limited == []


async def test_a_burst_of_errors_on_several_methods_then_success(
    emu: TelegramEmulator, bot: Bot
) -> None:
    emu.inject_error(["sendMessage", "sendDocument"], 502, times=3)
    document = BufferedInputFile(b"%PDF-1.4", filename="invoice.pdf")
    with pytest.raises(TelegramServerError, match="Bad Gateway"):
        await bot.send_message(ALICE.id, "1")
    with pytest.raises(TelegramServerError):
        await bot.send_document(ALICE.id, document)
    with pytest.raises(TelegramServerError):
        await bot.send_message(ALICE.id, "3")
    await bot.send_document(ALICE.id, document)
    assert [call.status for call in emu.calls] == [502, 502, 502, 200]


async def test_a_burst_of_429_for_one_chat_leaves_the_others_alone(
    emu: TelegramEmulator, bot: Bot
) -> None:
    emu.inject_error("sendMessage", 429, retry_after=7, times=2, chat=ALICE)
    await bot.send_message(BORIS.id, "Борису")
    for _ in range(2):
        with pytest.raises(TelegramRetryAfter) as caught:
            await bot.send_message(ALICE.id, "Алисе")
        assert caught.value.retry_after == 7
    await bot.send_message(ALICE.id, "Алисе")
    assert emu.failed_calls[0].description == "Too Many Requests: retry after 7"
    assert emu.rate_limited == []  # injected faults are not the emulator's own limits


async def test_slow_down_delays_the_answers_of_chosen_methods(
    emu: TelegramEmulator, bot: Bot
) -> None:
    emu.slow_down(0.3, ["sendMessage"])
    started = time.monotonic()
    await bot.get_me()
    assert time.monotonic() - started < 0.3
    await bot.send_message(ALICE.id, "медленно")
    assert time.monotonic() - started >= 0.3

    emu.slow_down(0)
    started = time.monotonic()
    await bot.send_message(ALICE.id, "быстро")
    assert time.monotonic() - started < 0.3
