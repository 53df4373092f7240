"""The merchant in conversation, end to end (the real bot in the test's event loop, the Bot API
emulator, the builtin queue in the bot's database and the real Request Tracker): /tickets → a
ticket's card → Reply with a photo; a Telegram reply to the specialist's message; a free message
added to an open request or turned into a new one; an edit of the description after filing
added as a correction."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy import select

from bot.sandbox.telegram_emulator import AlbumItem, ChatMessage, TelegramEmulator
from services.db.engine import create_engine, create_sessionmaker
from services.db.models import Membership, Merchant, Role, Store, Ticket, TicketStatus
from services.queue.base import ConversationEntry
from services.queue.builtin import BuiltinQueue
from services.queue.console import BuiltinConsole
from services.replies import CORRECTION_HEADER
from services.working_calendar import MOSCOW
from tests.e2e.driver import MerchantChat, containing
from tests.helpers.wizard import (
    TEXTS,
    describe,
    merchant,
    send_and_get_number,
    walk_to_description,
)
from tests.integration.rt_fixture import RtServer, RtSpecialist, rt_server

__all__ = ["rt_server"]

pytestmark = pytest.mark.e2e

ENV = {"SYNC_INTERVAL_SECONDS": "0.5"}
# A 1×1 PNG: the emulator reads its size from the header.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000001e221bc330000000049454e44ae426082"
)

UI = {
    "ru": {
        "list": "Ваши обращения",
        "reply": "↩️ Ответить",
        "prompt": "✍️ Ответ на обращение",
        "offer": "не зарегистрированное обращение",
        "add": "➕ Добавить к #{number}",
        "new": "📝 Новое обращение с этим текстом",
        "caption": "Скриншот ошибки после оплаты",
        "answer": "Ошибка остаётся и сегодня, вот ещё подробности.",
        "free": "Забыл добавить: ошибка появляется только в Safari.",
        "edited": "Шаги: добавить товар в корзину, нажать «Оформить». Ошибка 502, не 500.",
        "specialist": "Уточните, пожалуйста, в каком браузере?",
    },
    "en": {
        "list": "Your requests",
        "reply": "↩️ Reply",
        "prompt": "✍️ Replying to request",
        "offer": "not a registered request",
        "add": "➕ Add to #{number}",
        "new": "📝 New request with this text",
        "caption": "Screenshot of the error after payment",
        "answer": "The error is still there today, here are more details.",
        "free": "Forgot to add: the error appears in Safari only.",
        "edited": "Steps: add a product to the cart, press Checkout. Error 502, not 500.",
        "specialist": "Which browser do you use, please?",
    },
}


async def _file(
    emulator: TelegramEmulator, language: str, user_id: int
) -> tuple[MerchantChat, str]:
    t = TEXTS[language]
    chat = MerchantChat(emulator, merchant(language, user_id), timeout=20)
    await chat.say("/start")
    await walk_to_description(chat, t)
    review = await describe(chat, t["description"])
    return chat, await send_and_get_number(chat, review, t)


async def _builtin_conversation(database_url: str, number: str) -> list[ConversationEntry]:
    engine = create_engine(database_url)
    try:
        return await BuiltinQueue(create_sessionmaker(engine)).conversation(number)
    finally:
        await engine.dispose()


async def _until(
    read: Callable[[], object], check: Callable[[object], bool], timeout: float = 20
) -> object:
    deadline = time.monotonic() + timeout
    while True:
        value = await read()  # type: ignore[misc]
        if check(value):
            return value
        assert time.monotonic() < deadline, f"never came true; last: {value!r}"
        await asyncio.sleep(0.3)


async def _open_card(chat: MerchantChat, number: str, u: dict[str, str]) -> ChatMessage:
    listing = await chat.say("/tickets", until=containing(u["list"]))
    assert f"#{number}" in listing.content
    button = next(b for b in listing.buttons if b.text.startswith(f"#{number} "))
    card = await chat.press_for_new(listing, button.text, until=containing(f"#{number}"))
    assert u["reply"] in str(card.button_rows)
    assert TEXTS[chat.user.language_code or "ru"]["description"] in card.content
    return card


async def _replying(
    emulator: TelegramEmulator, language: str, user_id: int
) -> tuple[MerchantChat, str, ChatMessage]:
    """A merchant who filed a request, opened its card from /tickets and pressed Reply: the
    chat, the request's number and the bot's prompt for the reply."""
    u = UI[language]
    chat, number = await _file(emulator, language, user_id)
    card = await _open_card(chat, number, u)
    prompt = await chat.press_for_new(card, u["reply"], until=containing(u["prompt"]))
    return chat, number, prompt


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_tickets_card_reply_with_a_photo_reaches_the_builtin_queue(
    emulator: TelegramEmulator, start_bot, sqlite_url: str, language: str
) -> None:
    u = UI[language]
    await start_bot(env=ENV)
    chat, number, prompt = await _replying(emulator, language, 5_300_001)
    assert f"#{number}" in prompt.content
    # A command mid-reply is a command; the reply waits.
    await chat.say("/tickets", until=containing(u["list"]))
    since = emulator.mark()
    emulator.send_photo(chat.user, PNG, caption=u["caption"])
    received = await emulator.wait_for_message(
        chat.user, containing("📨", f"#{number}"), since=since, timeout=20
    )
    assert received.content

    def has_reply(entries: object) -> bool:
        return any(
            u["caption"] in entry.body and entry.attachments
            for entry in entries  # type: ignore[attr-defined]
        )

    entries = await _until(lambda: _builtin_conversation(sqlite_url, number), has_reply)
    entry = next(e for e in entries if u["caption"] in e.body)  # type: ignore[attr-defined]
    assert not entry.by_support
    assert [a.content_type for a in entry.attachments] == ["image/jpeg"]
    # The confirmation once the queue has it: a notice, with a Reply button of its own.
    added = await emulator.wait_for_message(
        chat.user, lambda m: m.content.startswith("✅") and f"#{number}" in m.content, timeout=20
    )
    assert u["reply"] in str(added.button_rows)
    # The card again: the reply first (latest first), its photo sent as a document.
    since = emulator.mark()
    card = await _open_card(chat, number, u)
    assert card.content.index(u["caption"]) < card.content.index(TEXTS[language]["description"])
    document = await emulator.wait_for_message(
        chat.user, lambda m: m.file is not None, since=since, timeout=20
    )
    assert document.file is not None and document.file.content == PNG
    # Out of the reply state: the next text is a free message, not another reply.
    offer = await chat.say("спасибо" if language == "ru" else "thanks")
    assert u["offer"] in offer.content
    assert emulator.failed_calls == []


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_a_reply_with_a_document_reaches_the_builtin_queue_as_an_attachment(
    emulator: TelegramEmulator, start_bot, sqlite_url: str, language: str
) -> None:
    u = UI[language]
    await start_bot(env=ENV)
    chat, number, _prompt = await _replying(emulator, language, 5_300_005)
    log = b"2026-11-25 14:05:17 ERROR checkout: payment gateway answered 500\n" * 40
    since = emulator.mark()
    emulator.send_document(
        chat.user, "checkout.log", log, caption=u["caption"], mime_type="text/plain"
    )
    await emulator.wait_for_message(chat.user, containing("📨", f"#{number}"), since=since)

    entries = await _until(
        lambda: _builtin_conversation(sqlite_url, number),
        lambda entries: any(u["caption"] in e.body for e in entries),  # type: ignore[attr-defined]
    )
    [entry] = [e for e in entries if u["caption"] in e.body]  # type: ignore[attr-defined]
    assert not entry.by_support
    [attachment] = entry.attachments
    assert (attachment.filename, attachment.content_type) == ("checkout.log", "text/plain")
    engine = create_engine(sqlite_url)
    try:
        stored = await BuiltinQueue(create_sessionmaker(engine)).attachment(number, attachment.id)
    finally:
        await engine.dispose()
    assert stored.content == log
    assert emulator.failed_calls == []


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_a_telegram_reply_to_the_specialists_message_reaches_the_same_ticket(
    emulator: TelegramEmulator, start_bot, sqlite_url: str, language: str
) -> None:
    u = UI[language]
    await start_bot(env=ENV)
    chat, number = await _file(emulator, language, 5_300_011)
    engine = create_engine(sqlite_url)
    try:
        console = BuiltinConsole(BuiltinQueue(create_sessionmaker(engine)), "root")
        await console.reply(number, u["specialist"])
    finally:
        await engine.dispose()
    notice = await emulator.wait_for_message(
        chat.user, containing("💬", u["specialist"]), timeout=20
    )
    assert u["reply"] in str(notice.button_rows)

    since = emulator.mark()
    emulator.send_text(chat.user, u["answer"], reply_to=notice)
    await emulator.wait_for_message(chat.user, containing("📨", f"#{number}"), since=since)
    entries = await _until(
        lambda: _builtin_conversation(sqlite_url, number),
        lambda entries: any(u["answer"] in e.body for e in entries),  # type: ignore[attr-defined]
    )
    assert [e.by_support for e in entries if u["answer"] in e.body] == [False]  # type: ignore[attr-defined]
    assert emulator.failed_calls == []


LIST: dict[str, dict[str, Any]] = {
    "ru": {
        "registered": "зарегистрировано, ждёт специалиста",
        "open": "в работе",
        "updated": "обновлено {when}",
        "notice_reaction": re.compile(r"⏱ Первая реакция: (.+?)\."),
        "first_reaction": "⏱ первая реакция: {when}",
        "moscow": "Время московское.",
    },
    "en": {
        "registered": "registered, waiting for a specialist",
        "open": "in progress",
        "updated": "updated {when}",
        "notice_reaction": re.compile(r"⏱ First reaction: (.+?)\."),
        "first_reaction": "⏱ first reaction: {when}",
        "moscow": "Times are Moscow time.",
    },
}


async def _ticket_row(database_url: str, number: str) -> Ticket:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            return (
                await session.scalars(select(Ticket).where(Ticket.queue_ticket_id == number))
            ).one()
    finally:
        await engine.dispose()


def _list_line(listing: ChatMessage, number: str) -> str:
    """The details line under the ticket's line in /tickets."""
    lines = listing.content.splitlines()
    at = next(i for i, line in enumerate(lines) if line.startswith(f"#{number} "))
    return lines[at + 1]


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_tickets_list_shows_status_last_update_and_deadline_and_a_status_notice_has_reply(
    emulator: TelegramEmulator, start_bot, sqlite_url: str, language: str
) -> None:
    t, u, words = TEXTS[language], UI[language], LIST[language]
    await start_bot(env=ENV)
    chat, number = await _file(emulator, language, 5_300_017)
    registered = next(m for m in emulator.bot_messages(chat.user) if t["registered"] in m.content)
    promised = words["notice_reaction"].search(registered.content)
    assert promised, registered.content

    listing = await chat.say("/tickets", until=containing(u["list"]))
    assert words["moscow"] in listing.content
    row = await _ticket_row(sqlite_url, number)
    details = _list_line(listing, number)
    # The status, the last update (Moscow time) and the deadline the Registered notice named.
    assert details == " · ".join(
        (
            words["registered"],
            words["updated"].format(
                when=row.updated_at.astimezone(MOSCOW).strftime("%d.%m.%Y %H:%M")
            ),
            words["first_reaction"].format(when=promised.group(1)),
        )
    ), details

    # A specialist takes it: the notice of the new status carries a Reply button, and the list
    # shows the new status and its time; the first-reaction deadline is met, and the regulation
    # sets no resolution deadline for a platform error (test_rules_e2e.py shows a refund's).
    engine = create_engine(sqlite_url)
    try:
        await BuiltinConsole(BuiltinQueue(create_sessionmaker(engine)), "root").set_status(
            number, TicketStatus.OPEN
        )
    finally:
        await engine.dispose()
    changed = await emulator.wait_for_message(chat.user, containing("🛠", f"#{number}"), timeout=20)
    assert u["reply"] in str(changed.button_rows)
    listing = await chat.say("/tickets", until=containing(u["list"], words["open"]))
    row = await _ticket_row(sqlite_url, number)
    assert row.status is TicketStatus.OPEN and row.resolution_due is None
    assert _list_line(listing, number) == " · ".join((words["open"], _updated(words, row)))
    assert emulator.failed_calls == []


