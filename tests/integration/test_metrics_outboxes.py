"""The outbox gauges of /metrics, read from the database at scrape time: how many rows wait in
each outbox, and how old the oldest is."""

from __future__ import annotations

from datetime import timedelta

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.metrics import OUTBOX_NAMES, Metrics
from services.db.base import utcnow
from services.db.engine import create_health_engine
from tests.integration.test_health import accept_a_request


def _gauges(metrics: Metrics, name: str) -> dict[str, float]:
    text = metrics.exposition().decode()
    return {
        sample.labels["outbox"]: sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name
    }


async def test_empty_outboxes_read_zero(engine: AsyncEngine, database_url: str) -> None:
    metrics = Metrics(create_health_engine(database_url, timeout=2))
    try:
        await metrics.refresh()
    finally:
        await metrics.close()
    assert _gauges(metrics, "frontdesk_outbox_depth") == dict.fromkeys(OUTBOX_NAMES, 0.0)
    assert _gauges(metrics, "frontdesk_outbox_oldest_age_seconds") == dict.fromkeys(
        OUTBOX_NAMES, 0.0
    )


async def test_an_accepted_request_waits_in_the_filing_and_notice_outboxes(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    await accept_a_request(sessionmaker)  # its filing order and its "accepted" notice
    metrics = Metrics(
        create_health_engine(database_url, timeout=2),
        clock=lambda: utcnow() + timedelta(minutes=5),
    )
    try:
        await metrics.refresh()
    finally:
        await metrics.close()
    depth = _gauges(metrics, "frontdesk_outbox_depth")
    age = _gauges(metrics, "frontdesk_outbox_oldest_age_seconds")
    assert depth["filing"] == 1 and depth["notices"] == 1 and depth["replies"] == 0
    assert 300 <= age["filing"] < 330
    assert 300 <= age["notices"] < 330
    assert age["replies"] == 0


async def test_an_unreadable_database_keeps_the_gauges_and_counts_the_failed_scrape(
    tmp_path,  # type: ignore[no-untyped-def]
) -> None:
    # A directory is no SQLite database: every query fails.
    metrics = Metrics(create_health_engine(f"sqlite+aiosqlite:///{tmp_path}", timeout=1))
    try:
        await metrics.refresh()
    finally:
        await metrics.close()
    text = metrics.exposition().decode()
    assert "frontdesk_metrics_scrape_errors_total 1.0" in text
