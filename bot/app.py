"""The running application: resources built from Settings, then polling or the webhook server."""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import AsyncExitStack, asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta

from aiogram import Bot, Dispatcher
from aiogram.exceptions import TelegramBadRequest
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from pydantic import SecretStr
from redis.asyncio import Redis
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot import startup
from bot.api import PlatformApi
from bot.config import Settings
from bot.delivery import NoticeDelivery
from bot.factories import (
    create_bot,
    create_dispatcher,
    create_i18n,
    create_limiter,
    create_queue,
    create_storage,
    create_sync,
    create_ticket_url,
)
from bot.health import HealthCheck, create_health_check
from bot.metrics import Metrics, create_metrics
from bot.process_lock import POLLER_LEASE, RedisLease, bot_id, polling_lease
from bot.queue_events import QueueEventsEndpoint
from bot.redis_fsm import create_redis
from bot.telegram_files import TelegramFileSource
from bot.update_dedupe import MemoryClaims, RedisClaims, UpdateClaims
from bot.wake_bus import NoWorker, WakeBus
from handlers.callback_answers import answers_in_response
from handlers.commands import set_commands
from services.db.engine import alembic_config, create_engine, create_sessionmaker, migrate
from services.filing import FilingWorker
from services.leases import Lease, SqlLease
from services.outbox import RetryPolicy
from services.queue.health import QueueHealth
from services.regulation import load_regulation
from services.replies import ReplyWorker
from services.rounds import Waker
from services.sla_watch import SlaWatch
from services.staff_actions import StaffActionWorker
from services.staff_notes import StaffNoteWorker
from services.sync import SyncWorker, TicketSync

logger = logging.getLogger(__name__)

POLLING_BACKLOG_FACTOR = 4


@dataclass
class Application:
    settings: Settings
    engine: AsyncEngine
    bot: Bot
    dispatcher: Dispatcher
    filing: FilingWorker
    delivery: NoticeDelivery
    # The merchant's replies, corrections, closes and reopens on their way to the queue.
    replies: ReplyWorker
    # The specialists' work coming back: /queue/events uses `sync`; `sync_worker` polls.
    sync: TicketSync
    sync_worker: SyncWorker | None
    # What the queue last answered the filing worker (its outcomes go in), and /healthz.
    queue_health: QueueHealth
    health: HealthCheck
    # Internal notes owed to tickets (a merchant out of reach in Telegram).
    staff_notes: StaffNoteWorker
    # Warnings to the specialists before (and at) a first-reaction deadline.
    sla_watch: SlaWatch
    # The specialists' actions from Telegram on their way to the queue.
    staff_actions: StaffActionWorker
    # GET /metrics (bot/metrics.py): the dispatcher, the Bot and the workers report to it.
    metrics: Metrics
    # Whether this process runs the background loops above (RUN_WORKERS, `frontdesk worker`);
    # if not, they run in other processes and the objects here only take their wakes.
    runs_workers: bool = True


async def prepare_schema(engine: AsyncEngine, settings: Settings) -> None:
    """Migrate at start (MIGRATE_ON_START, the default), or only check that `frontdesk migrate`
    has brought the schema to the revision this code needs: with several processes the upgrade
    is a step of its own, run once before the new version rolls out (docs/deploy.md)."""
    if settings.migrate_on_start:
        await migrate(engine)
        return

    def current(connection: Connection) -> set[str]:
        return set(MigrationContext.configure(connection).get_current_heads())

    async with engine.connect() as connection:
        revisions = await connection.run_sync(current)
    needed = set(ScriptDirectory.from_config(alembic_config()).get_heads())
    if revisions != needed:
        found = ", ".join(sorted(revisions)) or "none (an empty database)"
        raise startup.StartupError(
            "MIGRATE_ON_START",
            f"the database's schema is at revision {found}, this version needs "
            f"{', '.join(sorted(needed))}",
            "run `frontdesk migrate` first (or set MIGRATE_ON_START=true)",
        )


