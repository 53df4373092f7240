"""The delivery worker against the Bot API emulator, through aiogram's real HTTP client: every
notice arrives, once, in its chat's order, part by part, whatever Telegram answers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiogram import Bot
from aiogram.utils.i18n import I18n
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import locales_dir
from bot.delivery import MAX_REFUSALS, NoticeDelivery
from bot.sandbox.telegram_emulator import SimUser, TelegramEmulator
from services import notices
from services.db.models import Notice, NoticeState, TelegramChat
from services.outbox import RetryPolicy

TOKEN = "7000002:delivery-test-token"
AT = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
PDF = b"%PDF-1.4 frontdesk test file"


@pytest.fixture
async def emulator() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator(token=TOKEN, bot_username="frontdesk_delivery_bot") as emu:
        yield emu


@pytest.fixture
async def bot(emulator: TelegramEmulator) -> AsyncIterator[Bot]:
    from aiogram.client.default import DefaultBotProperties
    from aiogram.enums import ParseMode

    bot = emulator.create_bot(TOKEN, default=DefaultBotProperties(parse_mode=ParseMode.HTML))
    yield bot
    await bot.session.close()


@pytest.fixture(scope="module")
def i18n() -> I18n:
    return I18n(path=locales_dir(), default_locale="ru", domain="messages")


def _delivery(
    sessionmaker: async_sessionmaker[AsyncSession], bot: Bot, i18n: I18n, **kwargs: object
) -> NoticeDelivery:
    return NoticeDelivery(
        sessionmaker,
        bot,
        i18n,
        retry=RetryPolicy(base=timedelta(milliseconds=50), cap=timedelta(milliseconds=200)),
        idle_interval=0.05,
        **kwargs,  # type: ignore[arg-type]
    )


def _users(emulator: TelegramEmulator, count: int, first: int = 6_000_001) -> list[SimUser]:
    users = [SimUser(id=first + n, first_name=f"M{n}", language_code="ru") for n in range(count)]
    for user in users:
        emulator.add_user(user)
    return users


def _reply(number: str, lines: int = 3, text: str = "Строка ответа специалиста.") -> notices.Reply:
    """A reply long enough to take `lines` // 260 + 1 messages or so."""
    return notices.Reply(
        number=number,
        subject="Оплата",
        author="ivan",
        body="\n".join(f"{text} {n}" for n in range(lines)),
        sent_at=AT,
    )


async def _enqueue(
    sessionmaker: async_sessionmaker[AsyncSession],
    chat_id: int,
    key: str,
    body: notices.Body,
    files: tuple[notices.File, ...] = (),
) -> None:
    async with sessionmaker() as session:
        assert await notices.enqueue(
            session, key=key, chat_id=chat_id, locale="ru", body=body, files=files
        )
        await session.commit()


