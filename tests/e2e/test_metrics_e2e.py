"""GET /metrics scraped before and after a merchant's walk through the wizard (the builtin queue,
no RT): the counters move as the walk goes, and the outboxes empty behind it."""

from __future__ import annotations

import asyncio
import math
from collections.abc import Callable

import aiohttp
import pytest
from prometheus_client.parser import text_string_to_metric_families

from bot.sandbox.telegram_emulator import TelegramEmulator
from tests.e2e.driver import MerchantChat
from tests.helpers.wizard import (
    TEXTS,
    describe,
    merchant,
    send_and_get_number,
    walk_to_description,
)

pytestmark = pytest.mark.e2e

ENV = {"SYNC_INTERVAL_SECONDS": "0.5"}

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


async def scrape(base_url: str) -> Samples:
    async with aiohttp.ClientSession() as http, http.get(base_url + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape_until(
    base_url: str, ready: Callable[[Samples], bool], timeout: float = 15
) -> Samples:
    """The workers record a step just after Telegram has it: scrape until the figures settle."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        samples = await scrape(base_url)
        if ready(samples) or asyncio.get_running_loop().time() > deadline:
            return samples
        await asyncio.sleep(0.2)


async def test_metrics_move_during_a_merchants_walk_through_the_wizard(
    emulator: TelegramEmulator, start_bot
) -> None:
    t = TEXTS["en"]
    bot = await start_bot(env=ENV)
    before = await scrape(bot.base_url)
    # Every family is there from the start, at zero: a dashboard needs no first ticket.
    assert value(before, "frontdesk_tickets_accepted_total") == 0
    assert value(before, "frontdesk_tickets_filed_total") == 0
    assert value(before, "frontdesk_outbox_depth", outbox="filing") == 0
    assert value(before, "frontdesk_outbox_depth", outbox="notices") == 0

    chat = MerchantChat(emulator, merchant("en", 5_900_001))
    await chat.say("/start")
    await walk_to_description(chat, t)
    review = await describe(chat, t["description"])
    number = await send_and_get_number(chat, review, t)
    assert number

    after = await scrape_until(
        bot.base_url,
        lambda s: (
            value(s, "frontdesk_tickets_filed_total") >= 1
            # "accepted" and "registered": both sent in full.
            and value(s, "frontdesk_notification_lag_seconds_count") >= 2
            and value(s, "frontdesk_outbox_depth", outbox="notices") == 0
        ),
    )

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    # Updates, by type: /start, /new, the subject, the description are messages; the buttons
    # (type, category, Done, Skip, Send) are callback queries.
    assert grew("frontdesk_updates_total", type="message") >= 4
    assert grew("frontdesk_updates_total", type="callback_query") >= 5
    # Every update handled was timed.
    handled = grew("frontdesk_updates_total", type="message") + grew(
        "frontdesk_updates_total", type="callback_query"
    )
    timed = grew("frontdesk_update_handling_seconds_count", type="message") + grew(
        "frontdesk_update_handling_seconds_count", type="callback_query"
    )
    assert timed == handled
    assert grew("frontdesk_update_handling_seconds_sum", type="callback_query") > 0
    # SQL statements on the application's engine (the load benchmark's per-update figure): every
    # update reads the merchant at least.
    assert grew("frontdesk_db_statements_total") >= handled

    assert grew("frontdesk_tickets_accepted_total") == 1
    assert grew("frontdesk_tickets_filed_total") == 1
    assert value(after, "frontdesk_outbox_depth", outbox="filing") == 0
    assert value(after, "frontdesk_outbox_oldest_age_seconds", outbox="filing") == 0
    assert value(after, "frontdesk_outbox_depth", outbox="notices") == 0

    assert grew("frontdesk_notification_lag_seconds_count") >= 2
    assert 0 <= grew("frontdesk_notification_lag_seconds_sum") < 60

    # The builtin queue took the ticket at the first try.
    for kind in ("transient", "refused", "not_found"):
        assert value(after, "frontdesk_queue_errors_total", kind=kind) == 0
    assert value(after, "frontdesk_telegram_retry_after_total") == 0

    # The sync worker has rounds behind it (every half second here).
    lag = value(after, "frontdesk_sync_lag_seconds")
    assert not math.isnan(lag) and 0 <= lag < 10


async def test_metrics_are_served_in_webhook_mode_too(
    emulator: TelegramEmulator, start_bot
) -> None:
    bot = await start_bot(webhook=True, env=ENV)
    samples = await scrape(bot.base_url)
    assert value(samples, "frontdesk_tickets_accepted_total") == 0
    assert ("frontdesk_outbox_depth", (("outbox", "filing"),)) in samples


async def test_a_429_from_telegram_is_counted(emulator: TelegramEmulator, start_bot) -> None:
    user = merchant("en", 5_900_011)
    bot = await start_bot(env=ENV)
    emulator.inject_error("sendMessage", 429, retry_after=1, chat=user)
    chat = MerchantChat(emulator, user)
    await chat.say("/start")  # the greeting waits out the 429, then goes
    samples = await scrape(bot.base_url)
    assert value(samples, "frontdesk_telegram_retry_after_total") == 1