@asynccontextmanager
async def application(
    settings: Settings, *, workers: bool | None = None, polling: bool = False
) -> AsyncIterator[Application]:
    """Everything the bot is made of; the background loops run in it when `workers` (default
    RUN_WORKERS). Without them the handlers' wakes go to the workers of other processes
    through Redis (bot/wake_bus.py), or nowhere: those workers poll. With `polling`, the bot's
    poller lease is taken first (bot/process_lock.py): a second poller stops here, before its
    loops could claim a row they would leave held when it exits."""
    run_workers = settings.run_workers if workers is None else workers
    regulation = load_regulation(
        intake=settings.intake
    )  # bad data files stop start-up before anything connects
    startup.check_staff_groups(settings, regulation)
    engine = create_engine(
        settings.database_url,
        pool_size=settings.database_pool_size,
        max_overflow=settings.database_max_overflow,
        pool_timeout=settings.database_pool_timeout_seconds,
    )
    # Shared by every process: the handled updates, the leases and the wake channel.
    # One client (a blocking pool of REDIS_POOL_SIZE) for the FSM and the chat locks too.
    redis = (
        create_redis(
            settings.redis_url,
            pool_size=settings.redis_pool_size,
            pool_timeout=settings.redis_pool_timeout_seconds,
        )
        if settings.redis_url
        else None
    )
    try:
        await prepare_schema(engine, settings)
        sessionmaker = create_sessionmaker(engine)
        storage, isolation = create_storage(settings, sessionmaker, redis)
        queue = create_queue(settings, sessionmaker)
        ticket_url = create_ticket_url(settings, queue)
        i18n = create_i18n(settings)
        limiter = create_limiter(settings, sessionmaker)
        metrics = create_metrics(settings)
        metrics.count_statements(engine)
        bot = create_bot(settings, limiter, on_retry_after=metrics.retry_after)
        wake_bus = WakeBus(redis, f"{settings.redis_key_prefix}:wake") if redis else None
        delivery = NoticeDelivery(
            sessionmaker,
            bot,
            i18n,
            lease=timedelta(seconds=settings.delivery_lease_seconds),
            concurrency=settings.delivery_concurrency,
            on_sent=metrics.notice_sent,
        )

        def waker(name: str, local: Waker) -> Waker:
            """What wakes worker `name`: itself when it runs here, else its announcer."""
            if run_workers:
                return local
            return wake_bus.announcer(name) if wake_bus else NoWorker()

        wake_delivery = waker("delivery", delivery)
        # The filing worker reports each outcome of the queue here: succeeded(),
        # failed_transiently(error) or refused(error); /healthz reads it.
        queue_health = QueueHealth(on_error=metrics.queue_error)
        health = create_health_check(settings, queue_health)
        # Same retry and lease settings as filing: the same queue behind both.
        replies = ReplyWorker(
            sessionmaker,
            queue,
            TelegramFileSource(bot),
            on_notice=delivery.wake,
            health=queue_health,
            retry=RetryPolicy(
                base=timedelta(seconds=settings.filing_retry_base_seconds),
                cap=timedelta(seconds=settings.filing_retry_cap_seconds),
            ),
            lease=timedelta(seconds=settings.filing_lease_seconds),
        )

        staff_notes = StaffNoteWorker(
            sessionmaker,
            queue,
            health=queue_health,
            retry=RetryPolicy(
                base=timedelta(seconds=settings.filing_retry_base_seconds),
                cap=timedelta(seconds=settings.filing_retry_cap_seconds),
            ),
            lease=timedelta(seconds=settings.filing_lease_seconds),
        )

        staff_actions = StaffActionWorker(
            sessionmaker,
            queue,
            TelegramFileSource(bot),
            labels=regulation.labels,
            on_notice=delivery.wake,
            health=queue_health,
            retry=RetryPolicy(
                base=timedelta(seconds=settings.filing_retry_base_seconds),
                cap=timedelta(seconds=settings.filing_retry_cap_seconds),
            ),
            lease=timedelta(seconds=settings.filing_lease_seconds),
        )

        def registered() -> None:
            delivery.wake()
            replies.wake()  # the replies that waited for the registration go now
            staff_notes.wake()

        on_accepted = metrics.ticket_accepted
        if not run_workers and wake_bus is not None:
            # The wizard's Send wakes the filing worker (FilingWorker.accepted): the others'.
            on_accepted = _both(on_accepted, wake_bus.announcer("filing").wake)
        filing = FilingWorker(
            sessionmaker,
            queue,
            regulation,
            files=TelegramFileSource(bot),
            ticket_url=ticket_url,
            staff_groups=settings.staff_groups,
            on_notice=registered,
            on_accepted=on_accepted,
            on_filed=metrics.ticket_filed,
            health=queue_health,
            retry=RetryPolicy(
                base=timedelta(seconds=settings.filing_retry_base_seconds),
                cap=timedelta(seconds=settings.filing_retry_cap_seconds),
            ),
            lease=timedelta(seconds=settings.filing_lease_seconds),
        )
        claims: UpdateClaims = (
            RedisClaims(
                redis,
                f"{settings.redis_key_prefix}:update:{bot_id(settings.bot_token.get_secret_value())}",
                ttl=settings.update_dedupe_seconds,
            )
            if redis
            else MemoryClaims(ttl=settings.update_dedupe_seconds)
        )
        dispatcher = create_dispatcher(
            settings,
            sessionmaker=sessionmaker,
            storage=storage,
            isolation=isolation,
            queue=queue,
            regulation=regulation,
            filing=filing,
            delivery=wake_delivery,
            i18n=i18n,
            replies=waker("replies", replies),
            staff_actions=waker("staff_actions", staff_actions),
            flood_storage=limiter.storage,
            metrics=metrics,
            update_claims=claims,
        )

        async def on_startup(bot: Bot) -> None:
            await set_commands(bot, i18n)

        dispatcher.startup.register(on_startup)
        sync, sync_worker = create_sync(
            settings,
            sessionmaker,
            queue,
            wake_delivery.wake,
            regulation,
            on_round=metrics.sync_round,
            lease=_lease(
                settings,
                sessionmaker,
                redis,
                f"sync:{queue.name}",
                # Renewed every round: a holder that died is replaced within three intervals.
                ttl=timedelta(seconds=max(3 * settings.sync_interval_seconds, 10)),
            ),
        )
        sla_watch = SlaWatch(
            sessionmaker,
            ticket_url=ticket_url,
            default_locale=settings.default_locale,
            on_notice=delivery.wake,
            idle_interval=settings.sla_watch_interval_seconds,
        )
        exits = AsyncExitStack()
        loops: list[asyncio.Task[None]] = []
        try:
            if polling:
                poller = _lease(
                    settings,
                    sessionmaker,
                    redis,
                    f"poller:{bot_id(settings.bot_token.get_secret_value())}",
                    ttl=POLLER_LEASE,
                )
                await exits.enter_async_context(
                    polling_lease(poller, on_lost=lambda: _stop_polling(dispatcher))
                )
            if run_workers:
                loops = [
                    asyncio.create_task(filing.run(), name="filing-worker"),
                    asyncio.create_task(replies.run(), name="reply-worker"),
                    asyncio.create_task(staff_notes.run(), name="staff-note-worker"),
                    asyncio.create_task(staff_actions.run(), name="staff-action-worker"),
                    asyncio.create_task(delivery.run(), name="delivery-worker"),
                    asyncio.create_task(sla_watch.run(), name="sla-watch"),
                ]
                if sync_worker is not None:
                    loops.append(asyncio.create_task(sync_worker.run(), name="sync-worker"))
                if wake_bus is not None:
                    # The webhook processes without workers announce their work here.
                    local = {
                        "delivery": delivery.wake,
                        "filing": filing.wake,
                        "replies": replies.wake,
                        "staff_actions": staff_actions.wake,
                    }
                    loops.append(asyncio.create_task(wake_bus.listen(local), name="wake-bus"))
            # Everything built so far (~320,000 objects: aiogram's and pydantic's types,
            # SQLAlchemy's metadata, the catalogs) lives as long as the process, so the garbage
            # collector need not walk it again. Measured under the load benchmark (N = 50): a
            # full collection took ~230 ms unfrozen (a pause for every update in flight) and
            # ~20 ms frozen; all collections, 1.7 ms per update on average against 0.6 ms.
            gc.freeze()
            yield Application(
                settings=settings,
                engine=engine,
                bot=bot,
                dispatcher=dispatcher,
                filing=filing,
                delivery=delivery,
                replies=replies,
                sync=sync,
                sync_worker=sync_worker,
                queue_health=queue_health,
                health=health,
                staff_notes=staff_notes,
                sla_watch=sla_watch,
                staff_actions=staff_actions,
                metrics=metrics,
                runs_workers=run_workers,
            )
        finally:
            gc.unfreeze()  # what this application held can be collected once it is gone
            for loop in loops:
                loop.cancel()
            for loop in loops:
                with suppress(asyncio.CancelledError):
                    await loop
            await exits.aclose()  # the poller's lease, once nothing polls
            if wake_bus is not None:
                await wake_bus.close()
            await queue.close()
            await isolation.close()
            await storage.close()
            await bot.session.close()
            await limiter.close()
            await health.close()
            await metrics.close()
    finally:
        if redis is not None:
            await redis.aclose()
        await engine.dispose()


