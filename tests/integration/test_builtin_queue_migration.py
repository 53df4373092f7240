"""Migration 0007: the builtin queue's rows in RT's words become frontdesk's, and back."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import text

from services.db.engine import create_engine, downgrade, migrate

_TICKETS = (
    "INSERT INTO queue_tickets (id, reference, requester, subject, body, status, request_type,"
    " category, telegram_user_id, created_at, updated_at) VALUES"
    " (1, 'r1', 'a@example.com', 's', 'b', 'stalled', 't', 'c', 1, :at, :at),"
    " (2, 'r2', 'a@example.com', 's', 'b', 'deleted', 't', 'c', 1, :at, :at),"
    " (3, 'r3', 'a@example.com', 's', 'b', 'new', 't', 'c', 1, :at, :at)"
)
_HISTORY = (
    "INSERT INTO queue_transactions (id, ticket_id, type, field, old_value, new_value, creator,"
    " created_at) VALUES"
    " (1, 1, 'Create', NULL, NULL, NULL, 'frontdesk', :at),"
    " (2, 1, 'Correspond', NULL, NULL, NULL, 'frontdesk', :at),"
    " (3, 1, 'Correspond', NULL, NULL, NULL, 'ivan', :at),"
    " (4, 1, 'Status', 'Status', 'new', 'stalled', 'ivan', :at),"
    " (5, 1, 'Set', 'Owner', NULL, 'ivan', 'ivan', :at),"
    " (6, 2, 'Status', 'Status', 'open', 'deleted', 'ivan', :at)"
)
AT = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


async def test_builtin_rows_are_converted_both_ways(fresh_database_url: str) -> None:
    engine = create_engine(fresh_database_url)
    try:
        await migrate(engine, "0006")
        async with engine.begin() as connection:
            await connection.execute(text(_TICKETS), {"at": AT})
            await connection.execute(text(_HISTORY), {"at": AT})

        await migrate(engine, "0007")
        async with engine.connect() as connection:
            tickets = (
                await connection.execute(
                    text(
                        "SELECT id, status, queue, deleted_at IS NOT NULL FROM queue_tickets"
                        " ORDER BY id"
                    )
                )
            ).all()
            history = (
                await connection.execute(
                    text(
                        "SELECT kind, old_value, new_value, by_support FROM queue_transactions"
                        " ORDER BY id"
                    )
                )
            ).all()
        assert [tuple(row) for row in tickets] == [
            (1, "waiting", "Support", False),
            (2, "rejected", "Support", True),
            (3, "registered", "Support", False),
        ]
        assert [(k, o, n, bool(b)) for k, o, n, b in history] == [
            ("created", None, None, False),
            ("message", None, None, False),
            ("message", None, None, True),
            ("status", "registered", "waiting", False),
            ("owner", None, "ivan", False),
            ("deleted", "open", None, False),
        ]

        await downgrade(engine, "0006")
        async with engine.connect() as connection:
            statuses = (
                await connection.execute(text("SELECT status FROM queue_tickets ORDER BY id"))
            ).scalars()
            assert list(statuses) == ["stalled", "deleted", "new"]
            rows = (
                await connection.execute(
                    text(
                        "SELECT type, field, old_value, new_value FROM queue_transactions"
                        " ORDER BY id"
                    )
                )
            ).all()
        assert [tuple(row) for row in rows] == [
            ("Create", None, None, None),
            ("Correspond", None, None, None),
            ("Correspond", None, None, None),
            ("Status", "Status", "new", "stalled"),
            ("Set", "Owner", None, "ivan"),
            ("Status", "Status", "open", "deleted"),
        ]
    finally:
        await engine.dispose()
