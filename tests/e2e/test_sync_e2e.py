"""Sync back, end to end: the real bot (in the test's event loop), the real Request Tracker, the
Bot API emulator.

A merchant files a request through the wizard; a specialist (RT's superuser, through REST2 as
RT's web interface would) replies with a file and resolves it; the merchant reads both in
Telegram. The push endpoint is called as an RT Scrip would call it, signed, forged, stale and
replayed.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from bot.sandbox.telegram_emulator import ChatMessage, TelegramEmulator
from services.event_signature import sign
from services.queue.base import Attachment
from tests.e2e.bot_in_process import InProcessBot, RunningBot
from tests.e2e.driver import MerchantChat, containing
from tests.helpers.wizard import (
    TEXTS,
    describe,
    merchant,
    send_and_get_number,
    walk_to_description,
)
from tests.integration.rt_fixture import RtServer, RtSpecialist, rt_server

__all__ = ["rt_server"]  # the session fixture, imported to be found here

pytestmark = pytest.mark.e2e

SECRET = "e2e-queue-events-secret"
LOG = b"2026-11-25 09:00:01 checkout: 500 -> 200\n"


@pytest.fixture
async def specialist(rt_server: RtServer) -> AsyncIterator[RtSpecialist]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield RtSpecialist(session, rt_server)


def _rt_env(rt: RtServer, **extra: str) -> dict[str, str]:
    return {"QUEUE": "rt", "RT_URL": rt.base_url, "RT_TOKEN": rt.token, **extra}


async def _file_a_request(emulator: TelegramEmulator, language: str, user_id: int) -> str:
    t = TEXTS[language]
    chat = MerchantChat(emulator, merchant(language, user_id))
    await chat.say("/start")
    await walk_to_description(chat, t)
    review = await describe(chat, t["description"])
    return await send_and_get_number(chat, review, t)


async def _correspondence(specialist: RtSpecialist, number: str) -> str:
    """The id of the ticket's latest Correspond transaction, as RT's Scrip would see it."""
    history = await specialist.call("GET", f"ticket/{number}/history?fields=Type&per_page=100")
    return str([item["id"] for item in history["items"] if item["Type"] == "Correspond"][-1])


async def _post_event(
    bot: RunningBot,
    payload: dict[str, Any],
    *,
    secret: str = SECRET,
    timestamp: int | None = None,
    body: bytes | None = None,
) -> tuple[int, dict[str, Any]]:
    raw = body if body is not None else json.dumps(payload).encode()
    headers = sign(secret, int(time.time()) if timestamp is None else timestamp, raw)
    return await _post_raw(bot, raw, headers)


async def _post_raw(bot: RunningBot, raw: bytes, headers: dict[str, str]) -> tuple[int, Any]:
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            bot.base_url + "/queue/events",
            data=raw,
            headers={"Content-Type": "application/json", **headers},
        ) as response,
    ):
        return response.status, await response.json(content_type=None)


def _replies(emulator: TelegramEmulator, user_id: int, number: str) -> list[ChatMessage]:
    return [
        m
        for m in emulator.bot_messages(user_id)
        if f"#{number}" in m.content and m.content.startswith("💬")
    ]


@pytest.mark.rt
@pytest.mark.parametrize("language", ["ru", "en"])
async def test_specialists_reply_with_a_file_and_the_resolution_reach_the_merchant(
    emulator: TelegramEmulator,
    start_bot,
    rt_server: RtServer,
    specialist: RtSpecialist,
    language: str,
) -> None:
    user_id = 5_100_001 if language == "ru" else 5_100_002
    bot = await start_bot(env=_rt_env(rt_server, SYNC_INTERVAL_SECONDS="1"))
    number = await _file_a_request(emulator, language, user_id)

    since = emulator.mark()
    await specialist.reply(
        number,
        "Здравствуйте! Ошибка <500> исправлена, журнал во вложении.",
        (Attachment("checkout.log", "text/plain", LOG),),
    )
    header = {
        "ru": f"💬 Ответ поддержки по обращению #{number} «{TEXTS['ru']['subject']}»:",
        "en": f"💬 Support replied on request #{number} «{TEXTS['en']['subject']}»:",
    }[language]
    reply = await emulator.wait_for_message(user_id, containing(header), since=since, timeout=30)
    # The specialist's text arrives as text: escaped, never parsed as markup.
    assert "Здравствуйте! Ошибка <500> исправлена, журнал во вложении." in reply.content
    document = await emulator.wait_for_message(
        user_id, lambda m: m.file is not None, since=since, timeout=30
    )
    assert document.file is not None
    assert (document.file.filename, document.file.content) == ("checkout.log", LOG)

    since = emulator.mark()
    await specialist.set_status(number, "resolved")
    resolved = {
        "ru": f"✅ Обращение #{number} «{TEXTS['ru']['subject']}» решено.",
        "en": f"✅ Request #{number} «{TEXTS['en']['subject']}» is resolved.",
    }[language]
    await emulator.wait_for_message(user_id, containing(resolved), since=since, timeout=30)

    # Two more rounds of the worker read the ticket again (its overlap): nothing comes twice.
    assert isinstance(bot, InProcessBot) and bot.app is not None
    assert bot.app.sync_worker is not None
    for _ in range(2):
        await bot.app.sync_worker.run_once()
    assert len(_replies(emulator, user_id, number)) == 1
    assert len([m for m in emulator.bot_messages(user_id) if resolved in m.content]) == 1
    assert len([m for m in emulator.bot_messages(user_id) if m.file is not None]) == 1
    assert emulator.failed_calls == []


@pytest.mark.rt
async def test_pushed_event_reaches_the_merchant_once_and_bad_calls_change_nothing(
    emulator: TelegramEmulator,
    start_bot,
    rt_server: RtServer,
    specialist: RtSpecialist,
) -> None:
    user_id = 5_100_003
    # The worker off: only the push can bring the reply.
    env = _rt_env(rt_server, QUEUE_EVENTS_SECRET=SECRET, SYNC_ENABLED="false")
    bot = await start_bot(env=env)
    number = await _file_a_request(emulator, "ru", user_id)
    await specialist.reply(number, "Проверили платёжный шлюз, всё работает.")
    transaction = await _correspondence(specialist, number)
    payload = {"ticket_id": number, "transaction_id": transaction}

    forged = await _post_event(bot, payload, secret="someone-elses-secret-123")
    unsigned = await _post_raw(bot, json.dumps(payload).encode(), {})
    stale = await _post_event(bot, payload, timestamp=int(time.time()) - 600)
    assert forged == (401, {"error": "signature does not match"})
    assert unsigned == (401, {"error": "missing signature or timestamp"})
    assert stale == (401, {"error": "timestamp outside the accepted window"})
    # Refused before anything was scheduled: no event is being applied, none was sent.
    assert isinstance(bot, InProcessBot)
    assert bot.background_tasks("queue-event-") == []
    assert _replies(emulator, user_id, number) == []

    raw = json.dumps(payload).encode()
    headers = sign(SECRET, int(time.time()), raw)
    status, answer = await _post_raw(bot, raw, headers)
    assert (status, answer["status"]) == (202, "accepted")
    reply = await emulator.wait_for_message(
        user_id, containing(f"#{number}", "Проверили платёжный шлюз"), timeout=30
    )
    assert reply.content.startswith("💬")

    replayed = await _post_raw(bot, raw, headers)
    assert replayed == (401, {"error": "replayed call"})

    # Now the worker reads the queue too, over the same database: it sees the reply and does
    # not send it again (it does apply what came after: RT opened the ticket on the reply).
    await bot.stop()
    polling = await start_bot(
        env={**env, "SYNC_ENABLED": "true", "SYNC_INTERVAL_SECONDS": "1", "LOG_LEVEL": "DEBUG"}
    )
    seen = re.compile(rf"ticket {number}: \d+ event\(s\) applied, [1-9]\d* already applied")
    deadline = time.monotonic() + 30
    while not seen.search(polling.log()):
        assert time.monotonic() < deadline, "the worker never read the ticket"
        await asyncio.sleep(0.3)
    # That pass over the ticket is complete (the line is logged after it): the reply was
    # found already applied and not sent again.
    assert len(_replies(emulator, user_id, number)) == 1
    # The stopped process's pending getUpdates may be ended by the new poller's (409), as
    # Telegram does on a restart; any other failed call is a bug.
    assert [c for c in emulator.failed_calls if (c.method, c.status) != ("getUpdates", 409)] == []


@pytest.mark.rt
async def test_queue_events_endpoint_is_served_in_webhook_mode_too(
    emulator: TelegramEmulator, start_bot, rt_server: RtServer
) -> None:
    bot = await start_bot(webhook=True, env=_rt_env(rt_server, QUEUE_EVENTS_SECRET=SECRET))
    payload = {"ticket_id": "987654321", "transaction_id": "1"}
    assert (await _post_event(bot, payload, secret="someone-elses-secret-123"))[0] == 401
    # Authentic but about a ticket frontdesk never filed: accepted, and nothing happens.
    assert (await _post_event(bot, payload))[0] == 202


async def test_queue_events_endpoint_is_off_without_a_secret(
    emulator: TelegramEmulator, start_bot
) -> None:
    bot = await start_bot()
    status, answer = await _post_event(bot, {"ticket_id": "1", "transaction_id": "1"})
    assert status == 404 and "QUEUE_EVENTS_SECRET" in answer["error"]
