"""The FSM in Redis as deployed (bot/redis_fsm.py): compact drafts that expire, and chat locks
that never poll an idle chat and do not outlive a killed process by more than their TTL."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import timedelta

import pytest
from aiogram.fsm.storage.base import DefaultKeyBuilder, StorageKey
from redis.asyncio import Redis

from bot.fsm_storage import SQLStorage
from bot.redis_fsm import ChatLocks, CompactRedisStorage, create_redis
from handlers.new_ticket.draft import DescriptionPart, WizardData
from services.db.engine import create_engine, create_sessionmaker
from tests.helpers.databases import REDIS_URL

KEY = StorageKey(bot_id=42, chat_id=1001, user_id=1001)
OTHER = StorageKey(bot_id=42, chat_id=2002, user_id=2002)
# A problem described at length, in Russian, as merchants write: 3,500 characters.
SENTENCES = (
    "Здравствуйте! После обновления шаблона корзина перестала пересчитывать доставку. ",
    "Покупатель выбирает курьера, сумма не меняется, а при оплате списывается старая. ",
    "Проверили в трёх браузерах, очистили кэш, отключили свои скрипты — не помогло. ",
    "Заказы №10234, №10241 и №10259 оформлены с ошибкой, клиенты недовольны. ",
    "Просим проверить расчёт доставки в оформлении заказа и подсказать, что делать. ",
)


def russian_description(length: int = 3500) -> str:
    text = ""
    n = 0
    while len(text) < length:
        text += SENTENCES[n % len(SENTENCES)]
        n += 1
    return text[:length]


@pytest.fixture
async def redis(redis_prefix: str) -> AsyncIterator[Redis]:
    client = create_redis(REDIS_URL, pool_size=10, pool_timeout=5)
    yield client
    await client.aclose()


def builder(prefix: str) -> DefaultKeyBuilder:
    return DefaultKeyBuilder(prefix=prefix, with_destiny=True)


def wizard_with(description: str) -> dict:
    parts = [DescriptionPart(message_id=100 + i, text=description[i::2]) for i in range(2)]
    return WizardData(
        request_type="technical",
        category="system_error",
        subject="Доставка не пересчитывается в корзине",
        description=description,
        description_parts=parts,
        description_message_ids=[100, 101],
        prompt_message_id=99,
    ).model_dump()


@pytest.mark.redis
async def test_a_long_russian_draft_is_stored_compactly_and_read_back_whole(
    redis: Redis, redis_prefix: str
) -> None:
    storage = CompactRedisStorage(redis, builder(redis_prefix), ttl_seconds=3600)
    data = wizard_with(russian_description())
    await storage.set_data(KEY, data)

    assert await storage.get_data(KEY) == data
    stored = await redis.get(builder(redis_prefix).build(KEY, "data"))
    escaped = json.dumps(data).encode()  # aiogram's default: \\uXXXX for every Cyrillic letter
    assert len(escaped) > 20_000
    assert len(stored) < len(escaped) / 8


@pytest.mark.redis
async def test_drafts_written_before_compression_still_load(
    redis: Redis, redis_prefix: str
) -> None:
    await redis.set(builder(redis_prefix).build(KEY, "data"), json.dumps({"subject": "Оплата"}))
    storage = CompactRedisStorage(redis, builder(redis_prefix), ttl_seconds=3600)
    assert await storage.get_data(KEY) == {"subject": "Оплата"}


@pytest.mark.redis
async def test_state_and_data_expire_after_the_ttl(redis: Redis, redis_prefix: str) -> None:
    storage = CompactRedisStorage(redis, builder(redis_prefix), ttl_seconds=7 * 24 * 3600)
    await storage.set_state(KEY, "NewTicket:entering_description")
    await storage.set_data(KEY, {"subject": "x"})
    for destiny in ("state", "data"):
        ttl = await redis.ttl(builder(redis_prefix).build(KEY, destiny))
        assert 7 * 24 * 3600 - 5 <= ttl <= 7 * 24 * 3600


async def test_the_sql_storage_forgets_a_draft_after_the_ttl(sqlite_url: str) -> None:
    engine = create_engine(sqlite_url)
    try:
        storage = SQLStorage(create_sessionmaker(engine), ttl=timedelta(seconds=1))
        await storage.set_data(KEY, {"subject": "x"})
        assert await storage.get_data(KEY) == {"subject": "x"}
        await asyncio.sleep(1.1)
        assert await storage.get_data(KEY) == {}
        # The next write after the sweep's hour deletes the expired record.
        storage._next_sweep = 0.0
        await storage.set_data(OTHER, {"subject": "y"})
        async with engine.connect() as connection:
            rows = (await connection.exec_driver_sql("SELECT key FROM fsm_records")).all()
        assert [row[0] for row in rows] == [DefaultKeyBuilder(with_destiny=True).build(OTHER)]
    finally:
        await engine.dispose()


@pytest.mark.redis
async def test_an_idle_chat_takes_its_lock_at_once(redis: Redis, redis_prefix: str) -> None:
    # aiogram's lock polls every 100 ms: an update arriving while the previous one finishes
    # waited ~100 ms. Here a chat's updates in one process queue on an asyncio lock.
    locks = ChatLocks(redis, builder(redis_prefix), ttl_seconds=10, poll_seconds=1.0)
    order: list[str] = []

    async def update(name: str, hold: float) -> float:
        started = time.monotonic()
        async with locks.lock(KEY):
            waited = time.monotonic() - started
            order.append(name)
            await asyncio.sleep(hold)
        return waited

    first = asyncio.create_task(update("first", 0.2))
    await asyncio.sleep(0.05)
    second_waited = await update("second", 0)
    await first
    assert order == ["first", "second"]
    # With a 1 s poll, polling would have made the second wait a whole second.
    assert second_waited < 0.5
    assert await update("idle", 0) < 0.05


@pytest.mark.redis
async def test_two_processes_take_a_chat_in_turn(redis: Redis, redis_prefix: str) -> None:
    one = ChatLocks(redis, builder(redis_prefix), ttl_seconds=10, poll_seconds=0.01)
    other_client = create_redis(REDIS_URL, pool_size=5, pool_timeout=5)
    other = ChatLocks(other_client, builder(redis_prefix), ttl_seconds=10, poll_seconds=0.01)
    inside = 0
    most = 0

    async def update(locks: ChatLocks) -> None:
        nonlocal inside, most
        async with locks.lock(KEY):
            inside += 1
            most = max(most, inside)
            await asyncio.sleep(0.02)
            inside -= 1

    try:
        await asyncio.gather(*(update(one if n % 2 else other) for n in range(10)))
        # Another chat is not held up by this one.
        started = time.monotonic()
        async with one.lock(KEY), other.lock(OTHER):
            pass
        assert time.monotonic() - started < 0.1
    finally:
        await other_client.aclose()
    assert most == 1


@pytest.mark.redis
async def test_a_lock_is_renewed_while_its_update_runs(redis: Redis, redis_prefix: str) -> None:
    one = ChatLocks(redis, builder(redis_prefix), ttl_seconds=1, poll_seconds=0.01)
    other = ChatLocks(redis, builder(redis_prefix), ttl_seconds=1, poll_seconds=0.01)
    taken_at: list[float] = []
    started = time.monotonic()

    async def second() -> None:
        await asyncio.sleep(0.1)
        async with other.lock(KEY):
            taken_at.append(time.monotonic() - started)

    async with one.lock(KEY):
        waiting = asyncio.create_task(second())
        await asyncio.sleep(2.5)  # two and a half TTLs
        assert taken_at == []
    await waiting
    assert taken_at and taken_at[0] >= 2.5


@pytest.mark.redis
async def test_the_lock_of_a_killed_process_lapses_after_its_ttl(
    redis: Redis, redis_prefix: str
) -> None:
    # A process SIGKILLed mid-update leaves its lock behind, with no renewal: the next process
    # takes the chat once the TTL (2 s here) has run out, not after aiogram's 60 s.
    name = builder(redis_prefix).build(KEY, "lock")
    await redis.set(name, "a-dead-process", px=2000)
    locks = ChatLocks(redis, builder(redis_prefix), ttl_seconds=2, poll_seconds=0.01)
    started = time.monotonic()
    async with locks.lock(KEY):
        waited = time.monotonic() - started
    assert 1.5 <= waited <= 3.0
