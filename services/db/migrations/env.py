"""Alembic environment. frontdesk hands in a live connection (services/db/engine.py); the plain
`alembic` CLI (alembic.ini) gets one from DATABASE_URL instead."""

from __future__ import annotations

import asyncio
import os

from alembic import context
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine

from services.db import models  # noqa: F401  (registers the tables on Base.metadata)
from services.db.base import Base
from services.db.engine import DEFAULT_DATABASE_URL, async_url

target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_from_url(url: str) -> None:
    engine = create_async_engine(url)
    async with engine.begin() as connection:
        await connection.run_sync(_configure)
    await engine.dispose()


def run_migrations_online() -> None:
    connection = context.config.attributes.get("connection")
    if connection is not None:
        _configure(connection)
        return
    asyncio.run(_run_from_url(async_url(os.environ.get("DATABASE_URL") or DEFAULT_DATABASE_URL)))


if context.is_offline_mode():
    raise SystemExit("offline migrations are not supported; run `frontdesk migrate`")
run_migrations_online()