async def _stop_polling(dispatcher: Dispatcher) -> None:
    with suppress(RuntimeError):  # not polling (yet, or any more)
        await dispatcher.stop_polling()


def _both(*calls: Callable[[], None]) -> Callable[[], None]:
    def call() -> None:
        for each in calls:
            each()

    return call


def _lease(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    redis: Redis | None,
    name: str,
    *,
    ttl: timedelta,
) -> Lease:
    """A lease in Redis when there is one (the key under REDIS_KEY_PREFIX), else in the
    database (process_leases)."""
    if redis is not None:
        return RedisLease(redis, f"{settings.redis_key_prefix}:lease:{name}", ttl=ttl)
    return SqlLease(sessionmaker, name, ttl=ttl)


async def run_polling(settings: Settings) -> None:
    """`frontdesk run`, after bot.startup.check: refused if another process polls this bot."""
    async with (
        application(settings, polling=True) as app,
        serving(build_web_app(app, webhook=False), settings),
    ):
        await poll(app, handle_signals=True)


async def poll(app: Application, *, handle_signals: bool) -> None:
    """Long polling until SIGTERM/SIGINT (with handle_signals) or `dispatcher.stop_polling()`."""
    # A webhook left over from a webhook deployment would make getUpdates fail (409).
    await app.bot.delete_webhook(drop_pending_updates=False)
    await app.dispatcher.start_polling(
        app.bot,
        handle_signals=handle_signals,
        # Updates taken from Telegram at once: those beyond it wait there, not in memory.
        # Headroom over the handling limit, as a chat's later updates wait for its earlier
        # ones (aiogram's per-chat lock) without taking a handling slot.
        tasks_concurrency_limit=POLLING_BACKLOG_FACTOR * app.settings.update_concurrency,
    )