async def _pending(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        rows = await session.scalars(select(Notice.id).where(Notice.state == NoticeState.PENDING))
        return len(list(rows))


async def _drain(delivery: NoticeDelivery, sessionmaker, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    """Runs the worker until no notice is pending (held chats aside: none here)."""
    task = asyncio.create_task(delivery.run())
    try:
        async with asyncio.timeout(timeout):
            while await _pending(sessionmaker):  # noqa: ASYNC110 (a database condition)
                await asyncio.sleep(0.05)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


def _parts(i18n: I18n, body: notices.Reply) -> list[str]:
    """The messages a reply takes, as the worker renders them."""
    from handlers import texts

    with i18n.context(), i18n.use_locale("ru"):
        return texts.queue_reply(body)


def _texts(emulator: TelegramEmulator, user: SimUser) -> list[str]:
    return [m.content for m in emulator.bot_messages(user)]


async def test_a_chats_notices_arrive_once_in_the_order_they_were_written(
    sessionmaker: async_sessionmaker[AsyncSession], bot: Bot, i18n: I18n, emulator: TelegramEmulator
) -> None:
    anna, boris = _users(emulator, 2)
    registered = notices.Registered(
        number="147",
        subject="Оплата",
        request_type="technical",
        category="system_error",
        plan="site",
        registered_at=AT,
        first_reaction_due=AT + timedelta(hours=24),
    )
    await _enqueue(sessionmaker, anna.id, "accepted:1", notices.Accepted(subject="Оплата"))
    await _enqueue(sessionmaker, boris.id, "delayed:2", notices.Delayed(subject="Доставка"))
    await _enqueue(sessionmaker, anna.id, "registered:1", registered)
    # The same key again is the same notice: never written, nor sent, twice.
    async with sessionmaker() as session:
        again = await notices.enqueue(
            session, key="registered:1", chat_id=anna.id, locale="ru", body=registered
        )
        await session.commit()
    assert again is False

    await _drain(_delivery(sessionmaker, bot, i18n), sessionmaker)

    said = _texts(emulator, anna)
    assert len(said) == 2
    assert said[0].startswith("📨 Обращение принято")
    assert "#147" in said[1] and "Первая реакция" in said[1]
    [told] = _texts(emulator, boris)
    assert "Доставка" in told


async def test_bursts_of_429_and_5xx_every_notice_arrives_once_with_its_parts_in_order(
    sessionmaker: async_sessionmaker[AsyncSession], bot: Bot, i18n: I18n, emulator: TelegramEmulator
) -> None:
    users = _users(emulator, 6)
    for n, user in enumerate(users):
        await _enqueue(
            sessionmaker,
            user.id,
            f"event:builtin:{n}:1",
            _reply(str(n), lines=600),  # three messages each
            files=(
                notices.File(filename="отчёт.pdf", content_type="application/pdf", content=PDF),
            ),
        )
        await _enqueue(sessionmaker, user.id, f"event:builtin:{n}:2", _reply(str(n), lines=1))
    emulator.inject_error("sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1)
    emulator.inject_error("sendMessage", 502, "Bad Gateway", times=3, after=4)
    emulator.inject_error("sendDocument", 500, "Internal Server Error", times=2)
    emulator.inject_error(
        "sendMessage", 429, "Too Many Requests: retry after 1", retry_after=1, after=9
    )

    await _drain(_delivery(sessionmaker, bot, i18n), sessionmaker)

    for n, user in enumerate(users):
        long_reply = _parts(i18n, _reply(str(n), lines=600))
        assert len(long_reply) >= 3
        history = emulator.bot_messages(user)
        # Every part, the file, then the short reply: in order, none missing, none twice.
        assert len(history) == len(long_reply) + 2
        sent = [
            c.params["text"]
            for c in emulator.calls_to("sendMessage")
            if c.ok and int(c.params["chat_id"]) == user.id
        ]
        assert [t for t in sent if t in long_reply] == long_reply
        lines = [line for m in history[: len(long_reply)] for line in m.content.splitlines()]
        numbers = [int(line.rsplit(" ", 1)[1]) for line in lines if line.startswith("Строка")]
        assert numbers == list(range(600))
        document = history[len(long_reply)].file
        assert document is not None and (document.filename, document.content) == ("отчёт.pdf", PDF)
        assert history[-1].content.endswith("Строка ответа специалиста. 0")
    assert [c.status for c in emulator.failed_calls].count(429) == 2


async def test_a_reply_failing_at_part_3_resumes_at_part_3(
    sessionmaker: async_sessionmaker[AsyncSession], bot: Bot, i18n: I18n, emulator: TelegramEmulator
) -> None:
    [user] = _users(emulator, 1)
    await _enqueue(sessionmaker, user.id, "event:builtin:9:1", _reply("9", lines=1200))
    delivery = _delivery(sessionmaker, bot, i18n)
    emulator.inject_error("sendMessage", 500, "Internal Server Error", after=2)

    assert await delivery.run_once() == 1
    async with sessionmaker() as session:
        [notice] = await session.scalars(select(Notice))
        assert (notice.state, notice.parts_sent, notice.attempts) == (NoticeState.PENDING, 2, 1)
    assert len(emulator.bot_messages(user)) == 2

    await _drain(delivery, sessionmaker)
    parts = _parts(i18n, _reply("9", lines=1200))
    assert len(parts) > 3
    sent = [c.params["text"] for c in emulator.calls_to("sendMessage") if c.ok]
    assert sent == parts  # parts 1, 2, then 3 (not 1 again), 4, …: each once, in order
    assert len(_texts(emulator, user)) == len(parts)


async def test_a_blocked_chat_waits_until_the_person_writes_again(
    sessionmaker: async_sessionmaker[AsyncSession], bot: Bot, i18n: I18n, emulator: TelegramEmulator
) -> None:
    anna, boris = _users(emulator, 2)
    emulator.block_bot(anna)
    await _enqueue(sessionmaker, anna.id, "a:1", notices.Delayed(subject="Первое"))
    await _enqueue(sessionmaker, anna.id, "a:2", notices.Delayed(subject="Второе"))
    await _enqueue(sessionmaker, boris.id, "b:1", notices.Delayed(subject="Борису"))
    delivery = _delivery(sessionmaker, bot, i18n)

    await delivery.run_once()
    for _ in range(3):  # no retry storm into a chat that refuses the bot
        await delivery.run_once()
    assert len([c for c in emulator.calls_to("sendMessage") if not c.ok]) == 1
    async with sessionmaker() as session:
        chat = await session.get(TelegramChat, anna.id)
        assert chat is not None and "blocked" in (chat.reason or "")
    assert len(_texts(emulator, boris)) == 1 and _texts(emulator, anna) == []
    assert await _pending(sessionmaker) == 2  # nothing dropped

    emulator.unblock_bot(anna)
    async with sessionmaker() as session:  # what the bot does when anna writes again
        assert await notices.mark_reachable(session, anna.id)
    await _drain(delivery, sessionmaker)
    said = _texts(emulator, anna)
    assert ["Первое" in said[0], "Второе" in said[1]] == [True, True]


async def test_a_message_telegram_will_never_take_is_given_up_and_logged(
    sessionmaker: async_sessionmaker[AsyncSession],
    bot: Bot,
    i18n: I18n,
    emulator: TelegramEmulator,
    caplog: pytest.LogCaptureFixture,
) -> None:
    anna, boris = _users(emulator, 2)
    await _enqueue(sessionmaker, anna.id, "a:1", notices.Delayed(subject="Первое"))
    emulator.inject_error(
        "sendMessage", 400, "Bad Request: can't parse entities", times=MAX_REFUSALS
    )
    delivery = _delivery(sessionmaker, bot, i18n)
    with caplog.at_level(logging.ERROR, logger="bot.delivery"):
        for _ in range(MAX_REFUSALS):
            await delivery.run_once()
            await asyncio.sleep(0.25)  # past the backoff
    async with sessionmaker() as session:
        [notice] = await session.scalars(select(Notice))
        assert notice.state is NoticeState.FAILED and notice.attempts == MAX_REFUSALS
    assert any("given up" in r.getMessage() for r in caplog.records)
    # The chat is not blocked by a failed notice: the next one goes out.
    await _enqueue(sessionmaker, anna.id, "a:2", notices.Delayed(subject="Второе"))
    await _drain(delivery, sessionmaker)
    assert ["Второе" in t for t in _texts(emulator, anna)] == [True]
    assert boris.id not in {c.params.get("chat_id") for c in emulator.calls_to("sendMessage")}


async def test_two_workers_deliver_every_notice_once(
    sessionmaker: async_sessionmaker[AsyncSession], bot: Bot, i18n: I18n, emulator: TelegramEmulator
) -> None:
    users = _users(emulator, 40)
    for user in users:
        for n in range(3):
            await _enqueue(
                sessionmaker, user.id, f"k:{user.id}:{n}", notices.Delayed(subject=f"Тема {n}")
            )
    first, second = _delivery(sessionmaker, bot, i18n), _delivery(sessionmaker, bot, i18n)
    tasks = [asyncio.create_task(first.run()), asyncio.create_task(second.run())]
    try:
        async with asyncio.timeout(60):
            while await _pending(sessionmaker):  # noqa: ASYNC110 (a database condition)
                await asyncio.sleep(0.05)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
    for user in users:
        said = _texts(emulator, user)
        assert [f"Тема {n}" in text for n, text in enumerate(said)] == [True] * 3, said
