"""Settings from the environment and `.env`, validated once at start-up."""

from __future__ import annotations

import json
import re
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from limits import parse
from pydantic import AnyHttpUrl, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict
from redis.connection import parse_url as parse_redis_url

from services.db.engine import DEFAULT_DATABASE_URL, async_url
from services.regulation import IntakePolicy, UnlinkedFiling


class QueueKind(StrEnum):
    BUILTIN = "builtin"
    RT = "rt"


class LogFormat(StrEnum):
    TEXT = "text"
    JSON = "json"  # one JSON object a line: time, level, logger, message, exception


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: SecretStr
    # Any Bot-API-compatible server: Telegram, a local telegram-bot-api, the test emulator.
    telegram_api_url: AnyHttpUrl = AnyHttpUrl("https://api.telegram.org")
    database_url: str = DEFAULT_DATABASE_URL
    # The connection pool of updates and workers. An update holds a connection only between its
    # Telegram calls (bot/transactions.py); the background workers (filing, sync, delivery) need
    # a few more; /healthz has its own connection outside this pool.
    database_pool_size: int = Field(default=10, ge=1)
    database_max_overflow: int = Field(default=20, ge=0)
    database_pool_timeout_seconds: float = Field(default=30.0, gt=0)
    # Updates handled at once; the others queue (in Telegram in polling, in memory behind the
    # webhook). Unset: the pool minus what the background work needs (WORKER_CONNECTIONS).
    max_concurrent_updates: int | None = Field(default=None, ge=1)
    redis_url: str | None = None
    redis_key_prefix: str = "fsm"
    default_locale: str = "ru"
    log_level: str = "INFO"
    # Apply the migrations when the bot starts (fine with SQLite and one process). False: the
    # operator runs `frontdesk migrate` as its own step before rolling out a new version (several
    # processes, PostgreSQL), and the bot refuses to start on a schema that is not the one it needs.
    migrate_on_start: bool = True
    log_format: LogFormat = LogFormat.TEXT
    # `frontdesk run` tries the database, Redis, the queue, Telegram and the HTTP port once
    # before it starts (bot/startup.py); each try is bounded by this.
    startup_timeout_seconds: float = Field(default=10.0, gt=0)

    queue: QueueKind = QueueKind.BUILTIN
    # QUEUE=rt: Request Tracker 5 (REST2). Log in with RT_TOKEN, or RT_USER and RT_PASSWORD.
    rt_url: AnyHttpUrl | None = None
    rt_queue: str = "Support"
    rt_token: SecretStr | None = None
    rt_user: str | None = None
    rt_password: SecretStr | None = None
    rt_timeout_seconds: float = Field(default=10.0, gt=0)
    # The time zone of frontdesk's RT account: TicketSQL reads dates in it.
    rt_timezone: str = "UTC"
    # Besides RT's privileged users, members of this RT group speak for support (their replies
    # reach the merchant); frontdesk's account needs SeeGroup on it.
    rt_staff_group: str | None = None
    # Filing into the queue: retries back off exponentially from BASE up to CAP (with jitter);
    # a worker's claim on a ticket lapses after LEASE, so a crashed worker's tickets come back.
    filing_retry_base_seconds: float = Field(default=2.0, gt=0)
    filing_retry_cap_seconds: float = Field(default=300.0, gt=0)
    filing_lease_seconds: float = Field(default=120.0, gt=0)
    # Notices to Telegram (bot/delivery.py): a delivery worker's claim on a notice lapses after
    # LEASE (renewed at every part sent); CONCURRENCY chats are served at once.
    delivery_lease_seconds: float = Field(default=60.0, gt=0)
    delivery_concurrency: int = Field(default=32, ge=1, le=1000)
    # Sync back from the queue (services/sync.py): the worker reads the queue's changes every
    # INTERVAL, re-reading OVERLAP before its cursor (RT keeps times to the second, and a
    # ticket's LastUpdated can trail its transaction by as long as RT's scrips run).
    sync_enabled: bool = True
    sync_interval_seconds: float = Field(default=30.0, gt=0)
    sync_overlap_seconds: float = Field(default=60.0, ge=0)
    # The SLA watch (services/sla_watch.py) looks for tickets to warn about every INTERVAL.
    sla_watch_interval_seconds: float = Field(default=60.0, gt=0)
    # The link to a ticket on the specialists' cards: the page's address with {id} where the
    # queue's number goes (e.g. RT's public address when RT_URL is an internal one). Unset: the
    # queue's own (RT: RT_URL/Ticket/Display.html?id=…; the builtin queue has none).
    queue_ticket_url: str | None = None
    # New unassigned tickets announced to a staff group instead of the leads
    # (services/assignments.py): a JSON object from a category code, a request type code or "*"
    # (any other ticket) to the group's chat id, e.g. {"system_error": -1001234567890}. The
    # codes are checked against the catalog at start-up; the bot must be a member of each group.
    staff_groups: Annotated[dict[str, int], NoDecode] = Field(default_factory=dict)
    # POST /queue/events: the key queues sign their calls with (HMAC-SHA256); unset, the
    # endpoint is off (404).
    queue_events_secret: SecretStr | None = None

    # Linking (services/links.py): the platform's API key for /api/* (unset: the API is off),
    # how long a link stays valid, and the bot's @username in the links (unset: getMe at start).
    platform_api_key: SecretStr | None = None
    link_ttl_seconds: int = Field(default=900, ge=10, le=7 * 24 * 3600)
    bot_username: str | None = None
    # What a Telegram user linked to no store may file: nothing (they are told how to link), or
    # technical requests that touch no account (services/intake.py).
    unlinked_may_file: UnlinkedFiling = UnlinkedFiling.NONE
    # Per-user flood control (bot/flood.py): at most FLOOD_MESSAGES updates (messages and
    # button presses) in FLOOD_WINDOW_SECONDS, and TICKETS_PER_HOUR requests filed an hour.
    flood_messages: int = Field(default=20, ge=1)
    flood_window_seconds: int = Field(default=10, ge=1)
    tickets_per_hour: int = Field(default=10, ge=1)

    # Telegram's limits (bot/telegram_limits.py), as `limits` rate strings: everything the bot
    # sends goes through moving windows shared by all its processes (Redis, else the database).
    telegram_global_rate: str = "30 per second"
    telegram_chat_rate: str = "1 per second"  # one private chat
    telegram_group_rate: str = "20 per minute"  # one group, supergroup or channel
    telegram_rate_margin_seconds: float = Field(default=0.1, ge=0)
    # A 429 answering a user (not a queued notice): wait and retry at most ATTEMPTS times and
    # SECONDS in all, then give up.
    telegram_retry_attempts: int = Field(default=3, ge=0)
    telegram_retry_max_seconds: float = Field(default=60.0, ge=0)

    # Webhook mode: Telegram calls WEBHOOK_BASE_URL + WEBHOOK_PATH; the app listens on HOST:PORT.
    webhook_base_url: AnyHttpUrl | None = None
    webhook_path: str = "/telegram/webhook"
    webhook_secret: SecretStr | None = None
    web_host: str = "0.0.0.0"
    web_port: int = Field(default=8080, ge=1, le=65535)
    # /healthz: each check's bound, and the age of the oldest unfiled ticket that shows as
    # degraded (the queue has not taken it for that long).
    health_timeout_seconds: float = Field(default=3.0, gt=0)
    filing_backlog_alert_seconds: float = Field(default=600.0, gt=0)

    # FSM and Redis. A draft nobody touched for FSM_TTL_SECONDS is forgotten (Redis expires it;
    # the SQL storage sweeps it). A chat's lock across processes lives FSM_LOCK_TTL_SECONDS and
    # is renewed while its update runs: a process killed mid-update holds its chats that long.
    # A chat whose lock another process holds is retried every FSM_LOCK_POLL_SECONDS (within a
    # process, updates of a chat wait in line without polling). REDIS_POOL_SIZE connections per
    # process; past it, callers wait up to REDIS_POOL_TIMEOUT_SECONDS.
    fsm_ttl_seconds: int = Field(default=7 * 24 * 3600, ge=60)
    fsm_lock_ttl_seconds: float = Field(default=10.0, ge=1)
    fsm_lock_poll_seconds: float = Field(default=0.01, gt=0, le=1)
    redis_pool_size: int = Field(default=50, ge=2)
    redis_pool_timeout_seconds: float = Field(default=20.0, gt=0)

    # Several processes (docs/deploy.md). RUN_WORKERS: this process also runs the background
    # loops (filing, replies, notes, staff actions, delivery, SLA watch, sync); false for the
    # webhook processes of a deployment whose loops run in `frontdesk worker` processes
    # (PostgreSQL only). WEB_REUSE_PORT: listen with SO_REUSEPORT, so N webhook processes share
    # WEB_PORT and the kernel spreads the connections. An update_id once handled is dropped if
    # Telegram sends it again within UPDATE_DEDUPE_SECONDS (Redis across processes, else memory).
    run_workers: bool = True
    web_reuse_port: bool = False
    update_dedupe_seconds: int = Field(default=600, ge=60)

    @field_validator("bot_token")
    @classmethod
    def _token_shape(cls, value: SecretStr) -> SecretStr:
        # A token is the bot's number, a colon and a secret of letters, digits, _ and -: a
        # pasted placeholder ("123456789:AA...", "<token>", "YOUR_TOKEN") is caught here, before
        # anything connects. Its length is checked by `frontdesk run` against Telegram's own
        # server only (telegram_token_problem): other servers and the tests use short ones.
        if not TOKEN_SHAPE.fullmatch(value.get_secret_value()):
            raise ValueError(TOKEN_ADVICE)
        return value

    @field_validator("database_url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        return async_url(value)

    @field_validator("telegram_global_rate", "telegram_chat_rate", "telegram_group_rate")
    @classmethod
    def _rate(cls, value: str) -> str:
        try:
            parse(value)
        except ValueError:
            raise ValueError('must look like "30 per second" or "20/minute"') from None
        return value

    @field_validator("default_locale")
    @classmethod
    def _known_locale(cls, value: str) -> str:
        if value not in SUPPORTED_LOCALES:
            raise ValueError(f"must be one of {', '.join(SUPPORTED_LOCALES)}")
        return value

    @field_validator("queue_events_secret")
    @classmethod
    def _strong_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # Anyone who guesses it can make frontdesk read the queue on their schedule.
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (e.g. `openssl rand -hex 32`)")
        return value

    @field_validator("platform_api_key")
    @classmethod
    def _strong_api_key(cls, value: SecretStr | None) -> SecretStr | None:
        # Whoever holds it can link any Telegram account to any store.
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters (e.g. `openssl rand -hex 32`)")
        return value

    @field_validator("webhook_secret")
    @classmethod
    def _webhook_secret(cls, value: SecretStr | None) -> SecretStr | None:
        # Whoever guesses it can post updates as any user. Telegram's secret_token takes 1-256
        # characters of A-Z, a-z, 0-9, _ and - (setWebhook refuses anything else).
        if value is None:
            return None
        secret = value.get_secret_value()
        if len(secret) < 16:
            raise ValueError("must be at least 16 characters (e.g. `openssl rand -hex 32`)")
        if len(secret) > 256:
            raise ValueError("must be at most 256 characters (Telegram's limit)")
        if not re.fullmatch(r"[A-Za-z0-9_-]+", secret):
            raise ValueError(
                "may contain only A-Z, a-z, 0-9, _ and - (Telegram's rule; "
                "e.g. `openssl rand -hex 32`)"
            )
        return value

    @field_validator("redis_url")
    @classmethod
    def _redis_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        try:
            parse_redis_url(value)
        except ValueError as error:
            raise ValueError(
                f"must look like redis://[:password@]host:6379/0 (or rediss://, unix://): {error}"
            ) from None
        return value

    @field_validator("bot_username")
    @classmethod
    def _username(cls, value: str | None) -> str | None:
        if value is None:
            return None
        value = value.removeprefix("@")
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9_]{3,31}", value):
            raise ValueError("must be the bot's @username (5-32 letters, digits, _)")
        return value

    @field_validator("queue_ticket_url")
    @classmethod
    def _ticket_url_template(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip()
        if "{id}" not in value:
            raise ValueError("must contain {id} where the ticket's number goes")
        try:
            AnyHttpUrl(value.replace("{id}", "1"))
        except ValueError:
            raise ValueError(
                "must be an http(s) address, e.g. https://rt.example.com/Ticket/Display.html?id={id}"
            ) from None
        return value

    @field_validator("staff_groups", mode="before")
    @classmethod
    def _staff_groups(cls, value: Any) -> dict[str, int]:
        example = 'e.g. {"system_error": -1001234567890, "*": -1009876543210}'
        if isinstance(value, str):
            if not value.strip():
                return {}
            try:
                value = json.loads(value)
            except ValueError:
                raise ValueError(f"must be a JSON object, {example}") from None
        if not isinstance(value, dict):
            raise ValueError(f"must be a JSON object, {example}")
        routes: dict[str, int] = {}
        for code, chat_id in value.items():
            if not isinstance(code, str) or not code.strip():
                raise ValueError("a key must be a category code, a request type code or *")
            # A group's chat id is negative; a person's is not (their lead notices need no route).
            if isinstance(chat_id, bool) or not isinstance(chat_id, int) or chat_id >= 0:
                raise ValueError(
                    f"{code}: must be a group's chat id (a negative number), {example}"
                )
            routes[code.strip()] = chat_id
        return routes

    @field_validator("webhook_path")
    @classmethod
    def _absolute_path(cls, value: str) -> str:
        if not value.startswith("/"):
            raise ValueError("must start with /")
        return value

    @model_validator(mode="after")
    def _webhook_secret_required(self) -> Settings:
        if self.webhook_base_url is not None and self.webhook_secret is None:
            raise ValueError("WEBHOOK_SECRET is required when WEBHOOK_BASE_URL is set")
        return self

    @model_validator(mode="after")
    def _rt_settings(self) -> Settings:
        if self.queue is not QueueKind.RT:
            return self
        if self.rt_url is None:
            raise ValueError("RT_URL is required when QUEUE=rt")
        if (self.rt_token is None) == (self.rt_user is None):
            raise ValueError("QUEUE=rt needs RT_TOKEN, or RT_USER with RT_PASSWORD")
        if self.rt_user is not None and self.rt_password is None:
            raise ValueError("RT_PASSWORD is required with RT_USER")
        return self

    @property
    def update_concurrency(self) -> int:
        """MAX_CONCURRENT_UPDATES, or what the pool leaves after the background workers."""
        if self.max_concurrent_updates is not None:
            return self.max_concurrent_updates
        pool = self.database_pool_size + self.database_max_overflow
        return max(1, pool - WORKER_CONNECTIONS)

    @property
    def intake(self) -> IntakePolicy:
        return IntakePolicy(
            unlinked_may_file=self.unlinked_may_file, tickets_per_hour=self.tickets_per_hour
        )

    @property
    def webhook_url(self) -> str | None:
        if self.webhook_base_url is None:
            return None
        return str(self.webhook_base_url).rstrip("/") + self.webhook_path


SUPPORTED_LOCALES = ("ru", "en")
# The bot's number, a colon, the secret: what @BotFather gives (a secret of 35 characters today;
# Telegram does not promise the length, so only a clearly shortened one is refused).
TOKEN_SHAPE = re.compile(r"[0-9]+:[A-Za-z0-9_-]+")
TOKEN_ADVICE = (
    "must be the token @BotFather gave: the bot's number, a colon and about 35 letters, "
    "digits, _ or - (not a placeholder)"
)
TELEGRAM_HOST = "api.telegram.org"
TELEGRAM_SECRET_MIN_LENGTH = 30


def telegram_token_problem(settings: Settings) -> str | None:
    """Why BOT_TOKEN cannot be a token of Telegram's own server (a shortened or half-pasted one),
    or None. Only when TELEGRAM_API_URL is Telegram's: a local Bot API server or the emulator
    takes other tokens."""
    if settings.telegram_api_url.host != TELEGRAM_HOST:
        return None
    _, _, secret = settings.bot_token.get_secret_value().partition(":")
    if len(secret) < TELEGRAM_SECRET_MIN_LENGTH:
        return (
            f"too short for a token of Telegram ({len(secret)} after the colon, where "
            "@BotFather gives about 35 characters)"
        )
    return None


# Connections the background work may hold at once, kept out of the updates' share: filing and
# the builtin queue it calls (2), sync (2), the SQL rate limiter's storage (5), FSM reads before
# an update's session opens (1). The delivery worker's short sessions share what is left.
WORKER_CONNECTIONS = 10


def locales_dir() -> Path:
    """Compiled catalogs: inside the installed package (wheel) or at the top of the checkout."""
    packaged = Path(__file__).resolve().parent / "locales"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "locales"