async def run_webhook(settings: Settings) -> None:
    """`frontdesk run --webhook`, after bot.startup.check. Any number of these processes may
    serve one bot (WEB_REUSE_PORT, or a reverse proxy in front: docs/deploy.md)."""
    if settings.webhook_url is None or settings.webhook_secret is None:
        raise startup.StartupError(
            "WEBHOOK_BASE_URL", "is required for --webhook", "set it, and WEBHOOK_SECRET"
        )
    async with application(settings) as app, serving(build_web_app(app, webhook=True), settings):
        try:
            await set_webhook(app, settings.webhook_url, settings.webhook_secret)
        except TelegramBadRequest as error:  # e.g. not https, or a port Telegram does not call
            raise startup.StartupError(
                "WEBHOOK_BASE_URL",
                f"Telegram refused the webhook {settings.webhook_url}: {error.message}",
                "give a public https address (port 443, 80, 88 or 8443)",
            ) from error
        await _until_signalled()


async def run_worker(settings: Settings) -> None:
    """`frontdesk worker`, after bot.startup.check: the background loops only, with /healthz
    and /metrics; any number of these beside the webhook processes (RUN_WORKERS=false)."""
    async with (
        application(settings, workers=True) as app,
        serving(build_worker_web_app(app), settings),
    ):
        logger.info("worker running: filing, replies, notes, staff actions, delivery, SLA, sync")
        await _until_signalled()


