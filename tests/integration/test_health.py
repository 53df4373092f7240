"""/healthz's verdicts (bot/health.py): unhealthy only when a store is down, degraded when the
queue refuses or the filing backlog is too old, each part reported on its own."""

from __future__ import annotations

from datetime import timedelta

from redis.asyncio import Redis
from sqlalchemy import update
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.health import HealthCheck
from services import merchants, tickets
from services.db.base import utcnow
from services.db.engine import create_health_engine
from services.db.models import FilingOutbox
from services.filing import retry_refused
from services.queue.health import QueueHealth
from services.regulation import load_regulation
from services.tickets import Draft
from tests.e2e.bot_process import free_port
from tests.helpers.databases import REDIS_URL

ALERT = timedelta(minutes=10)


def health_of(
    engine: AsyncEngine,
    *,
    redis: Redis | None = None,
    queue: QueueHealth | None = None,
    later: timedelta = timedelta(0),
) -> HealthCheck:
    return HealthCheck(
        engine,
        redis,
        queue or QueueHealth(),
        timeout=2,
        backlog_alert=ALERT,
        clock=lambda: utcnow() + later,
    )


async def accept_a_request(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    catalog = load_regulation().catalog
    async with sessionmaker() as session:
        merchant = await merchants.get_or_register(
            session, telegram_id=1001, full_name="Анна", username=None
        )
        await tickets.submit(
            session,
            catalog,
            merchant,
            Draft("technical", "system_error", "Ошибка 500", "Видна ошибка 500 при оплате."),
            reference="ref-health-1",
            locale="ru",
            queue_name="builtin",
        )


async def test_all_well_reads_ok_with_each_part_reported(
    engine: AsyncEngine, database_url: str
) -> None:
    health = health_of(create_health_engine(database_url, timeout=2))
    try:
        code, body = await health.report()
    finally:
        await health.close()
    assert code == 200
    assert body == {
        "status": "ok",
        "checks": {
            "database": {"status": "ok"},
            "redis": {"status": "unused"},
            "queue": {
                "status": "ok",
                "last_success_at": None,
                "last_transient_error": None,
                "last_refusal": None,
            },
            "filing": {
                "status": "ok",
                "backlog": 0,
                "refused": 0,
                "oldest_seconds": None,
                "alert_after_seconds": 600,
            },
            "replies": {
                "status": "ok",
                "backlog": 0,
                "refused": 0,
                "oldest_seconds": None,
                "alert_after_seconds": 600,
            },
        },
    }


async def test_a_ticket_the_queue_has_not_taken_for_too_long_is_degraded_not_down(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    await accept_a_request(sessionmaker)
    fresh = health_of(create_health_engine(database_url, timeout=2))
    stale = health_of(create_health_engine(database_url, timeout=2), later=ALERT * 1.5)
    try:
        code, body = await fresh.report()
        assert (code, body["status"], body["checks"]["filing"]["backlog"]) == (200, "ok", 1)
        code, body = await stale.report()
    finally:
        await fresh.close()
        await stale.close()
    assert code == 200
    assert body["status"] == "degraded"
    filing = body["checks"]["filing"]
    assert filing["status"] == "late" and filing["backlog"] == 1
    assert filing["oldest_seconds"] >= ALERT.total_seconds()


async def test_tickets_the_queue_refused_for_good_keep_health_degraded_until_re_driven(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    await accept_a_request(sessionmaker)
    async with sessionmaker.begin() as session:
        await session.execute(update(FilingOutbox).values(refused_at=utcnow()))
    health = health_of(create_health_engine(database_url, timeout=2))
    try:
        code, body = await health.report()
        assert (code, body["status"]) == (200, "degraded")
        assert body["checks"]["filing"]["status"] == "refused"
        assert body["checks"]["filing"]["refused"] == 1
        # The operator fixed the cause and ran `frontdesk outbox retry`.
        async with sessionmaker() as session:
            assert await retry_refused(session) == 1
        code, body = await health.report()
    finally:
        await health.close()
    assert (code, body["status"], body["checks"]["filing"]["refused"]) == (200, "ok", 0)


async def test_a_queue_that_refuses_is_degraded_until_it_takes_a_ticket_again(
    engine: AsyncEngine, database_url: str
) -> None:
    queue = QueueHealth()
    health = health_of(create_health_engine(database_url, timeout=2), queue=queue)
    try:
        queue.failed_transiently("QueueUnavailable: timeout")
        code, body = await health.report()
        assert (code, body["status"], body["checks"]["queue"]["status"]) == (200, "ok", "failing")
        queue.refused("QueueRejected: 403 Forbidden")
        queue.failed_transiently("QueueUnavailable: timeout")  # does not hide the refusal
        code, body = await health.report()
        assert (code, body["status"], body["checks"]["queue"]["status"]) == (
            200,
            "degraded",
            "refusing",
        )
        assert body["checks"]["queue"]["last_refusal"]["error"] == "QueueRejected: 403 Forbidden"
        queue.succeeded()
        code, body = await health.report()
    finally:
        await health.close()
    assert (code, body["status"], body["checks"]["queue"]["status"]) == (200, "ok", "ok")


async def test_a_database_that_cannot_be_reached_is_unhealthy() -> None:
    url = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/frontdesk"
    health = health_of(create_health_engine(url, timeout=1))
    try:
        code, body = await health.report()
    finally:
        await health.close()
    assert code == 503
    assert body["status"] == "unhealthy"
    assert body["checks"]["database"]["status"] == "down"
    assert body["checks"]["filing"] == {"status": "unknown"}


async def test_redis_is_checked_when_configured_and_down_is_unhealthy(
    engine: AsyncEngine, database_url: str, redis_prefix: str
) -> None:
    up = health_of(create_health_engine(database_url, timeout=2), redis=Redis.from_url(REDIS_URL))
    down = health_of(
        create_health_engine(database_url, timeout=2),
        redis=Redis.from_url(f"redis://127.0.0.1:{free_port()}/0", socket_connect_timeout=1),
    )
    try:
        code, body = await up.report()
        assert (code, body["status"], body["checks"]["redis"]) == (200, "ok", {"status": "ok"})
        code, body = await down.report()
    finally:
        await up.close()
        await down.close()
    assert code == 503
    assert body["status"] == "unhealthy"
    assert body["checks"]["redis"] == {"status": "down", "error": "ConnectionError"}
    assert body["checks"]["database"] == {"status": "ok"}


async def test_a_reply_the_queue_refused_for_good_keeps_health_degraded_until_re_driven(
    engine: AsyncEngine, sessionmaker: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    from datetime import UTC, datetime

    from services import replies
    from services.db.models import ReplyOutbox, Ticket
    from services.queue.base import QueueRejected
    from services.queue.builtin import BuiltinQueue
    from tests.helpers.filing import Clock, filing_worker, register_merchant, submit_request
    from tests.helpers.replies import FakeFiles, reply_worker

    class Refusing(BuiltinQueue):
        async def add_comment(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            raise QueueRejected("RT answered POST correspond with 403")

    clock = Clock(datetime.now(UTC) + timedelta(seconds=5))
    queue = Refusing(sessionmaker)
    filed = await submit_request(sessionmaker, "health-reply")
    assert await filing_worker(sessionmaker, queue, clock).run_once() == 1
    async with sessionmaker() as session:
        merchant = await register_merchant(session)
        await replies.add_reply(session, merchant=merchant, ticket_id=filed.id, key="h", text="x")
        assert (await session.get_one(Ticket, filed.id)).queue_ticket_id
    health = health_of(create_health_engine(database_url, timeout=2))
    try:
        code, body = await health.report()
        assert (code, body["status"], body["checks"]["replies"]["backlog"]) == (200, "ok", 1)
        assert await reply_worker(sessionmaker, queue, FakeFiles(), clock).run_once() == 1
        code, body = await health.report()
        assert (code, body["status"]) == (200, "degraded")
        assert body["checks"]["replies"]["status"] == "refused"
        async with sessionmaker.begin() as session:
            await session.execute(update(ReplyOutbox).values(done_at=utcnow()))
        code, body = await health.report()
    finally:
        await health.close()
    assert (code, body["status"], body["checks"]["replies"]["backlog"]) == (200, "ok", 0)
