"""GET /metrics: Prometheus metrics of one application, in the text exposition format.

A registry per application (never prometheus_client's global one), so several bots in one
process — the e2e tests — each count their own. Labels are low-cardinality only: an update's
type, an outbox's name, an error's kind; never a user, a chat or a text.

Counters and histograms move as things happen (the update middleware, the workers' callbacks);
the outbox gauges are read from the database when scraped: one COUNT and MIN(created_at) of the
pending rows per outbox, on a one-connection engine of their own (as /healthz), so a crowd
holding the main pool cannot stall a scrape.
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import ColumnElement, Select, event, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from bot.config import Settings
from services.db.base import utcnow
from services.db.engine import create_health_engine
from services.db.models import (
    FilingOutbox,
    Notice,
    NoticeState,
    ReplyOutbox,
    StaffActionOutbox,
    StaffNoteOutbox,
)

logger = logging.getLogger(__name__)

# Handling an update: most take tens of milliseconds; a Bot API call waiting out a limit, seconds.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
# A notice from written to sent: under a second when all is well, minutes when Telegram or the
# chat makes it wait, hours when a blocked chat comes back.
LAG_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 3600.0, 21600.0)


def _pending(table: Any, *pending: ColumnElement[bool]) -> Select[Any]:
    return select(func.count(table.id), func.min(table.created_at)).where(*pending)


def outbox_queries() -> dict[str, Select[Any]]:
    """COUNT and MIN(created_at) of each outbox's pending rows."""
    return {
        # A filed ticket's row is deleted; those refused for good stay, waiting for an operator.
        "filing": _pending(FilingOutbox),
        "notices": _pending(Notice, Notice.state == NoticeState.PENDING),
        "replies": _pending(ReplyOutbox, ReplyOutbox.done_at.is_(None)),
        "staff_notes": _pending(StaffNoteOutbox, StaffNoteOutbox.done_at.is_(None)),
        "staff_actions": _pending(StaffActionOutbox, StaffActionOutbox.done_at.is_(None)),
    }


OUTBOX_NAMES = ("filing", "notices", "replies", "staff_notes", "staff_actions")
# As services.queue.health.QueueHealth reports them.
QUEUE_ERROR_KINDS = ("transient", "refused", "not_found")


