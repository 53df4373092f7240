"""GET /healthz: the database, Redis, the queue and the filing and reply backlogs, each reported
on its own.

    {"status": "ok" | "degraded" | "unhealthy",
     "checks": {"database": {...}, "redis": {...}, "queue": {...}, "filing": {...},
                "replies": {...}}}

Unhealthy (HTTP 503: restart or reroute me) only when a store the bot cannot work without is
down: the database, or Redis when REDIS_URL is set. Degraded (HTTP 200: alert an operator, a
restart would not help) when the queue refuses permanently — as the filing worker last heard it,
or as tickets it refused wait in the outbox for `frontdesk outbox retry` — or when the oldest
unfiled ticket waits longer than FILING_BACKLOG_ALERT_SECONDS; the same for the merchants'
replies (those to a registered ticket: the others wait for filing). The checks use connections of
their own, so neither a crowd holding the main pool nor a slow Telegram can fail them.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from aiohttp import web
from redis.asyncio import Redis
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from services.db.base import utcnow
from services.db.engine import create_health_engine
from services.db.models import FilingOutbox, ReplyOutbox, Ticket
from services.queue.health import QueueHealth, QueueOutcome, QueueState

logger = logging.getLogger(__name__)

Json = dict[str, Any]
T = TypeVar("T")


class HealthCheck:
    def __init__(
        self,
        engine: AsyncEngine,
        redis: Redis | None,
        queue: QueueHealth,
        *,
        timeout: float,
        backlog_alert: timedelta,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._engine = engine  # its own: see services.db.engine.create_health_engine
        self._redis = redis
        self._queue = queue
        self._timeout = timeout
        self._backlog_alert = backlog_alert
        self._clock = clock

    async def report(self) -> tuple[int, Json]:
        (database, filing, replies), redis = await asyncio.gather(
            self._database(), self._redis_check()
        )
        queue = self._queue_check()
        if database["status"] != "ok" or redis["status"] == "down":
            status, code = "unhealthy", 503
        elif (
            queue["status"] == QueueState.REFUSING
            or filing["status"] != "ok"
            or replies["status"] != "ok"
        ):
            status, code = "degraded", 200
        else:
            status, code = "ok", 200
        checks = {
            "database": database,
            "redis": redis,
            "queue": queue,
            "filing": filing,
            "replies": replies,
        }
        return code, {"status": status, "checks": checks}

    async def handle(self, _request: web.Request) -> web.Response:
        code, body = await self.report()
        return web.json_response(body, status=code)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
        await self._engine.dispose()

    async def _database(self) -> tuple[Json, Json, Json]:
        """Cheap queries on one connection answer all three: is the database there, and how old
        are the backlogs."""

        async def backlog() -> tuple[tuple[int, datetime | None, int], ...]:
            filing = select(
                func.count(FilingOutbox.id),
                func.min(FilingOutbox.created_at),
                func.count(FilingOutbox.refused_at),
            )
            replies = (
                select(
                    func.count(ReplyOutbox.id),
                    func.min(ReplyOutbox.created_at),
                    func.count(ReplyOutbox.refused_at),
                )
                .join(Ticket, Ticket.id == ReplyOutbox.ticket_id)
                .where(ReplyOutbox.done_at.is_(None), Ticket.queue_ticket_id.is_not(None))
            )
            async with self._engine.connect() as connection:
                rows = [(await connection.execute(query)).one() for query in (filing, replies)]
            return tuple((int(row[0]), row[1], int(row[2])) for row in rows)

        try:
            filing, replies = await self._bounded(backlog())
        except Exception as error:  # any failure means "down"; the reason goes to the log
            logger.warning("health check: database unreachable", exc_info=True)
            return _down(error), {"status": "unknown"}, {"status": "unknown"}
        return {"status": "ok"}, self._backlog(*filing), self._backlog(*replies)

    def _backlog(self, count: int, oldest: datetime | None, refused: int) -> Json:
        age = (self._clock() - oldest).total_seconds() if oldest is not None else None
        late = age is not None and age > self._backlog_alert.total_seconds()
        return {
            # Refused for good: waiting for an operator and `frontdesk outbox retry`.
            "status": "refused" if refused else "late" if late else "ok",
            "backlog": count,
            "refused": refused,
            "oldest_seconds": round(age) if age is not None else None,
            "alert_after_seconds": round(self._backlog_alert.total_seconds()),
        }

    async def _redis_check(self) -> Json:
        if self._redis is None:
            return {"status": "unused"}
        try:
            await self._bounded(self._redis.ping())
        except Exception as error:
            logger.warning("health check: Redis unreachable", exc_info=True)
            return _down(error)
        return {"status": "ok"}

    def _queue_check(self) -> Json:
        status = self._queue.status()
        return {
            "status": status.state.value,
            "last_success_at": _at(status.last_success),
            "last_transient_error": _error(status.last_transient),
            "last_refusal": _error(status.last_refusal),
        }

    async def _bounded(self, check: Awaitable[T]) -> T:
        return await asyncio.wait_for(check, self._timeout)


def _down(error: BaseException) -> Json:
    # The exception's kind only: its text may carry a URL with credentials.
    return {"status": "down", "error": type(error).__name__}


def _at(outcome: QueueOutcome | None) -> str | None:
    return outcome.at.isoformat(timespec="seconds") if outcome is not None else None


def _error(outcome: QueueOutcome | None) -> Json | None:
    if outcome is None:
        return None
    return {"at": outcome.at.isoformat(timespec="seconds"), "error": outcome.error}


def create_health_check(settings: Settings, queue: QueueHealth) -> HealthCheck:
    redis = None
    if settings.redis_url:
        timeout = settings.health_timeout_seconds
        redis = Redis.from_url(
            settings.redis_url, socket_connect_timeout=timeout, socket_timeout=timeout
        )
    return HealthCheck(
        create_health_engine(settings.database_url, timeout=settings.health_timeout_seconds),
        redis,
        queue,
        timeout=settings.health_timeout_seconds,
        backlog_alert=timedelta(seconds=settings.filing_backlog_alert_seconds),
    )
