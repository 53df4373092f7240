"""The running application: resources built from Settings, then polling or the webhook server."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from dataclasses import dataclass
from datetime import timedelta

from aiogram import Bot, Dispatcher
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web
from pydantic import SecretStr
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

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
)
from bot.queue_events import QueueEventsEndpoint
from handlers.commands import set_commands
from services.db.engine import create_engine, create_sessionmaker, migrate
from services.filing import FilingWorker, RetryPolicy
from services.regulation import load_regulation
from services.sync import SyncWorker, TicketSync

logger = logging.getLogger(__name__)


@dataclass
class Application:
    settings: Settings
    engine: AsyncEngine
    bot: Bot
    dispatcher: Dispatcher
    filing: FilingWorker
    delivery: NoticeDelivery
    # The specialists' work coming back: /queue/events uses `sync`; `sync_worker` polls.
    sync: TicketSync
    sync_worker: SyncWorker | None


@asynccontextmanager
async def application(settings: Settings) -> AsyncIterator[Application]:
    regulation = load_regulation()  # bad data files stop start-up before anything connects
    engine = create_engine(settings.database_url)
    try:
        await migrate(engine)
        sessionmaker = create_sessionmaker(engine)
        storage, isolation = create_storage(settings, sessionmaker)
        queue = create_queue(settings, sessionmaker)
        i18n = create_i18n(settings)
        limiter = create_limiter(settings, sessionmaker)
        bot = create_bot(settings, limiter)
        delivery = NoticeDelivery(
            sessionmaker,
            bot,
            i18n,
            lease=timedelta(seconds=settings.delivery_lease_seconds),
            concurrency=settings.delivery_concurrency,
        )
        filing = FilingWorker(
            sessionmaker,
            queue,
            regulation,
            on_notice=delivery.wake,
            retry=RetryPolicy(
                base=timedelta(seconds=settings.filing_retry_base_seconds),
                cap=timedelta(seconds=settings.filing_retry_cap_seconds),
            ),
            lease=timedelta(seconds=settings.filing_lease_seconds),
        )
        dispatcher = create_dispatcher(
            settings,
            sessionmaker=sessionmaker,
            storage=storage,
            isolation=isolation,
            queue=queue,
            regulation=regulation,
            filing=filing,
            delivery=delivery,
            i18n=i18n,
        )

        async def on_startup(bot: Bot) -> None:
            await set_commands(bot, i18n)

        dispatcher.startup.register(on_startup)
        sync, sync_worker = create_sync(settings, sessionmaker, queue, delivery.wake)
        workers = [
            asyncio.create_task(filing.run(), name="filing-worker"),
            asyncio.create_task(delivery.run(), name="delivery-worker"),
        ]
        if sync_worker is not None:
            workers.append(asyncio.create_task(sync_worker.run(), name="sync-worker"))
        try:
            yield Application(
                settings, engine, bot, dispatcher, filing, delivery, sync, sync_worker
            )
        finally:
            for worker in workers:
                worker.cancel()
            for worker in workers:
                with suppress(asyncio.CancelledError):
                    await worker
            await queue.close()
            await isolation.close()
            await storage.close()
            await bot.session.close()
            await limiter.close()
    finally:
        await engine.dispose()


async def run_polling(settings: Settings) -> None:
    async with application(settings) as app, serving(build_web_app(app, webhook=False), settings):
        await poll(app, handle_signals=True)


async def poll(app: Application, *, handle_signals: bool) -> None:
    """Long polling until SIGTERM/SIGINT (with handle_signals) or `dispatcher.stop_polling()`."""
    # A webhook left over from a webhook deployment would make getUpdates fail (409).
    await app.bot.delete_webhook(drop_pending_updates=False)
    await app.dispatcher.start_polling(app.bot, handle_signals=handle_signals)


async def run_webhook(settings: Settings) -> None:
    if settings.webhook_url is None or settings.webhook_secret is None:
        raise SystemExit(
            "frontdesk: WEBHOOK_BASE_URL and WEBHOOK_SECRET are required for --webhook"
        )
    async with application(settings) as app, serving(build_web_app(app, webhook=True), settings):
        await set_webhook(app, settings.webhook_url, settings.webhook_secret)
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
    """The HTTP side, in both modes: /healthz and /queue/events always, the Telegram webhook in
    webhook mode."""
    web_app = web.Application()
    secret = app.settings.queue_events_secret
    QueueEventsEndpoint(app.sync, secret.get_secret_value() if secret else None).register(web_app)
    if webhook:
        webhook_secret = app.settings.webhook_secret
        SimpleRequestHandler(
            app.dispatcher,
            app.bot,
            secret_token=webhook_secret.get_secret_value() if webhook_secret else None,
        ).register(web_app, path=app.settings.webhook_path)
        setup_application(web_app, app.dispatcher, bot=app.bot)

    async def healthz(_request: web.Request) -> web.Response:
        try:
            async with app.engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
        except Exception:  # any failure means "not healthy"; the reason goes to the log
            logger.exception("health check: database unreachable")
            return web.json_response({"status": "unhealthy", "database": "down"}, status=503)
        return web.json_response({"status": "ok"})

    web_app.router.add_get("/healthz", healthz)
    return web_app


@asynccontextmanager
async def serving(web_app: web.Application, settings: Settings) -> AsyncIterator[None]:
    runner = web.AppRunner(web_app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, settings.web_host, settings.web_port).start()
    logger.info("HTTP server on %s:%s", settings.web_host, settings.web_port)
    try:
        yield
    finally:
        await runner.cleanup()
