"""The machine's PostgreSQL and Redis as the tests use them, and migrated databases to copy.

Migrating takes far longer than a test that uses the result, so it happens once per test session
(per xdist worker): PostgreSQL gets one migrated database per worker, emptied before each test;
SQLite gets one migrated template file, copied for each test.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import shutil
import uuid
from collections.abc import Coroutine
from pathlib import Path
from typing import Any, TypeVar

POSTGRES_ADMIN_URL = os.environ.get(
    "FRONTDESK_TEST_POSTGRES", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("FRONTDESK_TEST_REDIS", "redis://127.0.0.1:6379/0")

T = TypeVar("T")

# Empties every table of the schema except Alembic's record of the revision, and restarts every
# sequence: the catalog names them, so a table added by a later migration is covered unasked.
RESET_SQL = """
DO $$
DECLARE
    tables text;
    sequence record;
BEGIN
    SELECT string_agg(format('%I.%I', schemaname, tablename), ', ') INTO tables
      FROM pg_tables
     WHERE schemaname = current_schema() AND tablename <> 'alembic_version';
    IF tables IS NOT NULL THEN
        EXECUTE 'TRUNCATE TABLE ' || tables || ' RESTART IDENTITY CASCADE';
    END IF;
    FOR sequence IN
        SELECT format('%I.%I', schemaname, sequencename) AS name
          FROM pg_sequences WHERE schemaname = current_schema()
    LOOP
        EXECUTE 'ALTER SEQUENCE ' || sequence.name || ' RESTART';
    END LOOP;
END $$;
"""

TABLES_SQL = """
SELECT format('%I.%I', schemaname, tablename) AS name FROM pg_tables
 WHERE schemaname = current_schema() AND tablename <> 'alembic_version'
"""


def run_async(coroutine: Coroutine[Any, Any, T]) -> T:
    """Runs a coroutine to the end in a loop of its own (a thread: the test's loop is not
    disturbed). For session-wide set-up that outlives any test's event loop."""
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coroutine).result()


def _dsn(url: str) -> str:
    return url.replace("postgresql+asyncpg://", "postgresql://")


class PostgresDatabases:
    """Creates, empties and drops throw-away databases on the machine's PostgreSQL."""

    def __init__(self, admin_url: str) -> None:
        self.admin_url = admin_url

    def url_for(self, name: str) -> str:
        return self.admin_url.rsplit("/", 1)[0] + "/" + name

    async def create(self) -> str:
        worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
        name = f"frontdesk_t_{worker}_{uuid.uuid4().hex[:12]}"
        await self._execute(f'CREATE DATABASE "{name}"')
        return name

    async def drop(self, name: str) -> None:
        await self._execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    async def create_migrated(self) -> str:
        """A new database at the head revision; its URL."""
        from services.db.engine import create_engine, migrate

        url = self.url_for(await self.create())
        engine = create_engine(url)
        try:
            await migrate(engine)
        finally:
            await engine.dispose()
        await self._check_nothing_seeded(url)
        return url

    async def reset(self, url: str) -> None:
        """Empties every table but alembic_version. A connection a previous test leaked (and
        that holds a lock) is ended rather than waited for."""
        import asyncpg

        connection = await asyncpg.connect(_dsn(url))
        try:
            await connection.execute("SET lock_timeout = '3s'")
            try:
                await connection.execute(RESET_SQL)
            except asyncpg.LockNotAvailableError:
                await connection.execute(
                    "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
                await connection.execute(RESET_SQL)
        finally:
            await connection.close()

    async def _check_nothing_seeded(self, url: str) -> None:
        # A migration that inserts rows would see them wiped by `reset`: say so at once.
        import asyncpg

        connection = await asyncpg.connect(_dsn(url))
        try:
            seeded = [
                row["name"]
                for row in await connection.fetch(TABLES_SQL)
                if await connection.fetchval(f"SELECT EXISTS (SELECT 1 FROM {row['name']})")
            ]
        finally:
            await connection.close()
        if seeded:
            raise RuntimeError(
                f"migrations seed rows into {', '.join(seeded)}; the per-test reset "
                "(tests/helpers/databases.py) empties every table and would lose them"
            )

    async def _execute(self, sql: str) -> None:
        import asyncpg

        connection = await asyncpg.connect(_dsn(self.admin_url))
        try:
            await connection.execute(sql)
        finally:
            await connection.close()


def sqlite_url(path: Path) -> str:
    return f"sqlite+aiosqlite:///{path}"


async def migrate_sqlite(path: Path) -> None:
    from services.db.engine import create_engine, migrate

    engine = create_engine(sqlite_url(path))
    try:
        await migrate(engine)
    finally:
        await engine.dispose()


def copy_sqlite(template: Path, target: Path) -> None:
    """A migrated database for one test: a file copy (with its WAL, if one was left)."""
    shutil.copyfile(template, target)
    for suffix in ("-wal", "-shm"):
        companion = template.with_name(template.name + suffix)
        if companion.exists():
            shutil.copyfile(companion, target.with_name(target.name + suffix))