class Metrics:
    """The application's metrics. `engine` (its own, small) reads the outboxes at scrape time;
    without one the outbox gauges stay unset (unit tests)."""

    def __init__(
        self,
        engine: AsyncEngine | None = None,
        *,
        timeout: float = 5.0,
        clock: Callable[[], datetime] = utcnow,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._engine = engine
        self._timeout = timeout
        self._clock = clock
        self._monotonic = monotonic
        self._last_sync: float | None = None
        self.registry = registry = CollectorRegistry(auto_describe=True)
        self.updates = Counter(
            "frontdesk_updates",
            "Telegram updates handled, by type (message, callback_query, edited_message, …).",
            ["type"],
            registry=registry,
        )
        self.update_latency = Histogram(
            "frontdesk_update_handling_seconds",
            "Time to handle one update, from the dispatcher's outer middleware to its end.",
            ["type"],
            buckets=LATENCY_BUCKETS,
            registry=registry,
        )
        self.tickets_accepted = Counter(
            "frontdesk_tickets_accepted",
            "Tickets accepted from the wizard's Send (written with their filing order).",
            registry=registry,
        )
        self.tickets_filed = Counter(
            "frontdesk_tickets_filed",
            "Tickets registered in the queue by the filing worker.",
            registry=registry,
        )
        self.queue_errors = Counter(
            "frontdesk_queue_errors",
            "Failed calls to the ticket queue by the workers, by kind (transient, refused, "
            "not_found).",
            ["kind"],
            registry=registry,
        )
        for kind in QUEUE_ERROR_KINDS:  # at 0 from the start: a rate needs a first sample
            self.queue_errors.labels(kind=kind)
        self.outbox_depth = Gauge(
            "frontdesk_outbox_depth",
            "Rows waiting in an outbox (read at scrape time).",
            ["outbox"],
            registry=registry,
        )
        self.outbox_oldest_age = Gauge(
            "frontdesk_outbox_oldest_age_seconds",
            "Age of the oldest row waiting in an outbox; 0 when it is empty (read at scrape time).",
            ["outbox"],
            registry=registry,
        )
        self.notification_lag = Histogram(
            "frontdesk_notification_lag_seconds",
            "From a notice written to its last part sent to Telegram.",
            buckets=LAG_BUCKETS,
            registry=registry,
        )
        self.telegram_retry_after = Counter(
            "frontdesk_telegram_retry_after",
            "Bot API calls Telegram refused with 429 Too Many Requests (retry after).",
            registry=registry,
        )
        sync_lag = Gauge(
            "frontdesk_sync_lag_seconds",
            "Seconds since the sync worker's last successful round (NaN before the first one or "
            "without a sync worker).",
            registry=registry,
        )
        sync_lag.set_function(self._sync_lag)
        self.updates_duplicate = Counter(
            "frontdesk_updates_duplicate",
            "Updates Telegram sent again after they were handled (or while they were being "
            "handled), dropped (bot/update_dedupe.py).",
            registry=registry,
        )
        self.db_statements = Counter(
            "frontdesk_db_statements",
            "SQL statements sent on the application's engine (updates and workers; not the "
            "scrapes' and /healthz's own engines).",
            registry=registry,
        )
        self.scrape_errors = Counter(
            "frontdesk_metrics_scrape_errors",
            "Scrapes whose outbox gauges could not be read from the database.",
            registry=registry,
        )

    # --- hooks handed to the workers (plain callables: services never import this module) ----

    def ticket_accepted(self) -> None:
        self.tickets_accepted.inc()

    def ticket_filed(self) -> None:
        self.tickets_filed.inc()

    def queue_error(self, kind: str) -> None:
        self.queue_errors.labels(kind=kind).inc()

    def notice_sent(self, created_at: datetime, sent_at: datetime) -> None:
        self.notification_lag.observe(max((sent_at - created_at).total_seconds(), 0.0))

    def retry_after(self) -> None:
        self.telegram_retry_after.inc()

    def update_duplicate(self) -> None:
        self.updates_duplicate.inc()

    def sync_round(self) -> None:
        self._last_sync = self._monotonic()

    def count_statements(self, engine: AsyncEngine) -> None:
        """Counts every statement `engine` sends (an executemany once: one round trip)."""
        event.listen(engine.sync_engine, "before_cursor_execute", self._statement_sent)

    def _statement_sent(self, *_: Any) -> None:
        self.db_statements.inc()

    def update_handled(self, update_type: str, seconds: float) -> None:
        self.updates.labels(type=update_type).inc()
        self.update_latency.labels(type=update_type).observe(seconds)

    # --- scraping -------------------------------------------------------------------------------

    def _sync_lag(self) -> float:
        if self._last_sync is None:
            return math.nan
        return self._monotonic() - self._last_sync

    async def refresh(self) -> None:
        """The outbox gauges, from the database; on failure they keep their last values and
        frontdesk_metrics_scrape_errors counts it (the cause goes to the log)."""
        if self._engine is None:
            return
        try:
            rows = await asyncio.wait_for(self._read_outboxes(), self._timeout)
        except Exception:
            logger.warning("metrics: outboxes unreadable", exc_info=True)
            self.scrape_errors.inc()
            return
        now = self._clock()
        for name, (count, oldest) in rows.items():
            self.outbox_depth.labels(outbox=name).set(count)
            age = (now - oldest).total_seconds() if oldest is not None else 0.0
            self.outbox_oldest_age.labels(outbox=name).set(max(age, 0.0))

    async def _read_outboxes(self) -> dict[str, tuple[int, datetime | None]]:
        assert self._engine is not None
        rows: dict[str, tuple[int, datetime | None]] = {}
        async with self._engine.connect() as connection:
            for name, query in outbox_queries().items():
                row = (await connection.execute(query)).one()
                rows[name] = (int(row[0]), row[1])
        return rows

    def exposition(self) -> bytes:
        return generate_latest(self.registry)

    async def handle(self, _request: web.Request) -> web.Response:
        await self.refresh()
        response = web.Response(body=self.exposition())
        response.headers["Content-Type"] = CONTENT_TYPE_LATEST
        return response

    async def close(self) -> None:
        if self._engine is not None:
            await self._engine.dispose()


def create_metrics(settings: Settings) -> Metrics:
    timeout = settings.health_timeout_seconds
    return Metrics(create_health_engine(settings.database_url, timeout=timeout), timeout=timeout)


def update_type(event: Any) -> str:
    """The update's kind (aiogram's Update.event_type), 'unknown' for anything else."""
    try:
        kind = event.event_type
    except Exception:  # an update of a type aiogram does not know
        return "unknown"
    return kind if isinstance(kind, str) else "unknown"