def _updated(words: dict[str, Any], row: Ticket) -> str:
    return words["updated"].format(
        when=row.updated_at.astimezone(MOSCOW).strftime("%d.%m.%Y %H:%M")
    )


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_a_telegram_reply_to_the_received_confirmation_goes_to_the_same_ticket(
    emulator: TelegramEmulator, start_bot, sqlite_url: str, language: str
) -> None:
    u = UI[language]
    await start_bot(env=ENV)
    chat, number, _prompt = await _replying(emulator, language, 5_300_015)
    received = await chat.say(u["answer"], until=containing("📨", f"#{number}"))

    # A Telegram reply to the bot's "📨 received #N": about the same ticket, not a free message.
    since = emulator.mark()
    emulator.send_text(chat.user, u["free"], reply_to=received)
    answered = lambda m: "📨" in m.content or u["offer"] in m.content  # noqa: E731
    again = await emulator.wait_for_message(chat.user, answered, since=since, timeout=20)
    assert "📨" in again.content and f"#{number}" in again.content, again.content
    assert u["offer"] not in again.content
    entries = await _until(
        lambda: _builtin_conversation(sqlite_url, number),
        lambda entries: any(u["free"] in e.body for e in entries),  # type: ignore[attr-defined]
    )
    assert [e.by_support for e in entries if u["free"] in e.body] == [False]  # type: ignore[attr-defined]
    # That answer is about the ticket too: a reply to it goes there as well.
    since = emulator.mark()
    emulator.send_text(chat.user, u["caption"], reply_to=again)
    third = await emulator.wait_for_message(chat.user, answered, since=since, timeout=20)
    assert "📨" in third.content and f"#{number}" in third.content, third.content
    assert emulator.failed_calls == []


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_a_free_message_is_offered_to_an_open_ticket_and_added_in_one_tap(
    emulator: TelegramEmulator, start_bot, sqlite_url: str, language: str
) -> None:
    u = UI[language]
    await start_bot(env=ENV)
    chat, number = await _file(emulator, language, 5_300_021)
    offer = await chat.say(u["free"], until=containing(u["offer"]))
    add = u["add"].format(number=number)
    assert any(b.text.startswith(add) for b in offer.buttons), offer.button_rows
    # Callback data carries ids only, never the text.
    assert all(u["free"][:10] not in (b.callback_data or "") for b in offer.buttons)
    button = next(b.text for b in offer.buttons if b.text.startswith(add))
    await chat.press_for_new(offer, button, until=containing("📨", f"#{number}"))
    await _until(
        lambda: _builtin_conversation(sqlite_url, number),
        lambda entries: any(u["free"] in e.body for e in entries),  # type: ignore[attr-defined]
    )
    # The offer's buttons are gone: a second tap cannot add it twice.
    assert emulator.message(chat.user, offer.message_id).buttons == []
    assert emulator.failed_calls == []


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_a_free_message_becomes_a_new_request_with_its_text(
    emulator: TelegramEmulator, start_bot, sqlite_url: str, language: str
) -> None:
    t, u = TEXTS[language], UI[language]
    await start_bot(env=ENV)
    chat = MerchantChat(emulator, merchant(language, 5_300_031), timeout=20)
    await chat.say("/start")
    offer = await chat.say(u["free"], until=containing(u["offer"]))
    types = await chat.press_for_new(offer, u["new"], until=lambda m: bool(m.buttons))
    categories = await chat.press(types, t["technical"])
    await chat.press(categories, t["system_error"])
    review = await chat.say(t["subject"], until=containing(t["review"]))
    assert u["free"] in review.content
    number = await send_and_get_number(chat, review, t)
    entries = await _builtin_conversation(sqlite_url, number)
    assert u["free"] in entries[0].body
    assert emulator.failed_calls == []


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_an_edit_of_the_description_after_filing_is_added_as_a_correction(
    emulator: TelegramEmulator, start_bot, sqlite_url: str, language: str
) -> None:
    t, u = TEXTS[language], UI[language]
    await start_bot(env=ENV)
    chat, number = await _file(emulator, language, 5_300_041)
    description = next(
        m for m in emulator.history(chat.user) if not m.from_bot and m.text == t["description"]
    )
    since = emulator.mark()
    emulator.edit_text(chat.user, description, u["edited"])
    await emulator.wait_for_message(chat.user, containing("📨", f"#{number}"), since=since)
    entries = await _until(
        lambda: _builtin_conversation(sqlite_url, number),
        lambda entries: any(u["edited"] in e.body for e in entries),  # type: ignore[attr-defined]
    )
    correction = next(e for e in entries if u["edited"] in e.body)  # type: ignore[attr-defined]
    assert CORRECTION_HEADER in correction.body
    # What the specialist read first stays as it was.
    assert entries[0].body.strip().endswith(t["description"])  # type: ignore[index]
    assert emulator.failed_calls == []


