"""MIGRATE_ON_START: the bot migrates at start by default (SQLite, one process); turned off, the
upgrade is `frontdesk migrate`'s own step (docs/deploy.md) and the bot refuses a schema that is
not the one it needs instead of running on it."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from bot.app import prepare_schema
from bot.config import Settings
from bot.startup import StartupError
from services.db.engine import alembic_config, create_engine, downgrade


def _settings(**env: str) -> Settings:
    return Settings.model_validate({"bot_token": "123456:ABC", **env})


def _tables(url: str) -> set[str]:
    path = url.split(":///", 1)[1]
    with sqlite3.connect(path) as connection:
        rows = connection.execute("select name from sqlite_master where type = 'table'")
        return {name for (name,) in rows}


def test_migrate_on_start_is_on_by_default_and_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    assert _settings().migrate_on_start is True
    monkeypatch.setenv("MIGRATE_ON_START", "false")
    assert Settings(bot_token="123456:ABC").migrate_on_start is False  # type: ignore[arg-type]


async def test_the_bot_migrates_an_empty_database_at_start_by_default(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.sqlite3'}"
    engine = create_engine(url)
    try:
        await prepare_schema(engine, _settings(database_url=url))
    finally:
        await engine.dispose()
    assert {"alembic_version", "tickets"} <= _tables(url)


async def test_without_migrate_on_start_an_empty_database_stops_the_bot_untouched(
    tmp_path: Path,
) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'fresh.sqlite3'}"
    engine = create_engine(url)
    try:
        with pytest.raises(StartupError) as raised:
            await prepare_schema(engine, _settings(database_url=url, migrate_on_start="false"))
    finally:
        await engine.dispose()
    assert raised.value.setting == "MIGRATE_ON_START"
    assert "none (an empty database)" in str(raised.value)
    assert "frontdesk migrate" in str(raised.value)
    assert _tables(url) == set()


async def test_without_migrate_on_start_a_schema_one_revision_behind_stops_the_bot(
    sqlite_url: str,
) -> None:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    head = script.get_revision(script.get_current_head())
    assert head is not None and isinstance(head.down_revision, str)
    engine = create_engine(sqlite_url)
    try:
        await downgrade(engine, head.down_revision)
        with pytest.raises(StartupError) as raised:
            await prepare_schema(engine, _settings(database_url=sqlite_url, migrate_on_start="0"))
    finally:
        await engine.dispose()
    assert f"at revision {head.down_revision}, this version needs {head.revision}" in str(
        raised.value
    )


async def test_without_migrate_on_start_a_migrated_database_starts_without_migrating(
    sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async def no_migration(*_args: object, **_kwargs: object) -> None:
        raise AssertionError("migrated at start with MIGRATE_ON_START=false")

    monkeypatch.setattr("bot.app.migrate", no_migration)
    engine = create_engine(sqlite_url)
    try:
        await prepare_schema(engine, _settings(database_url=sqlite_url, migrate_on_start="false"))
    finally:
        await engine.dispose()
