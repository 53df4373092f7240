"""GET /healthz: the database, Redis, the queue and the filing backlog, each reported on its own.

    {"status": "ok" | "degraded" | "unhealthy",
     "checks": {"database": {...}, "redis": {...}, "queue": {...}, "filing": {...}}}

Unhealthy (HTTP 503: restart or reroute me) only when a store the bot cannot work without is
down: the database, or Redis when REDIS_URL is set. Degraded (HTTP 200: alert an operator, a
restart would not help) when the queue refuses permanently — as the filing worker last heard it,
or as tickets it refused wait in the outbox for `frontdesk outbox retry` — or when the oldest
unfiled ticket waits longer than FILING_BACKLOG_ALERT_SECONDS. The checks use connections of
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
from services.db.models import FilingOutbox
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
        (database, filing), redis = await asyncio.gather(self._database(), self._redis_check())
        queue = self._queue_check()
        if database["status"] != "ok" or redis["status"] == "down":
            status, code = "unhealthy", 503
        elif queue["status"] == QueueState.REFUSING or filing["status"] != "ok":
            status, code = "degraded", 200
        else:
            status, code = "ok", 200
        checks = {"database": database, "redis": redis, "queue": queue, "filing": filing}
        return code, {"status": status, "checks": checks}

    async def handle(self, _request: web.Request) -> web.Response:
        code, body = await self.report()
        return web.json_response(body, status=code)

    async def close(self) -> None:
        if self._redis is not None:
            await self._redis.aclose()
        await self._engine.dispose()

    async def _database(self) -> tuple[Json, Json]:
        """One cheap query answers both: is the database there, and how old is the backlog."""

        async def backlog() -> tuple[int, datetime | None, int]:
            query = select(
                func.count(FilingOutbox.id),
                func.min(FilingOutbox.created_at),
                func.count(FilingOutbox.refused_at),
            )
            async with self._engine.connect() as connection:
                row = (await connection.execute(query)).one()
            return int(row[0]), row[1], int(row[2])

        try:
            count, oldest, refused = await self._bounded(backlog())
        except Exception as error:  # any failure means "down"; the reason goes to the log
            logger.warning("health check: database unreachable", exc_info=True)
            return _down(error), {"status": "unknown"}
        age = (self._clock() - oldest).total_seconds() if oldest is not None else None
        late = age is not None and age > self._backlog_alert.total_seconds()
        filing = {
            # Refused for good: waiting for an operator and `frontdesk outbox retry`.
            "status": "refused" if refused else "late" if late else "ok",
            "backlog": count,
            "refused": refused,
            "oldest_seconds": round(age) if age is not None else None,
            "alert_after_seconds": round(self._backlog_alert.total_seconds()),
        }
        return {"status": "ok"}, filing

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