@pytest.fixture
async def specialist(rt_server: RtServer) -> AsyncIterator[RtSpecialist]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield RtSpecialist(session, rt_server)


@pytest.mark.rt
@pytest.mark.parametrize("language", ["ru", "en"])
async def test_tickets_card_reply_with_a_photo_reaches_rt_as_correspondence(
    emulator: TelegramEmulator,
    start_bot,
    rt_server: RtServer,
    specialist: RtSpecialist,
    language: str,
) -> None:
    u = UI[language]
    env = {**ENV, "QUEUE": "rt", "RT_URL": rt_server.base_url, "RT_TOKEN": rt_server.token}
    await start_bot(env=env)
    chat, number, _prompt = await _replying(emulator, language, 5_300_051 + (language == "en"))
    since = emulator.mark()
    emulator.send_photo(chat.user, PNG, caption=u["caption"])
    await emulator.wait_for_message(chat.user, containing("📨", f"#{number}"), since=since)

    async def correspondence() -> list[dict[str, object]]:
        history = await specialist.call(
            "GET", f"ticket/{number}/history?fields=Type,Creator&per_page=100"
        )
        return [item for item in history["items"] if item["Type"] == "Correspond"]

    replies = await _until(correspondence, lambda items: bool(items), timeout=30)
    transaction = replies[-1]["id"]  # type: ignore[index]
    attachments = await specialist.call(
        "GET",
        f"transaction/{transaction}/attachments?fields=Filename,ContentType,Content&per_page=50",
    )
    files = [a for a in attachments["items"] if a.get("Filename")]
    assert [a["ContentType"] for a in files] == ["image/jpeg"], attachments
    texts = " ".join(str(a.get("Content") or "") for a in attachments["items"])
    assert texts  # the caption travels as the message's text (base64 in RT's REST2)
    assert emulator.failed_calls == []


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_close_from_the_card_then_reopen(
    emulator: TelegramEmulator, start_bot, sqlite_url: str, language: str
) -> None:
    u = UI[language]
    close, reopen = {"ru": ("✅ Закрыть", "🔄 Открыть снова"), "en": ("✅ Close", "🔄 Reopen")}[
        language
    ]
    await start_bot(env=ENV)
    chat, number = await _file(emulator, language, 5_300_061)
    card = await _open_card(chat, number, u)
    await chat.press_for_new(card, close, until=containing("📨", f"#{number}"))
    engine = create_engine(sqlite_url)
    queue = BuiltinQueue(create_sessionmaker(engine))
    try:
        await _until(
            lambda: queue.get_ticket(number),
            lambda ticket: ticket.status is TicketStatus.RESOLVED,  # type: ignore[attr-defined]
        )
        # The merchant's own close is confirmed once, and the card now offers Reopen only.
        await emulator.wait_for_message(
            chat.user, lambda m: m.content.startswith("✅") and f"#{number}" in m.content
        )
        listing = await chat.say("/tickets", until=containing(u["list"]))
        button = next(b for b in listing.buttons if b.text.startswith(f"#{number} "))
        card = await chat.press_for_new(listing, button.text, until=containing(f"#{number}"))
        assert card.button_rows[0] == [reopen]
        await chat.press_for_new(card, reopen, until=containing("📨", f"#{number}"))
        await _until(
            lambda: queue.get_ticket(number),
            lambda ticket: ticket.status is TicketStatus.OPEN,  # type: ignore[attr-defined]
        )
    finally:
        await engine.dispose()
    assert emulator.failed_calls == []


