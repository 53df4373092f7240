"""Factories: everything is built from Settings, nothing at import time."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from urllib.parse import quote

from aiogram import Bot, Dispatcher
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage, DefaultKeyBuilder
from aiogram.utils.i18n import I18n
from limits.aio.storage import RedisStorage as LimitsRedisStorage
from limits.aio.storage import Storage as LimitsStorage
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import QueueKind, Settings, locales_dir
from bot.flood import FloodControlMiddleware
from bot.fsm_storage import SQLStorage
from bot.inline_filters import run_filters_inline
from bot.metrics import Metrics
from bot.middlewares import (
    ConcurrencyLimitMiddleware,
    DbSessionMiddleware,
    LocaleMiddleware,
    MerchantMiddleware,
    UpdateMetricsMiddleware,
)
from bot.redis_fsm import ChatLocks, CompactRedisStorage
from bot.telegram_limits import (
    RetryBudget,
    TelegramLimiter,
    TelegramLimitsMiddleware,
    TelegramRates,
)
from bot.telegram_session import PinnedResponsesSession
from bot.transactions import ShortTransactionsMiddleware
from bot.update_dedupe import UpdateClaims, UpdateDedupeMiddleware
from handlers import get_routers
from handlers.callback_answers import AnswerInResponse, CallbackAnswers
from handlers.my_tickets.content import Albums
from services.assignments import TicketUrl
from services.filing import FilingWorker
from services.leases import Lease
from services.queue.base import TicketQueue
from services.queue.builtin import BuiltinQueue
from services.queue.rt import RequestTrackerQueue
from services.rate_limit_storage import SQLRateLimitStorage
from services.regulation import Regulation
from services.rounds import Waker
from services.sync import SyncWorker, TicketSync


def create_bot(
    settings: Settings,
    limiter: TelegramLimiter | None = None,
    on_retry_after: Callable[[], None] | None = None,
) -> Bot:
    """The Bot; with a limiter, everything it sends respects Telegram's limits (and each 429
    Telegram answers calls `on_retry_after`)."""
    session = PinnedResponsesSession(
        api=TelegramAPIServer.from_base(str(settings.telegram_api_url).rstrip("/"))
    )
    # Before any Bot API call an update makes, its session lets go of the connection. First
    # registered, outermost: the connection goes back before the limiter makes the call wait.
    session.middleware(ShortTransactionsMiddleware())
    # A press's answer: held for the webhook's response, and known to the error handler.
    session.middleware(CallbackAnswers())
    if limiter is not None:
        budget = RetryBudget(settings.telegram_retry_attempts, settings.telegram_retry_max_seconds)
        session.middleware(TelegramLimitsMiddleware(limiter, budget, on_retry_after=on_retry_after))
    return Bot(
        token=settings.bot_token.get_secret_value(),
        session=session,
        default=DefaultBotProperties(parse_mode=ParseMode.HTML),
    )


def create_limiter(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]
) -> TelegramLimiter:
    """Telegram's limits, shared by every process: in Redis if REDIS_URL is set, else in the
    SQL database."""
    storage: LimitsStorage
    if settings.redis_url:
        storage = LimitsRedisStorage(
            "async+" + settings.redis_url,
            implementation="redispy",
            key_prefix=f"{settings.redis_key_prefix}:limits",
        )
    else:
        storage = SQLRateLimitStorage(sessionmaker)
    rates = TelegramRates(
        bot=settings.telegram_global_rate,
        private_chat=settings.telegram_chat_rate,
        group=settings.telegram_group_rate,
        margin=settings.telegram_rate_margin_seconds,
    )
    return TelegramLimiter(storage, rates)


def create_storage(
    settings: Settings, sessionmaker: async_sessionmaker[AsyncSession], redis: Redis | None
) -> tuple[BaseStorage, BaseEventIsolation]:
    """The FSM storage, and a lock per chat so a chat's updates are handled one at a time (a
    fast second tap must see the state the first one left, not race it). With Redis (`redis`,
    the application's client, which it closes) both live there, shared by every process."""
    key_builder = DefaultKeyBuilder(prefix=settings.redis_key_prefix, with_destiny=True)
    if redis is None:
        storage: BaseStorage = SQLStorage(
            sessionmaker, key_builder=key_builder, ttl=timedelta(seconds=settings.fsm_ttl_seconds)
        )
        # One process (SQLite, or PostgreSQL without Redis): the in-process locks suffice.
        return storage, ChatLocks(None, key_builder)
    storage = CompactRedisStorage(redis, key_builder, settings.fsm_ttl_seconds)
    locks = ChatLocks(
        redis,
        key_builder,
        ttl_seconds=settings.fsm_lock_ttl_seconds,
        poll_seconds=settings.fsm_lock_poll_seconds,
    )
    return storage, locks


def create_queue(settings: Settings, sessionmaker: async_sessionmaker[AsyncSession]) -> TicketQueue:
    if settings.queue is QueueKind.RT:
        assert settings.rt_url is not None  # checked by Settings
        return RequestTrackerQueue(
            str(settings.rt_url),
            settings.rt_queue,
            token=settings.rt_token.get_secret_value() if settings.rt_token else None,
            user=settings.rt_user,
            password=settings.rt_password.get_secret_value() if settings.rt_password else None,
            timeout=settings.rt_timeout_seconds,
            timezone=settings.rt_timezone,
            staff_group=settings.rt_staff_group,
        )
    return BuiltinQueue(sessionmaker)


def create_ticket_url(settings: Settings, queue: TicketQueue) -> TicketUrl:
    """The link to a ticket on the specialists' notices: QUEUE_TICKET_URL with the number in
    place of {id}, else the queue's own page (None where the queue has no web interface)."""
    template = settings.queue_ticket_url
    if template is None:
        return queue.ticket_url
    return lambda number: template.replace("{id}", quote(number, safe=""))


def create_sync(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession],
    queue: TicketQueue,
    on_notice: Callable[[], None],
    regulation: Regulation | None = None,
    on_round: Callable[[], None] | None = None,
    lease: Lease | None = None,
) -> tuple[TicketSync, SyncWorker | None]:
    """What brings the specialists' work back: the ticket sync that both the worker and
    /queue/events use, and the worker unless SYNC_ENABLED is false."""
    tickets = TicketSync(
        sessionmaker,
        queue,
        overlap=timedelta(seconds=settings.sync_overlap_seconds),
        on_notice=on_notice,
        labels=regulation.labels if regulation else None,
        ticket_url=create_ticket_url(settings, queue),
    )
    if not settings.sync_enabled:
        return tickets, None
    worker = SyncWorker(
        sessionmaker,
        queue,
        interval=settings.sync_interval_seconds,
        overlap=timedelta(seconds=settings.sync_overlap_seconds),
        tickets=tickets,
        on_round=on_round,
        lease=lease,
    )
    return tickets, worker


