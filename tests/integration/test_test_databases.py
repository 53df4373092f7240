"""The per-test reset of the shared PostgreSQL database (tests/helpers/databases.py): every table
a migration made is emptied, a table added by a later migration included, sequences start again,
and Alembic's revision stays."""

from __future__ import annotations

import asyncpg
import pytest

from tests.helpers.databases import PostgresDatabases

pytestmark = pytest.mark.postgres


async def test_reset_empties_every_table_but_alembic_version(
    postgres: PostgresDatabases, postgres_url: str
) -> None:
    connection = await asyncpg.connect(postgres_url.replace("postgresql+asyncpg", "postgresql"))
    try:
        revision = await connection.fetchval("SELECT version_num FROM alembic_version")
        # A table of a migration written after this test, with a row and a used sequence.
        await connection.execute("CREATE TABLE later_table (id serial PRIMARY KEY, note text)")
        await connection.execute("INSERT INTO later_table (note) VALUES ('a'), ('b')")
        await connection.execute(
            "INSERT INTO merchants (telegram_id, full_name, locale, created_at)"
            " VALUES (1, 'Анна', 'ru', now())"
        )
        await postgres.reset(postgres_url)

        assert await connection.fetchval("SELECT count(*) FROM later_table") == 0
        assert await connection.fetchval("SELECT count(*) FROM merchants") == 0
        assert await connection.fetchval("SELECT version_num FROM alembic_version") == revision
        await connection.execute("INSERT INTO later_table (note) VALUES ('c')")
        assert await connection.fetchval("SELECT id FROM later_table") == 1
    finally:
        await connection.execute("DROP TABLE IF EXISTS later_table")
        await connection.close()
