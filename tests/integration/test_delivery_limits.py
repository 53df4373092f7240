"""The delivery worker through Telegram's limits: 1,000 notices to 1,000 chats from the embedded
set-up (SQLite, no Redis: the limiter keeps its windows in the database), against an emulator
that enforces Telegram's limits, arrive without a single 429."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime

import pytest
from aiogram.utils.i18n import I18n
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings, locales_dir
from bot.delivery import NoticeDelivery
from bot.factories import create_bot, create_limiter
from bot.sandbox.telegram_emulator import RateLimits, SimUser, TelegramEmulator
from services import notices
from services.db.engine import create_engine, create_sessionmaker, migrate
from services.db.models import Notice, NoticeState
from tests.helpers.timing import most_in_any_window

# A crowd against the Bot API emulator (~25 s at the rates Telegram allows): the full tier's,
# like tests/e2e/test_crowd_e2e.py, not the edit-and-test loop's (`scripts/test --fast`).
pytestmark = pytest.mark.e2e

TOKEN = "7000003:limits-delivery-token"
AT = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


async def test_a_thousand_notices_to_a_thousand_chats_meet_no_429(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    await migrate(engine)
    sessionmaker: async_sessionmaker[AsyncSession] = create_sessionmaker(engine)
    users = [SimUser(id=8_000_001 + n, first_name=f"M{n}", language_code="ru") for n in range(1000)]
    chatty = users[:10]  # two notices each, written first: the worker is quickest at the start
    async with sessionmaker() as session:
        for user in chatty + users:
            first = await notices.enqueue(
                session,
                key=f"accepted:{user.id}",
                chat_id=user.id,
                locale="ru",
                body=notices.Accepted(subject="Не проходит оплата"),
            )
            if user in chatty and first:
                await notices.enqueue(
                    session,
                    key=f"delayed:{user.id}",
                    chat_id=user.id,
                    locale="ru",
                    body=notices.Accepted(subject="Вторая заявка"),
                )
        await session.commit()

    async with TelegramEmulator(token=TOKEN) as emulator:
        for user in users:
            emulator.add_user(user)
        # Telegram's 30/s would make this a 35 s test: bot and emulator both take 100/s here
        # (the worker alone goes faster); one message a second per chat stays Telegram's. The
        # bot and the emulator share one event loop, so the margin is wider than the default.
        emulator.enforce_limits(RateLimits(per_bot=(100, 1.0)))
        settings = Settings(
            bot_token=TOKEN,  # type: ignore[arg-type]
            telegram_api_url=emulator.base_url,  # type: ignore[arg-type]
            database_url=sqlite_url,
            telegram_global_rate="100 per second",
            telegram_rate_margin_seconds=0.5,
        )
        limiter = create_limiter(settings, sessionmaker)
        bot = create_bot(settings, limiter)
        i18n = I18n(path=locales_dir(), default_locale="ru", domain="messages")
        delivery = NoticeDelivery(sessionmaker, bot, i18n, idle_interval=0.05)
        started = time.monotonic()
        task = asyncio.create_task(delivery.run())
        try:
            async with asyncio.timeout(180):
                while await _pending(sessionmaker):  # noqa: ASYNC110 (a database condition)
                    await asyncio.sleep(0.1)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            elapsed = time.monotonic() - started
            await bot.session.close()
            await limiter.close()
            await engine.dispose()

        assert [(c.params["chat_id"], c.description) for c in emulator.rate_limited] == []
        assert all(len(emulator.bot_messages(user)) == 1 for user in users[10:])
        for user in chatty:
            first, second = emulator.bot_messages(user)
            assert second.at - first.at >= 1.0
        sent = sorted(m.at for user in users for m in emulator.bot_messages(user))
        assert len(sent) == 1010
        assert most_in_any_window(sent, 1.0) <= 100
        print(f"1,010 notices delivered in {elapsed:.1f} s")


async def _pending(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    async with sessionmaker() as session:
        count = await session.scalar(
            select(func.count()).select_from(Notice).where(Notice.state == NoticeState.PENDING)
        )
    return int(count or 0)
