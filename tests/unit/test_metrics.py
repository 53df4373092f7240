"""bot/metrics.py without a database: the names, the labels, a registry per application, and the
hooks the workers call."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import text

from bot.metrics import Metrics, update_type
from services.db.engine import create_engine
from services.queue.health import QueueHealth, QueueState


def _samples(metrics: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = metrics.exposition().decode()
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def test_every_metric_is_frontdesks_and_none_is_labelled_by_a_person_or_a_chat() -> None:
    metrics = Metrics()
    metrics.update_handled("message", 0.01)
    metrics.queue_error("transient")
    families = list(text_string_to_metric_families(metrics.exposition().decode()))
    names = {family.name for family in families}
    assert names >= {
        "frontdesk_updates",
        "frontdesk_update_handling_seconds",
        "frontdesk_tickets_accepted",
        "frontdesk_tickets_filed",
        "frontdesk_queue_errors",
        "frontdesk_outbox_depth",
        "frontdesk_outbox_oldest_age_seconds",
        "frontdesk_notification_lag_seconds",
        "frontdesk_telegram_retry_after",
        "frontdesk_sync_lag_seconds",
        "frontdesk_db_statements",
    }
    assert all(name.startswith("frontdesk_") for name in names)
    labels = {label for family in families for sample in family.samples for label in sample.labels}
    assert labels <= {"type", "kind", "outbox", "le"}


def test_each_application_counts_in_its_own_registry() -> None:
    first, second = Metrics(), Metrics()
    first.ticket_accepted()
    first.ticket_accepted()
    second.ticket_filed()
    assert _samples(first)[("frontdesk_tickets_accepted_total", ())] == 2
    assert _samples(second)[("frontdesk_tickets_accepted_total", ())] == 0
    assert _samples(second)[("frontdesk_tickets_filed_total", ())] == 1


def test_an_update_is_counted_by_type_and_timed() -> None:
    metrics = Metrics()
    metrics.update_handled("callback_query", 0.2)
    metrics.update_handled("callback_query", 0.02)
    samples = _samples(metrics)
    assert samples[("frontdesk_updates_total", (("type", "callback_query"),))] == 2
    key = (("type", "callback_query"),)
    assert samples[("frontdesk_update_handling_seconds_count", key)] == 2
    assert math.isclose(samples[("frontdesk_update_handling_seconds_sum", key)], 0.22)


def test_update_type_of_something_that_is_not_an_update_is_unknown() -> None:
    class Broken:
        @property
        def event_type(self) -> str:
            raise RuntimeError

    class Message:
        event_type = "message"

    assert update_type(Broken()) == "unknown"
    assert update_type(object()) == "unknown"
    assert update_type(Message()) == "message"


def test_queue_health_reports_each_failure_kind_and_not_found_leaves_the_state() -> None:
    metrics = Metrics()
    health = QueueHealth(on_error=metrics.queue_error)
    health.failed_transiently("ReadTimeout")
    health.failed_transiently("ReadTimeout")
    health.refused("QueueRejected: 401")
    health.not_found()
    assert health.status().state is QueueState.REFUSING
    health.succeeded()
    health.not_found()
    assert health.status().state is QueueState.OK
    samples = _samples(metrics)
    assert samples[("frontdesk_queue_errors_total", (("kind", "transient"),))] == 2
    assert samples[("frontdesk_queue_errors_total", (("kind", "refused"),))] == 1
    assert samples[("frontdesk_queue_errors_total", (("kind", "not_found"),))] == 2


def test_notification_lag_is_sent_minus_written() -> None:
    metrics = Metrics()
    written = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    metrics.notice_sent(written, written + timedelta(seconds=3))
    metrics.notice_sent(written, written + timedelta(seconds=0.5))
    samples = _samples(metrics)
    assert samples[("frontdesk_notification_lag_seconds_count", ())] == 2
    assert samples[("frontdesk_notification_lag_seconds_sum", ())] == 3.5
    assert samples[("frontdesk_notification_lag_seconds_bucket", (("le", "1.0"),))] == 1


def test_sync_lag_is_nan_until_a_round_then_the_seconds_since_the_last() -> None:
    now = [100.0]
    metrics = Metrics(monotonic=lambda: now[0])
    assert math.isnan(_samples(metrics)[("frontdesk_sync_lag_seconds", ())])
    metrics.sync_round()
    now[0] = 112.5
    assert _samples(metrics)[("frontdesk_sync_lag_seconds", ())] == 12.5


def test_telegram_429s_are_counted() -> None:
    metrics = Metrics()
    metrics.retry_after()
    assert _samples(metrics)[("frontdesk_telegram_retry_after_total", ())] == 1


async def test_every_statement_on_the_counted_engine_is_counted_and_none_elsewhere(
    tmp_path: Path,
) -> None:
    metrics = Metrics()
    counted = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'counted.db'}")
    other = create_engine(f"sqlite+aiosqlite:///{tmp_path / 'other.db'}")
    metrics.count_statements(counted)
    try:
        async with counted.connect() as connection:
            await connection.execute(text("SELECT 1"))
            await connection.execute(text("SELECT 2"))
        before = _samples(metrics)[("frontdesk_db_statements_total", ())]
        async with counted.connect() as connection:
            await connection.execute(text("SELECT 3"))
        async with other.connect() as connection:
            await connection.execute(text("SELECT 4"))
        assert before >= 2  # the SQLite engine's own PRAGMAs at connect may add some
        assert _samples(metrics)[("frontdesk_db_statements_total", ())] == before + 1
    finally:
        await counted.dispose()
        await other.dispose()
