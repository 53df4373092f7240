"""The real bot while a peer fails under it: Redis and PostgreSQL restarted (a loopback proxy the
test controls stands between the bot and the shared server, which is never touched), and bursts
of 429 and 5xx from the Bot API. Each test counts afterwards: nothing lost, nothing twice."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.sandbox.telegram_emulator import ChatMessage, TelegramEmulator
from services.db.engine import create_engine, create_sessionmaker
from services.db.models import BuiltinQueueTicket, Notice, NoticeState, Ticket, TicketStatus
from tests.e2e.driver import MerchantChat, containing
from tests.helpers.databases import REDIS_URL
from tests.helpers.tcp_proxy import TcpProxy
from tests.helpers.wizard import (
    SKIP,
    TEXTS,
    describe,
    done_button,
    merchant,
    received,
    walk_to_description,
)

pytestmark = pytest.mark.e2e

T = TEXTS["ru"]
APOLOGY = "Извините, у нас что-то пошло не так"
# A server restart as the bot sees it: connections cut, refused for a while.
OUTAGE_SECONDS = 2.0


async def _counts(database_url: str) -> dict[str, object]:
    """What the database holds: tickets by status, queue tickets, notices by kind and state."""
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            statuses = list(await session.scalars(select(Ticket.status)))
            queued = await session.scalar(select(func.count()).select_from(BuiltinQueueTicket))
            notices = list(await session.execute(select(Notice.chat_id, Notice.kind, Notice.state)))
            return {"statuses": statuses, "queued": queued, "notices": notices}
    finally:
        await engine.dispose()


async def _settled(database_url: str, tickets: int, timeout: float = 30) -> dict[str, object]:
    """Waits until `tickets` tickets are registered and no notice is pending."""
    async with asyncio.timeout(timeout):
        while True:
            counts = await _counts(database_url)
            statuses = counts["statuses"]
            assert isinstance(statuses, list)
            notices = counts["notices"]
            assert isinstance(notices, list)
            if (
                len(statuses) == tickets
                and all(s is TicketStatus.REGISTERED for s in statuses)
                and all(state is not NoticeState.PENDING for _, _, state in notices)
            ):
                return counts
            await asyncio.sleep(0.1)


def _said(emulator: TelegramEmulator, chat: MerchantChat, fragment: str) -> int:
    return sum(fragment in m.content for m in emulator.bot_messages(chat.user))


async def _idle(bot: Any, emu: TelegramEmulator, timeout: float = 30) -> None:
    """Until the bot has finished every update delivered to it (aiogram logs each one; the line
    comes after the bot's last call, so the emulator has no event to wake a waiter on)."""
    filtered = {u.update_id for u in emu.filtered_updates}
    ids = [u.update_id for u in emu.updates if u.update_id not in filtered]

    def handled() -> bool:
        log = bot.log()
        return all(f"Update id={i} is " in log for i in ids)

    async with asyncio.timeout(timeout):
        while not handled():  # noqa: ASYNC110 (a condition of the log file)
            await asyncio.sleep(0.01)


async def _description_through_outage(
    chat: MerchantChat, proxy: TcpProxy, bot, text: str
) -> ChatMessage:  # type: ignore[no-untyped-def]
    """The merchant sends the description while the server restarts. The update either waits
    out the restart (the client library retries) or is answered with the apology, and the
    merchant sends it again. Returns the review; either way the description is in it once."""
    await _idle(bot, chat.emu)
    since = chat.emu.mark()
    await proxy.refuse()
    chat.emu.send_text(chat.user, text)
    await asyncio.sleep(OUTAGE_SECONDS)
    await proxy.accept()
    answer = await chat.emu.wait_for_message(
        chat.user,
        lambda m: APOLOGY in m.content or done_button(m) is not None,
        since=since,
        timeout=40,
    )
    if APOLOGY in answer.content:
        return await describe(chat, text)
    await chat.emu.wait_until(lambda: received(answer) == 1, timeout=chat.timeout)
    button = done_button(answer)
    assert button is not None
    files_prompt = await chat.press(answer, button)
    skip = next(b.text for b in files_prompt.buttons if b.text in SKIP)
    return await chat.press(files_prompt, skip)


async def _press_send(chat: MerchantChat, review: ChatMessage) -> int:
    """Presses "Send" until the request is accepted: a press hit by the outage is answered with
    the apology (an alert), and the merchant presses again, as a person would. Returns the
    number of presses."""
    presses = 0
    for _ in range(10):
        if _said(chat.emu, chat, T["accepted"]):
            return presses  # an earlier press went through after all
        if not any(b.text == T["send"] for b in review.buttons):
            break
        since = chat.emu.mark()
        presses += 1
        query = chat.emu.press_button(chat.user, review, text=T["send"])
        answer = await chat.emu.wait_for_callback_answer(query, timeout=chat.timeout)
        if answer.text and APOLOGY in answer.text:
            await asyncio.sleep(0.5)
            continue
        await chat.emu.wait_for_message(
            chat.user, containing(T["accepted"]), since=since, timeout=chat.timeout
        )
        return presses
    await chat.emu.wait_for_message(chat.user, containing(T["accepted"]), timeout=chat.timeout)
    return presses


@pytest.mark.redis
async def test_redis_restarted_mid_wizard_keeps_the_draft_and_files_once(
    emulator: TelegramEmulator, start_bot, redis_prefix: str
) -> None:
    async with TcpProxy.for_url(REDIS_URL) as proxy:
        bot = await start_bot(
            env={"REDIS_URL": proxy.url(REDIS_URL), "REDIS_KEY_PREFIX": redis_prefix}
        )
        chat = MerchantChat(emulator, merchant("ru", user_id=5_300_001), timeout=20)
        await walk_to_description(chat, T)
        assert proxy.open_connections > 0  # the FSM is in Redis, through the proxy

        review = await _description_through_outage(chat, proxy, bot, T["description"])
        assert proxy.connections_cut > 0
        # The draft (the subject, before the restart) survived it.
        assert T["subject"] in review.content
        assert review.content.count(T["description"]) == 1
        # Once Redis is back, nothing fails any more: the pool's connections that its restart
        # cut are checked or retried on new ones, so the first press goes through.
        assert await _press_send(chat, review) == 1
        counts = await _settled(bot.env["DATABASE_URL"], tickets=1)
        assert counts["queued"] == 1
        await emulator.wait_until(lambda: _said(emulator, chat, T["registered"]) == 1)
        assert _said(emulator, chat, T["accepted"]) == 1
        assert emulator.failed_calls == []


@pytest.mark.postgres
async def test_postgres_restarted_mid_wizard_and_under_the_workers_files_and_tells_everything_once(
    emulator: TelegramEmulator, start_bot, postgres_url: str
) -> None:
    async with TcpProxy.for_url(postgres_url) as proxy:
        bot = await start_bot(env={"DATABASE_URL": proxy.url(postgres_url)})
        first = MerchantChat(emulator, merchant("ru", user_id=5_300_011), timeout=30)
        await walk_to_description(first, T)
        review = await _description_through_outage(first, proxy, bot, T["description"])
        assert T["subject"] in review.content
        assert review.content.count(T["description"]) == 1
        await _press_send(first, review)
        await _settled(postgres_url, tickets=1)

        # Three merchants press "Send" together, and the server restarts while the filing and
        # delivery workers take their requests and notices.
        chats = [
            MerchantChat(emulator, merchant("ru", user_id=5_300_021 + n), timeout=30)
            for n in range(3)
        ]
        reviews = []
        for chat in chats:
            await walk_to_description(chat, T)
            reviews.append(await describe(chat, T["description"]))
        await _idle(bot, emulator)
        for chat, review in zip(chats, reviews, strict=True):
            chat.emu.press_button(chat.user, review, text=T["send"])
        await asyncio.sleep(0.05)
        await proxy.restart(OUTAGE_SECONDS)
        assert proxy.connections_cut > 0
        for chat, review in zip(chats, reviews, strict=True):
            if not _said(emulator, chat, T["accepted"]):
                await _press_send(chat, review)

        counts = await _settled(postgres_url, tickets=4, timeout=60)
        assert counts["queued"] == 4
        notices = counts["notices"]
        assert isinstance(notices, list)
        for chat in (first, *chats):
            await emulator.wait_until(lambda c=chat: _said(emulator, c, T["registered"]) >= 1)
            assert _said(emulator, chat, T["accepted"]) == 1
            assert _said(emulator, chat, T["registered"]) == 1
            kinds = sorted(kind for chat_id, kind, _ in notices if chat_id == chat.user.id)
            assert kinds == ["accepted", "registered"]
        assert all(state is NoticeState.SENT for _, _, state in notices)
        assert emulator.failed_calls == []


async def test_bursts_of_429_and_5xx_from_telegram_every_notice_once_in_order(
    emulator: TelegramEmulator, start_bot
) -> None:
    """Requests sent while Telegram answers with 429s and 5xx: the notices (accepted, then
    registered) reach every merchant once each, in that order."""
    bot = await start_bot()
    chats = [
        MerchantChat(emulator, merchant("ru", user_id=5_300_031 + n), timeout=30) for n in range(3)
    ]
    reviews = []
    for chat in chats:
        await walk_to_description(chat, T)
        reviews.append(await describe(chat, T["description"]))
    await _idle(bot, emulator)
    emulator.inject_error("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    emulator.inject_error("sendMessage", 502, "Bad Gateway", times=2, after=1)
    emulator.inject_error("sendMessage", 500, "Internal Server Error", times=2, after=4)
    emulator.inject_error(
        "sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1, times=2, after=6
    )
    for chat, review in zip(chats, reviews, strict=True):
        await _press_send(chat, review)

    await _settled(bot.env["DATABASE_URL"], tickets=3)
    for chat in chats:
        await emulator.wait_until(lambda c=chat: _said(emulator, c, T["registered"]) == 1)
        said = [m.content for m in emulator.bot_messages(chat.user)]
        told = [
            n for n, text in enumerate(said) if T["accepted"] in text or T["registered"] in text
        ]
        assert (
            len(told) == 2 and T["accepted"] in said[told[0]] and T["registered"] in said[told[1]]
        )
    statuses = [c.status for c in emulator.failed_calls]
    assert 429 in statuses and {500, 502} <= set(statuses), statuses