async def test_a_long_conversation_fits_the_card_with_an_excerpt_and_earlier_messages(
    emulator: TelegramEmulator, start_bot, sqlite_url: str
) -> None:
    u = UI["en"]
    await start_bot(env=ENV)
    chat, number = await _file(emulator, "en", 5_300_071)
    long_reply = "The checkout log, line by line. " * 400  # ~12,800 characters
    engine = create_engine(sqlite_url)
    try:
        await BuiltinConsole(BuiltinQueue(create_sessionmaker(engine)), "root").reply(
            number, long_reply
        )
    finally:
        await engine.dispose()
    await emulator.wait_for_message(chat.user, containing("💬", f"#{number}"), timeout=20)
    listing = await chat.say("/tickets", until=containing(u["list"]))
    button = next(b for b in listing.buttons if b.text.startswith(f"#{number} "))
    card = await chat.press_for_new(listing, button.text, until=containing(f"#{number}"))
    assert len(card.content) <= 4096
    assert "…" in card.content and TEXTS["en"]["description"] not in card.content
    earlier = await chat.press_for_new(
        card, "Earlier messages »", until=containing("Earlier messages:")
    )
    assert TEXTS["en"]["description"] in earlier.content
    assert emulator.failed_calls == []


async def test_tickets_are_paginated_newest_first_and_filtered_by_store(
    emulator: TelegramEmulator, start_bot, sqlite_url: str
) -> None:
    await start_bot(env=ENV)
    chat = MerchantChat(emulator, merchant("en", 5_300_081), timeout=20)
    await chat.say("/start")
    engine = create_engine(sqlite_url)
    try:
        async with create_sessionmaker(engine)() as session:
            merchant_id = await session.scalar(
                select(Merchant.id).where(Merchant.telegram_id == chat.user.id)
            )
            assert merchant_id is not None
            shops = []
            for domain in ("alpha.example", "beta.example"):
                store = Store(domain=domain, name=domain.split(".")[0].title(), plan="basic")
                session.add(store)
                await session.flush()
                session.add(Membership(merchant_id=merchant_id, store_id=store.id, role=Role.OWNER))
                shops.append(store.id)
            start = datetime(2026, 11, 20, 9, tzinfo=UTC)
            for n in range(7):
                session.add(
                    Ticket(
                        reference=f"page-test-{n}",
                        merchant_id=merchant_id,
                        store_id=shops[n % 2],
                        queue_name="builtin",
                        queue_ticket_id=str(100 + n),
                        status=TicketStatus.OPEN,
                        request_type="technical",
                        category="system_error",
                        subject=f"Request number {n}",
                        body="…",
                        created_at=start + timedelta(hours=n),
                        updated_at=start + timedelta(hours=n),
                    )
                )
            await session.commit()
    finally:
        await engine.dispose()
    listing = await chat.say("/tickets", until=containing("Your requests"))
    assert "Page 1 of 2" in listing.content
    numbers = [b.text.split(" ")[0] for b in listing.buttons if b.text.startswith("#")]
    assert numbers == ["#106", "#105", "#104", "#103", "#102"]
    listing = await chat.press(listing, "Next »")
    numbers = [b.text.split(" ")[0] for b in listing.buttons if b.text.startswith("#")]
    assert numbers == ["#101", "#100"] and "Page 2 of 2" in listing.content
    listing = await chat.press(listing, "Beta (3)")
    numbers = [b.text.split(" ")[0] for b in listing.buttons if b.text.startswith("#")]
    assert numbers == ["#105", "#103", "#101"]
    assert "• Beta (3)" in str(listing.button_rows)
    assert emulator.failed_calls == []


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_an_album_is_one_reply_with_its_caption_and_every_photo(
    emulator: TelegramEmulator, start_bot, sqlite_url: str, language: str
) -> None:
    u = UI[language]
    await start_bot(env=ENV)
    chat, number, _prompt = await _replying(emulator, language, 5_300_091)
    since = emulator.mark()
    emulator.send_album(
        chat.user,
        [
            AlbumItem("photo", PNG, caption=u["caption"]),
            AlbumItem("photo", PNG),
            AlbumItem("photo", PNG),
        ],
    )
    await emulator.wait_for_message(chat.user, containing("📨", f"#{number}"), since=since)
    entries = await _until(
        lambda: _builtin_conversation(sqlite_url, number),
        lambda entries: any(u["caption"] in e.body for e in entries),  # type: ignore[attr-defined]
    )
    replies = [e for e in entries if not e.by_support and u["caption"] in e.body]  # type: ignore[attr-defined]
    assert len(replies) == 1 and len(replies[0].attachments) == 3
    await asyncio.sleep(1.5)
    answers = [m for m in emulator.bot_messages(chat.user) if m.seq > since and "📨" in m.content]
    assert len(answers) == 1
    assert emulator.failed_calls == []


