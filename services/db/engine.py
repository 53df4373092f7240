"""Engine, session factory and schema migrations: one code path for PostgreSQL and SQLite."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, event
from sqlalchemy.engine import Engine
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///frontdesk.sqlite3"


def async_url(url: str) -> str:
    """The URL with frontdesk's async driver: ``postgresql://`` becomes asyncpg, ``sqlite:///``
    aiosqlite. ValueError for any other database."""
    if url.startswith(("postgresql://", "postgres://")):
        return "postgresql+asyncpg://" + url.split("://", 1)[1]
    if url.startswith("sqlite:///"):
        return "sqlite+aiosqlite:///" + url.removeprefix("sqlite:///")
    if not url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        raise ValueError("must be a postgresql:// or sqlite:/// URL")
    return url


def create_engine(
    url: str,
    *,
    echo: bool = False,
    pool_size: int = 10,
    max_overflow: int = 10,
    pool_timeout: float = 30.0,
) -> AsyncEngine:
    kwargs: dict[str, object] = {
        "echo": echo,
        "pool_size": pool_size,
        "max_overflow": max_overflow,
        "pool_timeout": pool_timeout,
    }
    if url.startswith("sqlite"):
        # A file shared by the bot and its workers: wait for a writer instead of failing at once.
        # WAL lets readers run beside the one writer; the driver begins a transaction only at
        # the first write, so a read never holds a snapshot that a later write must upgrade
        # (the upgrade SQLite refuses at once, busy_timeout or not). A pool as large as on
        # PostgreSQL is cheap (a thread per connection) and keeps updates from waiting for one.
        kwargs["connect_args"] = {"timeout": 30}
    else:
        kwargs["pool_pre_ping"] = True
    engine = create_async_engine(url, **kwargs)
    if url.startswith("sqlite"):
        _tune_sqlite(engine.sync_engine)
    return engine


def create_health_engine(url: str, *, timeout: float) -> AsyncEngine:
    """A one-connection engine of its own for /healthz: a crowd holding the main pool, or a
    slow Telegram, cannot make the health check wait for a connection."""
    kwargs: dict[str, object] = {"pool_size": 1, "max_overflow": 0, "pool_timeout": timeout}
    if url.startswith("sqlite"):
        kwargs["connect_args"] = {"timeout": timeout}
    else:
        kwargs["pool_pre_ping"] = True
        kwargs["connect_args"] = {"timeout": timeout, "command_timeout": timeout}
    return create_async_engine(url, **kwargs)


def _tune_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


def alembic_config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    return config


async def migrate(engine: AsyncEngine, revision: str = "head") -> None:
    """Upgrade the schema on this engine (the connection is handed to env.py)."""
    await _run(engine, lambda cfg: command.upgrade(cfg, revision))


async def downgrade(engine: AsyncEngine, revision: str) -> None:
    await _run(engine, lambda cfg: command.downgrade(cfg, revision))


async def _run(engine: AsyncEngine, action) -> None:  # type: ignore[no-untyped-def]
    def run(connection: Connection) -> None:
        config = alembic_config()
        config.attributes["connection"] = connection
        action(config)

    async with engine.begin() as connection:
        await connection.run_sync(run)
