"""aiogram FSM storage in the SQL database, for deployments without Redis.

MemoryStorage would forget a half-filled ticket on every restart; this keeps the embedded default
(SQLite) as durable as the Redis deployment. Like Redis's keys, a chat's record expires `ttl`
after its last write (FSM_TTL_SECONDS): it reads as empty, and is deleted by a sweep at most
once an hour, on a write. While an update is handled the storage works in that
update's session (bot/transactions.py), so an update never needs two connections; elsewhere it
takes a short session of its own.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from datetime import timedelta
from typing import Any

from aiogram.fsm.state import State
from aiogram.fsm.storage.base import (
    BaseStorage,
    DefaultKeyBuilder,
    KeyBuilder,
    StateType,
    StorageKey,
)
from sqlalchemy import Executable, delete, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.transactions import pending_writes, update_session
from services.db.base import utcnow
from services.db.models import FsmRecord

logger = logging.getLogger(__name__)

SWEEP_INTERVAL_SECONDS = 3600.0


class SQLStorage(BaseStorage):
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        key_builder: KeyBuilder | None = None,
        ttl: timedelta | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._key_builder = key_builder or DefaultKeyBuilder(with_destiny=True)
        self._ttl = ttl
        self._next_sweep = 0.0  # time.monotonic() of the next sweep of expired records

    async def set_state(self, key: StorageKey, state: StateType = None) -> None:
        value = state.state if isinstance(state, State) else state
        await self._upsert(self._key_builder.build(key), {"state": value})

    async def get_state(self, key: StorageKey) -> str | None:
        record = await self._get(self._key_builder.build(key))
        return record[0] if record else None

    async def set_data(self, key: StorageKey, data: Mapping[str, Any]) -> None:
        await self._upsert(self._key_builder.build(key), {"data": dict(data)})

    async def get_data(self, key: StorageKey) -> dict[str, Any]:
        record = await self._get(self._key_builder.build(key))
        return dict(record[1]) if record and record[1] else {}

    async def close(self) -> None:
        """The engine belongs to the application, which disposes of it."""

    async def _get(self, key: str) -> tuple[str | None, dict[str, Any] | None] | None:
        # Columns, not the ORM object: the update's session would keep the object in its
        # identity map and hand back that stale copy after the next upsert.
        query = select(FsmRecord.state, FsmRecord.data).where(FsmRecord.key == key)
        if self._ttl is not None:
            query = query.where(FsmRecord.updated_at > utcnow() - self._ttl)
        shared = update_session()
        if shared is not None:
            row = (await shared.execute(query)).one_or_none()
        else:
            async with self._sessionmaker() as session:
                row = (await session.execute(query)).one_or_none()
        return (row.state, row.data) if row is not None else None

    async def _upsert(self, key: str, values: dict[str, Any]) -> None:
        sweep = self._due_sweep()
        shared = update_session()
        if shared is None:
            async with self._sessionmaker.begin() as session:
                if sweep is not None:
                    await session.execute(sweep)
                await session.execute(self._upsert_statement(session, key, values))
            return
        # The update's own session and connection, never a second one beside it (on SQLite a
        # second writer would wait for the first). The state is committed at once: the
        # merchant may answer the step as soon as it is shown.
        writes = pending_writes(shared) if shared.in_transaction() else None
        if writes is not None:
            logger.error(
                "the FSM state is saved in a transaction with %s: committed with it", writes
            )
        if sweep is not None:
            await shared.execute(sweep)
        await shared.execute(self._upsert_statement(shared, key, values))
        await shared.commit()

    def _due_sweep(self) -> Executable | None:
        """Deleting the drafts nobody touched for the TTL, when an hour has passed since the last
        sweep: done in the write's own transaction (on SQLite a second writer would wait)."""
        if self._ttl is None or time.monotonic() < self._next_sweep:
            return None
        self._next_sweep = time.monotonic() + SWEEP_INTERVAL_SECONDS
        return delete(FsmRecord).where(FsmRecord.updated_at <= utcnow() - self._ttl)

    @staticmethod
    def _upsert_statement(session: AsyncSession, key: str, values: dict[str, Any]) -> Executable:
        # One statement, so two updates of the same chat racing each other cannot collide.
        insert = (
            postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
        )
        row = {"key": key, "state": None, "data": {}, "updated_at": utcnow(), **values}
        return (
            insert(FsmRecord)
            .values(**row)
            .on_conflict_do_update(
                index_elements=[FsmRecord.key], set_={**values, "updated_at": row["updated_at"]}
            )
        )
