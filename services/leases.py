"""Leases: a job only one process may do at a time, with takeover when its holder dies.

A lease is held for a time (its TTL) and renewed by its holder while it lives; a holder that is
killed stops renewing, and another process takes the lease once it lapses. Two uses: the
Telegram poller of a token (bot/process_lock.py: a second poller is refused) and the sync's
reading of a queue (services/sync.py: one process polls, the others stand by). Redis holds them
when there is one (bot/process_lock.RedisLease), else the SQL database (`SqlLease`).
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import delete, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.db.base import utcnow
from services.db.dialect import insert_for, rowcount
from services.db.models import ProcessLease


class Lease(Protocol):
    """One named lease as one holder sees it."""

    async def hold(self) -> bool:
        """Takes the lease if it is free or lapsed, or renews it if this holder has it; whether
        this holder has it now (until the TTL from now)."""
        ...

    async def holder(self) -> str | None:
        """Who has the lease now, if anyone (for the message that refuses a start)."""
        ...

    async def release(self) -> None:
        """Lets the lease go if this holder has it, so another process takes over at once."""
        ...

    async def replace(self, previous: str) -> bool:
        """Takes the lease from `previous`, known dead (a killed process of this host), before
        its TTL runs out; False if `previous` no longer has it."""
        ...


def holder_name() -> str:
    """This process among others: host, process id and a random tag (pids repeat across
    containers)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class SqlLease:
    """A lease as a row of `process_leases`: taken by one upsert whose update applies only when
    the row is this holder's or has lapsed, so of two processes at once only one gets it."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        name: str,
        *,
        ttl: timedelta,
        holder: str | None = None,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessionmaker = sessionmaker
        self.name = name
        self.ttl = ttl
        self.me = holder or holder_name()
        self._clock = clock

    async def hold(self) -> bool:
        now = self._clock()
        async with self._sessionmaker.begin() as session:
            statement = insert_for(session, ProcessLease).values(
                name=self.name, holder=self.me, expires_at=now + self.ttl
            )
            statement = statement.on_conflict_do_update(
                index_elements=["name"],
                set_={
                    "holder": statement.excluded.holder,
                    "expires_at": statement.excluded.expires_at,
                },
                where=(ProcessLease.holder == self.me) | (ProcessLease.expires_at < now),
            ).returning(ProcessLease.holder)
            taken = await session.scalar(statement)
        return taken == self.me

    async def holder(self) -> str | None:
        async with self._sessionmaker() as session:
            row = await session.get(ProcessLease, self.name)
            if row is None or row.expires_at < self._clock():
                return None
            return row.holder

    async def replace(self, previous: str) -> bool:
        async with self._sessionmaker.begin() as session:
            replaced = await session.execute(
                update(ProcessLease)
                .where(ProcessLease.name == self.name, ProcessLease.holder == previous)
                .values(holder=self.me, expires_at=self._clock() + self.ttl)
            )
        return rowcount(replaced) == 1

    async def release(self) -> None:
        async with self._sessionmaker.begin() as session:
            await session.execute(
                delete(ProcessLease).where(
                    ProcessLease.name == self.name, ProcessLease.holder == self.me
                )
            )