async def _until_signalled() -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()


async def set_webhook(app: Application, url: str, secret: SecretStr) -> None:
    await app.bot.set_webhook(
        url,
        secret_token=secret.get_secret_value(),
        allowed_updates=app.dispatcher.resolve_used_update_types(),
    )
    logger.info("Telegram calls %s", url)


def build_web_app(app: Application, *, webhook: bool) -> web.Application:
    """The HTTP side, in both modes: /healthz, /metrics, /queue/events and the platform's /api/*
    always, the Telegram webhook in webhook mode."""
    web_app = web.Application()
    secret = app.settings.queue_events_secret
    QueueEventsEndpoint(app.sync, secret.get_secret_value() if secret else None).register(web_app)
    if webhook:
        webhook_secret = app.settings.webhook_secret
        WebhookHandler(
            app.dispatcher,
            app.bot,
            secret_token=webhook_secret.get_secret_value() if webhook_secret else None,
            handle_in_background=False,
        ).register(web_app, path=app.settings.webhook_path)
        setup_application(web_app, app.dispatcher, bot=app.bot)

    web_app.router.add_get("/healthz", app.health.handle)
    web_app.router.add_get("/metrics", app.metrics.handle)
    _platform_api(app).register(web_app)
    return web_app


def build_worker_web_app(app: Application) -> web.Application:
    """A worker's HTTP side: /healthz and /metrics, to be checked and scraped like the others."""
    web_app = web.Application()
    web_app.router.add_get("/healthz", app.health.handle)
    web_app.router.add_get("/metrics", app.metrics.handle)
    return web_app


class WebhookHandler(SimpleRequestHandler):
    """Telegram's webhook, answered once the update is handled, so that the response can carry
    a method Telegram then carries out (a press's answer: handlers/callback_answers.py), one Bot
    API call fewer. aiogram moves an update still running after 55 s to the background."""

    async def handle(self, request: web.Request) -> web.Response:
        token = answers_in_response.set(True)
        try:
            return await super().handle(request)
        finally:
            answers_in_response.reset(token)


def _platform_api(app: Application) -> PlatformApi:
    settings = app.settings
    key = settings.platform_api_key

    async def bot_username() -> str:
        # BOT_USERNAME, else what Telegram says (aiogram caches getMe after the first call).
        return settings.bot_username or (await app.bot.me()).username or ""

    return PlatformApi(
        create_sessionmaker(app.engine),
        api_key=key.get_secret_value() if key else None,
        plans=app.dispatcher["regulation"].policies.plans,
        link_ttl=timedelta(seconds=settings.link_ttl_seconds),
        bot_username=bot_username,
    )


@asynccontextmanager
async def serving(web_app: web.Application, settings: Settings) -> AsyncIterator[None]:
    runner = web.AppRunner(web_app, handle_signals=False)
    await runner.setup()
    try:
        await web.TCPSite(
            runner, settings.web_host, settings.web_port, reuse_port=settings.web_reuse_port or None
        ).start()
    except OSError as error:  # taken since the start-up check, or never checked (tests)
        await runner.cleanup()
        raise startup.port_error(settings, error) from error
    logger.info("HTTP server on %s:%s", settings.web_host, settings.web_port)
    try:
        yield
    finally:
        await runner.cleanup()
