"""The migration stairway: every revision upgrades, downgrades and upgrades again, on both
databases, and the models match the migrated schema. Each test starts from an empty database
(`fresh_database_url`), never from the migrated copy the other tests share."""

from __future__ import annotations

from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import inspect

from services.db.base import Base
from services.db.engine import alembic_config, create_engine, downgrade, migrate


def _revisions() -> list[str]:
    script = ScriptDirectory.from_config(alembic_config())
    return [revision.revision for revision in reversed(list(script.walk_revisions()))]


async def test_stairway_upgrade_downgrade_upgrade_every_revision(fresh_database_url: str) -> None:
    engine = create_engine(fresh_database_url)
    try:
        for index, revision in enumerate(_revisions()):
            previous = _revisions()[index - 1] if index else "base"
            await migrate(engine, revision)
            await downgrade(engine, previous)
            await migrate(engine, revision)
    finally:
        await engine.dispose()


async def test_models_match_the_migrated_schema(fresh_database_url: str) -> None:
    engine = create_engine(fresh_database_url)
    try:
        await migrate(engine)
        async with engine.connect() as connection:
            diff = await connection.run_sync(
                lambda sync: compare_metadata(MigrationContext.configure(sync), Base.metadata)
            )
            tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    finally:
        await engine.dispose()
    assert diff == []
    assert {"merchants", "stores", "memberships", "tickets", "fsm_records"} <= tables


async def test_frontdesk_migrate_command_brings_the_database_up_to_date(
    fresh_database_url: str,
) -> None:
    import asyncio
    import os
    import sys

    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        "migrate",
        env={
            "PATH": os.environ.get("PATH", ""),
            "BOT_TOKEN": "1:x",
            "DATABASE_URL": fresh_database_url,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode == 0, stderr.decode()
    assert "database is up to date" in stdout.decode()
    engine = create_engine(fresh_database_url)
    try:
        async with engine.connect() as connection:
            tables = await connection.run_sync(lambda sync: set(inspect(sync).get_table_names()))
    finally:
        await engine.dispose()
    assert {"alembic_version", "tickets", "filing_outbox"} <= tables
