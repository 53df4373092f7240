"""FSM storages that outlive the process: Redis, and the SQL one of the embedded default."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from aiogram.fsm.storage.base import BaseStorage, DefaultKeyBuilder, StorageKey
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.fsm_storage import SQLStorage
from bot.redis_fsm import CompactRedisStorage, create_redis
from handlers.new_ticket.states import NewTicket
from services.db.engine import create_engine, create_sessionmaker
from tests.helpers.databases import REDIS_URL

KEY = StorageKey(bot_id=42, chat_id=1001, user_id=1001)


@pytest.fixture(
    params=[
        "sqlite",
        pytest.param("postgres", marks=pytest.mark.postgres),
        pytest.param("redis", marks=pytest.mark.redis),
    ]
)
async def storage_factory(request: pytest.FixtureRequest) -> AsyncIterator:
    """A function building a *new* storage object over the same backend: a restarted bot."""
    created: list[BaseStorage] = []
    engines: list[AsyncEngine] = []
    clients: list[Redis] = []
    if request.param == "redis":
        prefix = request.getfixturevalue("redis_prefix")

        async def factory() -> BaseStorage:
            clients.append(create_redis(REDIS_URL, pool_size=5, pool_timeout=5))
            storage = CompactRedisStorage(
                clients[-1],
                DefaultKeyBuilder(prefix=prefix, with_destiny=True),
                ttl_seconds=3600,
            )
            created.append(storage)
            return storage
    else:
        url = request.getfixturevalue(f"{request.param}_url")

        async def factory() -> BaseStorage:
            engines.append(create_engine(url))
            storage = SQLStorage(create_sessionmaker(engines[-1]))
            created.append(storage)
            return storage

    yield factory
    for storage in created:
        await storage.close()
    for engine in engines:
        await engine.dispose()
    for client in clients:
        await client.aclose()


async def test_state_and_data_survive_a_restart(storage_factory) -> None:
    before = await storage_factory()
    await before.set_state(KEY, NewTicket.entering_description)
    await before.set_data(KEY, {"subject": "Не работает оплата", "draft_id": "ab12cd34"})
    await before.close()

    after = await storage_factory()
    assert await after.get_state(KEY) == NewTicket.entering_description.state
    assert await after.get_data(KEY) == {"subject": "Не работает оплата", "draft_id": "ab12cd34"}


async def test_clearing_forgets_state_and_data(storage_factory) -> None:
    storage = await storage_factory()
    await storage.set_state(KEY, NewTicket.reviewing)
    await storage.set_data(KEY, {"x": 1})
    await storage.set_state(KEY, None)
    await storage.set_data(KEY, {})
    assert await storage.get_state(KEY) is None
    assert await storage.get_data(KEY) == {}


async def test_users_do_not_see_each_others_drafts(storage_factory) -> None:
    storage = await storage_factory()
    other = StorageKey(bot_id=42, chat_id=2002, user_id=2002)
    await storage.set_data(KEY, {"subject": "mine"})
    assert await storage.get_data(other) == {}
    assert await storage.get_state(other) is None


async def test_concurrent_writes_of_one_chat_do_not_fail(storage_factory) -> None:
    storage = await storage_factory()
    await asyncio.gather(*(storage.update_data(KEY, {f"k{i}": i}) for i in range(10)))
    await asyncio.gather(*(storage.set_state(KEY, NewTicket.reviewing) for _ in range(10)))
    assert await storage.get_state(KEY) == NewTicket.reviewing.state
