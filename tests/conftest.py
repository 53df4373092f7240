"""Shared fixtures: real PostgreSQL and Redis of this machine, and the embedded SQLite default.

Every test gets its own database (PostgreSQL: a fresh database; SQLite: a fresh file) and its own
Redis key prefix. Where a server is down the test is skipped, unless FRONTDESK_REQUIRE_SERVICES=1
(set by .ci/run), where it fails: CI never silently skips the real parts.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.db.engine import create_engine, create_sessionmaker, migrate

POSTGRES_ADMIN_URL = os.environ.get(
    "FRONTDESK_TEST_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("FRONTDESK_TEST_REDIS", "redis://127.0.0.1:6379/0")
REQUIRE_SERVICES = os.environ.get("FRONTDESK_REQUIRE_SERVICES") == "1"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_server(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " (FRONTDESK_REQUIRE_SERVICES=1)")
    pytest.skip(message)


class PostgresDatabases:
    """Creates and drops throw-away databases on the machine's PostgreSQL."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url

    def url_for(self, name: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + "/" + name

    async def create(self) -> str:
        name = "frontdesk_t_" + uuid.uuid4().hex[:12]
        await self._execute(f'CREATE DATABASE "{name}"')
        return name

    async def drop(self, name: str) -> None:
        await self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def _execute(self, sql: str) -> None:
        import asyncpg

        dsn = self.admin_url.replace("postgresql+asyncpg://", "postgresql://")
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(sql)
        finally:
            await connection.close()


@pytest.fixture(scope="session")
def postgres() -> PostgresDatabases:
    require_server("PostgreSQL", "127.0.0.1", 5432)
    return PostgresDatabases(POSTGRES_ADMIN_URL)


@pytest.fixture
async def postgres_url(postgres: PostgresDatabases) -> AsyncIterator[str]:
    name = await postgres.create()
    try:
        yield postgres.url_for(name)
    finally:
        await postgres.drop(name)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite+aiosqlite:///{tmp_path / 'frontdesk.sqlite3'}"


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Both databases frontdesk supports: every storage test runs on each."""
    if request.param == "sqlite":
        yield f"sqlite+aiosqlite:///{tmp_path / 'frontdesk.sqlite3'}"
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres")
    name = await databases.create()
    try:
        yield databases.url_for(name)
    finally:
        await databases.drop(name)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    await migrate(engine)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A Redis key prefix of this test alone, deleted afterwards."""
    require_server("Redis", "127.0.0.1", 6379)
    from redis import Redis

    prefix = "frontdesk-test-" + uuid.uuid4().hex[:12]
    yield prefix
    with Redis.from_url(REDIS_URL) as client:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