def create_i18n(settings: Settings) -> I18n:
    return I18n(path=locales_dir(), default_locale=settings.default_locale, domain="messages")


def create_dispatcher(
    settings: Settings,
    *,
    sessionmaker: async_sessionmaker[AsyncSession],
    storage: BaseStorage,
    isolation: BaseEventIsolation,
    queue: TicketQueue,
    regulation: Regulation,
    filing: FilingWorker,
    delivery: Waker,
    i18n: I18n,
    replies: Waker | None = None,
    flood_storage: LimitsStorage | None = None,
    staff_actions: Waker | None = None,
    metrics: Metrics | None = None,
    update_claims: UpdateClaims | None = None,
) -> Dispatcher:
    """``replies``: handlers that accept a merchant's message on a ticket wake it
    (``replies.wake()``) after services.replies.add_reply; ``staff_actions`` likewise after
    services.staff_actions.request. The wakers are the workers themselves, or announcers to
    the workers of other processes (bot/wake_bus.py). ``update_claims``: each update handled
    once across processes (bot/update_dedupe.py)."""
    dispatcher = Dispatcher(
        storage=storage,
        events_isolation=isolation,
        settings=settings,
        sessionmaker=sessionmaker,
        queue=queue,
        regulation=regulation,
        catalog=regulation.catalog,
        filing=filing,
        delivery=delivery,
        i18n=i18n,
        replies=replies,
        staff_action_worker=staff_actions,
        # Albums (one message per item) gathered into one reply or one free message.
        albums=Albums(),
    )
    # A press's answer rides on the webhook's response (handlers/callback_answers.py).
    dispatcher.update.outer_middleware(AnswerInResponse())
    if update_claims is not None:
        # Before everything of ours: a duplicate is neither counted nor handled.
        dispatcher.update.outer_middleware(
            UpdateDedupeMiddleware(
                update_claims, on_duplicate=metrics.update_duplicate if metrics else lambda: None
            )
        )
    if metrics is not None:
        # Outermost of ours: the time counted includes waiting for a handling slot.
        dispatcher.update.outer_middleware(UpdateMetricsMiddleware(metrics))
    dispatcher.update.outer_middleware(ConcurrencyLimitMiddleware(settings.update_concurrency))
    if flood_storage is not None:
        # Before the update's session: the check never makes an update hold two connections.
        dispatcher.update.outer_middleware(
            FloodControlMiddleware(
                flood_storage,
                i18n,
                messages=settings.flood_messages,
                window_seconds=settings.flood_window_seconds,
            )
        )
    dispatcher.update.outer_middleware(DbSessionMiddleware(sessionmaker))
    dispatcher.update.outer_middleware(MerchantMiddleware(on_reachable=delivery.wake))
    LocaleMiddleware(i18n).setup(dispatcher)
    dispatcher.include_routers(*get_routers())
    run_filters_inline(dispatcher)
    return dispatcher