async def test_reply_mid_wizard_then_the_wizard_goes_on(
    emulator: TelegramEmulator, start_bot, sqlite_url: str
) -> None:
    t, u = TEXTS["en"], UI["en"]
    await start_bot(env=ENV)
    chat, number = await _file(emulator, "en", 5_300_101)
    registered = next(m for m in emulator.bot_messages(chat.user) if t["registered"] in m.content)
    types = await chat.say("/new", until=lambda m: bool(m.buttons))
    await chat.press_for_new(registered, u["reply"], until=containing(u["prompt"]))
    await chat.say(u["answer"], until=containing("📨", f"#{number}"))
    await _until(
        lambda: _builtin_conversation(sqlite_url, number),
        lambda entries: any(u["answer"] in e.body for e in entries),  # type: ignore[attr-defined]
    )
    # The draft waited: its buttons still work, at the step it was.
    categories = await chat.press(types, t["technical"])
    assert t["system_error"] in str(categories.button_rows)
    assert emulator.failed_calls == []


async def test_a_free_album_is_offered_once_and_added_whole(
    emulator: TelegramEmulator, start_bot, sqlite_url: str
) -> None:
    u = UI["en"]
    await start_bot(env=ENV)
    chat, number = await _file(emulator, "en", 5_300_111)
    since = emulator.mark()
    emulator.send_album(
        chat.user, [AlbumItem("photo", PNG, caption=u["free"]), AlbumItem("photo", PNG)]
    )
    offer = await emulator.wait_for_message(chat.user, containing(u["offer"]), since=since)
    await asyncio.sleep(1.5)
    assert len([m for m in emulator.bot_messages(chat.user) if m.seq > since]) == 1
    button = next(b.text for b in offer.buttons if b.text.startswith(f"➕ Add to #{number}"))
    await chat.press_for_new(offer, button, until=containing("📨", f"#{number}"))
    entries = await _until(
        lambda: _builtin_conversation(sqlite_url, number),
        lambda entries: any(u["free"] in e.body for e in entries),  # type: ignore[attr-defined]
    )
    added = [e for e in entries if u["free"] in e.body]  # type: ignore[attr-defined]
    assert len(added) == 1 and len(added[0].attachments) == 2
