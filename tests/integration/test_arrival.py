"""What every update reads of its sender (services/merchants.arrive): the merchant, whether their
chat was out of reach, and their stores, in one statement; the stores then come from the session
until it writes."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services import merchants, stores
from services.db.base import utcnow
from services.db.models import Role, TelegramChat


@contextmanager
def statements(engine: AsyncEngine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(_conn, _cursor, statement: str, *_args: object) -> None:
        seen.append(statement.split()[0].upper())

    event.listen(engine.sync_engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine.sync_engine, "before_cursor_execute", record)


async def test_a_known_merchant_with_stores_is_read_in_one_statement(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    async with sessionmaker() as session:
        first = await merchants.arrive(session, telegram_id=71, full_name="Анна", username="anna")
        assert first.merchant.full_name == "Анна" and first.unreachable_since is None
        second_store = await stores.add_store(session, domain="b.example", name="Б", plan="site")
        first_store = await stores.add_store(session, domain="a.example", name="А", plan="premium")
        await stores.grant(
            session, merchant_id=first.merchant.id, store_id=second_store, role=Role.ADMIN
        )
        await stores.grant(
            session, merchant_id=first.merchant.id, store_id=first_store, role=Role.OWNER
        )

    async with sessionmaker() as session:
        with statements(engine) as seen:
            arrival = await merchants.arrive(
                session, telegram_id=71, full_name="Анна", username="anna"
            )
            linked = await stores.stores_of(session, arrival.merchant.id)
            assert await stores.stores_of(session, arrival.merchant.id) == linked
        assert seen == ["SELECT"]
        assert arrival.merchant == first.merchant
        assert [(s.name, s.plan, s.role) for s in linked] == [
            ("А", "premium", Role.OWNER),
            ("Б", "site", Role.ADMIN),
        ]

        # A write (here a role's change) makes the next read go to the database again.
        await stores.grant(
            session, merchant_id=arrival.merchant.id, store_id=first_store, role=Role.ADMIN
        )
        assert [s.role for s in await stores.stores_of(session, arrival.merchant.id)] == [
            Role.ADMIN,
            Role.ADMIN,
        ]


async def test_a_renamed_merchant_and_a_chat_out_of_reach(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        await merchants.arrive(session, telegram_id=72, full_name="Пётр", username=None)
        since = utcnow()
        session.add(TelegramChat(chat_id=72, unreachable_since=since, reason="blocked"))
        await session.commit()

    async with sessionmaker() as session:
        arrival = await merchants.arrive(
            session, telegram_id=72, full_name="Пётр Иванов", username="petr"
        )
        assert arrival.unreachable_since is not None
        assert arrival.merchant.full_name == "Пётр Иванов"
        assert await stores.stores_of(session, arrival.merchant.id) == []

    async with sessionmaker() as session:
        again = await merchants.get_or_register(
            session, telegram_id=72, full_name="Пётр Иванов", username="petr"
        )
        assert again.id == arrival.merchant.id and again.full_name == "Пётр Иванов"
