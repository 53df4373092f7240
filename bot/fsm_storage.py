"""aiogram FSM storage in the SQL database, for deployments without Redis.

MemoryStorage would forget a half-filled ticket on every restart; this keeps the embedded default
(SQLite) as durable as the Redis deployment.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import (
    BaseStorage,
    DefaultKeyBuilder,
    KeyBuilder,
    StateType,
    StorageKey,
)
from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.db.base import utcnow
from services.db.models import FsmRecord


class SQLStorage(BaseStorage):
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        key_builder: KeyBuilder | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._key_builder = key_builder or DefaultKeyBuilder(with_destiny=True)

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        await self._upsert(self._key_builder.build(key), {"state": value})

    async def get_state(self, key: StorageKey) -> str | None:
        record = await self._get(self._key_builder.build(key))
        return record.state if record else None

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await self._upsert(self._key_builder.build(key), {"data": dict(data)})

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        record = await self._get(self._key_builder.build(key))
        return dict(record.data) if record and record.data else {}

    async def close(self) -> None:
        """The engine belongs to the application, which disposes of it."""

    async def _get(self, key: str) -> FsmRecord | None:
        async with self._sessionmaker() as session:
            return await session.scalar(select(FsmRecord).where(FsmRecord.key == key))

    async def _upsert(self, key: str, values: dict[str, Any]) -> None:
        # One statement, so two updates of the same chat racing each other cannot collide.
        async with self._sessionmaker.begin() as session:
            insert = (
                postgresql.insert
                if session.get_bind().dialect.name == "postgresql"
                else sqlite.insert
            )
            row = {"key": key, "state": None, "data": {}, "updated_at": utcnow(), **values}
            statement = insert(FsmRecord).values(**row)
            statement = statement.on_conflict_do_update(
                index_elements=[FsmRecord.key], set_={**values, "updated_at": row["updated_at"]}
            )
            await session.execute(statement)
