"""An update's session holds no connection while the bot waits for Telegram (bot/transactions.py),
and the SQL FSM works in that same session: one connection per update at most, on both
databases."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any

import pytest
from aiogram.fsm.storage.base import StorageKey
from aiogram.methods import SendMessage
from sqlalchemy import event, func, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.fsm_storage import SQLStorage
from bot.transactions import ShortTransactionsMiddleware, session_for_update, update_session
from handlers.new_ticket.states import NewTicket
from services import merchants
from services.db.models import Merchant

KEY = StorageKey(bot_id=42, chat_id=1001, user_id=1001)


class Telegram:
    """Stands for the Bot API behind the request middleware: records, at each call, how many
    connections the pool had lent out."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.checked_out_at_calls: list[int] = []

    async def call(self, session: AsyncSession | None = None) -> None:
        async def make_request(_bot: Any, _method: Any) -> Any:
            self.checked_out_at_calls.append(self.engine.pool.checkedout())  # type: ignore[attr-defined]
            return True

        method = SendMessage(chat_id=1001, text="Your request is accepted")
        await ShortTransactionsMiddleware()(make_request, None, method)  # type: ignore[arg-type]


@pytest.fixture
def most_connections(engine: AsyncEngine) -> Iterator[list[int]]:
    """[the most connections the pool ever lent out at once]"""
    pool = engine.sync_engine.pool
    most = [0]

    def on_checkout(*_: object) -> None:
        most[0] = max(most[0], pool.checkedout())  # type: ignore[attr-defined]

    event.listen(pool, "checkout", on_checkout)
    yield most
    event.remove(pool, "checkout", on_checkout)


async def test_an_update_that_read_holds_no_connection_while_telegram_answers(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    telegram = Telegram(engine)
    async with session_for_update(sessionmaker) as session:
        profile = await merchants.get_or_register(
            session, telegram_id=1001, full_name="Анна", username=None
        )
        merchant = await session.get(Merchant, profile.id)
        assert merchant is not None and engine.pool.checkedout() == 1  # type: ignore[attr-defined]
        await telegram.call()
        # The read transaction ended by a COMMIT: what it loaded is still there to use.
        assert not session.in_transaction()
        assert merchant.full_name == "Анна"
        # And the session goes on reading after the call, on a connection taken anew.
        assert await session.scalar(select(func.count(Merchant.id))) == 1
        await telegram.call()
    assert telegram.checked_out_at_calls == [0, 0]


@pytest.mark.parametrize("write", ["unflushed", "flushed", "statement"])
async def test_writes_left_uncommitted_at_a_telegram_call_are_reported_and_left_alone(
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
    write: str,
) -> None:
    telegram = Telegram(engine)
    async with session_for_update(sessionmaker) as session:
        await session.scalar(select(func.count(Merchant.id)))
        if write == "statement":  # an INSERT given to session.execute: no flush sees it
            await session.execute(insert(Merchant).values(telegram_id=1002, full_name="Борис"))
        else:
            session.add(Merchant(telegram_id=1002, full_name="Борис"))
            if write == "flushed":
                await session.flush()
        with caplog.at_level(logging.ERROR, logger="bot.transactions"):
            await telegram.call()
            await telegram.call()
        # Neither committed nor rolled back behind the writer's back: still its to commit.
        assert session.in_transaction()
        await session.commit()
    assert telegram.checked_out_at_calls == [1, 1]  # held, as the writer left it
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert len(errors) == 1  # once per transaction
    expected = "unflushed" if write == "unflushed" else "flushed, uncommitted"
    assert expected in errors[0]
    async with sessionmaker() as check:
        assert await check.scalar(select(func.count(Merchant.id))) == 1


async def test_a_transaction_ended_by_its_writer_is_no_longer_reported(
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
) -> None:
    telegram = Telegram(engine)
    async with session_for_update(sessionmaker) as session:
        session.add(Merchant(telegram_id=1003, full_name="Вера"))
        await session.flush()
        await session.commit()
        await session.scalar(select(func.count(Merchant.id)))  # a new, read-only transaction
        with caplog.at_level(logging.ERROR, logger="bot.transactions"):
            await telegram.call()
    assert telegram.checked_out_at_calls == [0]
    assert [r for r in caplog.records if r.levelno >= logging.ERROR] == []


async def test_the_sql_fsm_works_in_the_update_session_never_beside_it(
    engine: AsyncEngine,
    sessionmaker: async_sessionmaker[AsyncSession],
    most_connections: list[int],
) -> None:
    storage = SQLStorage(sessionmaker)
    async with session_for_update(sessionmaker) as session:
        await merchants.get_or_register(session, telegram_id=1001, full_name="Анна", username=None)
        await session.scalar(select(func.count(Merchant.id)))  # the update holds a connection
        await storage.set_state(KEY, NewTicket.entering_subject)
        await storage.set_data(KEY, {"draft_id": "ab12cd34"})
        assert await storage.get_state(KEY) == NewTicket.entering_subject.state
        await storage.set_data(KEY, {"draft_id": "ab12cd34", "subject": "Оплата"})
        # Read back fresh, not a copy the session kept from before the upsert.
        assert await storage.get_data(KEY) == {"draft_id": "ab12cd34", "subject": "Оплата"}
    assert most_connections[0] == 1
    # Committed: another session (a restarted bot) sees the step.
    assert await SQLStorage(sessionmaker).get_state(KEY) == NewTicket.entering_subject.state


async def test_outside_an_update_the_fsm_and_telegram_calls_use_no_update_session(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    leftover: list[AsyncSession | None] = []
    async with session_for_update(sessionmaker) as session:
        assert update_session() is session
        # A task started by a handler copies the context and may outlive the update.
        started = asyncio.Event()
        finish = asyncio.Event()

        async def later() -> None:
            started.set()
            await finish.wait()
            leftover.append(update_session())

        task = asyncio.create_task(later())
        await started.wait()
    finish.set()
    await task
    assert leftover == [None]
    assert update_session() is None
    await SQLStorage(sessionmaker).set_state(KEY, NewTicket.reviewing)  # its own short session
    telegram = Telegram(engine)
    await telegram.call()
    assert telegram.checked_out_at_calls == [0]


async def test_two_telegram_calls_of_one_update_at_once_end_the_transaction_once(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    telegram = Telegram(engine)
    async with session_for_update(sessionmaker) as session:
        await session.scalar(select(func.count(Merchant.id)))
        await asyncio.gather(telegram.call(), telegram.call(), telegram.call())
        assert not session.in_transaction()
    assert telegram.checked_out_at_calls == [0, 0, 0]
