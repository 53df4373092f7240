"""The one place that picks the dialect's INSERT (for ON CONFLICT), PostgreSQL or SQLite."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import CursorResult, Result
from sqlalchemy.ext.asyncio import AsyncSession


def insert_for(session: AsyncSession, table: Any) -> Any:
    """`INSERT` into ``table`` that supports ``on_conflict_do_nothing/update`` on this session's
    database."""
    bind = session.get_bind()
    if bind.dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def rowcount(result: Result[Any]) -> int:
    """Rows an UPDATE or DELETE matched (``session.execute`` is typed as a plain Result)."""
    return int(cast(CursorResult[Any], result).rowcount)
