"""What `frontdesk run` tries before it starts, and how a failure reads.

Each peer the bot cannot work without is tried once, in the order an operator fixes them —
configuration, database, Redis, queue, Telegram, the HTTP port — each bounded by
STARTUP_TIMEOUT_SECONDS. A failure is a `StartupError`: one line naming the setting, what is
wrong and what to do, which the command line prints (exit code 2) instead of a traceback. What
fails later, while the bot runs, is not caught here: the workers retry and log, /healthz tells.
"""

from __future__ import annotations

import asyncio
import errno
import os
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar
from urllib.parse import quote, urlsplit

import aiohttp
from sqlalchemy import text
from sqlalchemy.engine import make_url

from bot.config import QueueKind, Settings, telegram_token_problem
from services.assignments import unknown_route_codes
from services.catalog import CatalogError
from services.db.engine import create_health_engine
from services.regulation import Regulation, load_regulation

T = TypeVar("T")


class StartupError(Exception):
    """The bot cannot start: ``setting`` names what to change, ``problem`` what is wrong,
    ``action`` what to do. Never carries a password."""

    def __init__(self, setting: str, problem: str, action: str) -> None:
        super().__init__(f"{setting}: {problem}; {action}")
        self.setting = setting
        self.problem = problem
        self.action = action


async def check(settings: Settings, *, webhook: bool, worker: bool = False) -> None:
    """Every start-up check in order; raises StartupError at the first that fails. `worker`:
    for `frontdesk worker` (the background loops alone).

    CatalogError and PolicyFileError (the data files, STAFF_GROUPS) pass through: the command
    line already prints them as one line."""
    check_configuration(settings, webhook=webhook)
    check_processes(settings, worker=worker)
    await check_database(settings)
    await check_redis(settings)
    await check_queue(settings)
    await check_telegram(settings)
    await check_port(settings)


def check_staff_groups(settings: Settings, regulation: Regulation) -> None:
    """STAFF_GROUPS names only codes of the catalog: a typo would send that category's new
    tickets elsewhere without a word. Raises CatalogError (one line; start-up stops)."""
    unknown = unknown_route_codes(settings.staff_groups, regulation.catalog)
    if unknown:
        raise CatalogError(
            "configuration error: STAFF_GROUPS: unknown code "
            + ", ".join(repr(code) for code in unknown)
            + " (a key is a request type or category code of the catalog, or *)"
        )


def check_configuration(settings: Settings, *, webhook: bool) -> None:
    regulation = load_regulation(intake=settings.intake)  # the data files
    if settings.staff_groups:
        check_staff_groups(settings, regulation)
    if webhook and settings.webhook_url is None:
        raise StartupError(
            "WEBHOOK_BASE_URL",
            "is required for --webhook",
            "set it to the public https address Telegram calls, and WEBHOOK_SECRET",
        )
    problem = telegram_token_problem(settings)
    if problem is not None:
        raise StartupError("BOT_TOKEN", problem, "paste the whole token @BotFather gave")


def check_processes(settings: Settings, *, worker: bool) -> None:
    """Several processes share their state through PostgreSQL (and Redis): SQLite is one
    process, which runs its own workers. Several webhook processes on one port need Redis for
    the chats' locks and the updates already handled."""
    sqlite = make_url(settings.database_url).get_backend_name() == "sqlite"
    move = "or move to PostgreSQL (docs/deploy.md: several processes)"
    if sqlite and worker:
        raise StartupError(
            "DATABASE_URL",
            "`frontdesk worker` needs PostgreSQL: with SQLite the bot is one process that runs "
            "its own workers",
            f"run `frontdesk run` alone, {move}",
        )
    if sqlite and not settings.run_workers:
        raise StartupError(
            "RUN_WORKERS",
            "false needs PostgreSQL and `frontdesk worker` processes: with SQLite the bot is "
            "one process, and nothing else would file the tickets nor send the notices",
            f"unset it, {move}",
        )
    if settings.web_reuse_port and sqlite:
        raise StartupError(
            "WEB_REUSE_PORT",
            "true is for several processes, and with SQLite the bot is one process",
            f"unset it, {move}",
        )
    if settings.web_reuse_port and not worker and settings.redis_url is None:
        raise StartupError(
            "WEB_REUSE_PORT",
            "true needs REDIS_URL: several webhook processes share the chats' locks and the "
            "updates already handled through Redis",
            "set REDIS_URL, or unset WEB_REUSE_PORT",
        )


# --- the database ------------------------------------------------------------------------------


async def check_database(settings: Settings) -> None:
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        _check_sqlite_path(url.database)
    engine = create_health_engine(settings.database_url, timeout=settings.startup_timeout_seconds)
    try:
        async with asyncio.timeout(settings.startup_timeout_seconds):
            async with engine.connect() as connection:
                await connection.execute(text("SELECT 1"))
    except Exception as error:
        raise _database_error(settings, error) from error
    finally:
        await engine.dispose()


def _check_sqlite_path(database: str | None) -> None:
    if not database or database == ":memory:" or database.startswith("file:"):
        return
    path = Path(database)
    folder = path.parent
    if folder.exists() and not folder.is_dir():
        raise StartupError(
            "DATABASE_URL",
            f"the SQLite file's directory {folder} is a file, not a directory",
            "point DATABASE_URL at a file in a directory",
        )
    if not folder.is_dir():
        raise StartupError(
            "DATABASE_URL",
            f"the SQLite file's directory {folder} does not exist",
            "create it, or point DATABASE_URL at a file in an existing directory",
        )
    if path.exists() and not os.access(path, os.R_OK | os.W_OK):
        raise StartupError(
            "DATABASE_URL",
            f"the SQLite file {path} is not writable by this user",
            "give this user write access to it, or point DATABASE_URL elsewhere",
        )
    if not os.access(folder, os.W_OK | os.X_OK):
        raise StartupError(
            "DATABASE_URL",
            f"the SQLite file's directory {folder} is not writable by this user "
            "(SQLite writes its journal beside the file)",
            "give this user write access to it, or point DATABASE_URL elsewhere",
        )


def _database_error(settings: Settings, error: BaseException) -> StartupError:
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite":
        return StartupError(
            "DATABASE_URL",
            f"cannot open the SQLite file {url.database}: {_reason(error)}",
            "check the path and its permissions",
        )
    where = f"PostgreSQL at {url.host or 'localhost'}:{url.port or 5432}"
    user, database = url.username or "(no user)", url.database or "(default)"
    sqlstate = _first(error, lambda e: getattr(e, "sqlstate", None))
    if sqlstate == "28P01":
        return StartupError(
            "DATABASE_URL",
            f"{where} refused the password of user {user!r}",
            "put the right password in DATABASE_URL",
        )
    if sqlstate == "28000":
        return StartupError(
            "DATABASE_URL",
            f"{where} refused user {user!r} (no such role, or pg_hba.conf does not let it in)",
            "check the user in DATABASE_URL, or create the role",
        )
    if sqlstate == "3D000":
        return StartupError(
            "DATABASE_URL",
            f"{where} has no database {database!r}",
            f"create it (createdb {database}) or fix the name in DATABASE_URL",
        )
    if sqlstate is not None:
        return StartupError(
            "DATABASE_URL",
            f"{where} refused the connection: {_reason(error)}",
            "check DATABASE_URL and the server's log",
        )
    return _network_error(
        "DATABASE_URL",
        where,
        error,
        settings.startup_timeout_seconds,
        action="start PostgreSQL, or fix the host and port in DATABASE_URL",
    )


# --- Redis -------------------------------------------------------------------------------------


async def check_redis(settings: Settings) -> None:
    if not settings.redis_url:
        return
    from redis.asyncio import Redis
    from redis.exceptions import AuthenticationError, ResponseError

    timeout = settings.startup_timeout_seconds
    try:
        redis = Redis.from_url(
            settings.redis_url, socket_connect_timeout=timeout, socket_timeout=timeout
        )
    except ValueError as error:  # Settings checks the form; this is what it cannot see
        raise StartupError(
            "REDIS_URL", f"is not a Redis address: {error}", "e.g. redis://127.0.0.1:6379/0"
        ) from error
    kwargs = redis.connection_pool.connection_kwargs
    where = (
        f"Redis at {kwargs['path']}"
        if "path" in kwargs
        else f"Redis at {kwargs.get('host', 'localhost')}:{kwargs.get('port', 6379)}"
    )
    try:
        async with asyncio.timeout(timeout):
            await redis.ping()
    except (AuthenticationError, ResponseError) as error:
        if isinstance(error, AuthenticationError) or "NOAUTH" in str(error):
            raise StartupError(
                "REDIS_URL",
                f"{where} refused the password: {_reason(error)}",
                "put the right password in REDIS_URL (redis://:password@host:6379/0)",
            ) from error
        raise StartupError(
            "REDIS_URL", f"{where} refused: {_reason(error)}", "check REDIS_URL"
        ) from error
    except Exception as error:
        raise _network_error(
            "REDIS_URL",
            where,
            error,
            timeout,
            action="start Redis, or fix REDIS_URL (unset, the database keeps the state)",
        ) from error
    finally:
        await redis.aclose()


# --- the queue ---------------------------------------------------------------------------------


async def check_queue(settings: Settings) -> None:
    """QUEUE=rt: RT answers, takes frontdesk's credentials and shows it RT_QUEUE."""
    if settings.queue is not QueueKind.RT:
        return
    assert settings.rt_url is not None  # checked by Settings
    base = str(settings.rt_url).rstrip("/")
    url = f"{base}/REST/2.0/queue/{quote(settings.rt_queue, safe='')}"
    headers = {"Accept": "application/json"}
    if settings.rt_token is not None:
        credentials = "RT_TOKEN"
        headers["Authorization"] = f"token {settings.rt_token.get_secret_value()}"
    else:
        assert settings.rt_user is not None and settings.rt_password is not None
        credentials = "RT_USER/RT_PASSWORD"
        headers["Authorization"] = aiohttp.encode_basic_auth(
            settings.rt_user, settings.rt_password.get_secret_value()
        )
    timeout = min(settings.startup_timeout_seconds, settings.rt_timeout_seconds)
    where = f"RT at {_public(base)}"
    try:
        async with (
            aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=timeout)) as http,
            http.get(url, headers=headers, allow_redirects=False) as response,
        ):
            status = response.status
            await response.read()
    except Exception as error:
        raise _network_error(
            "RT_URL", where, error, timeout, action="start RT, or fix RT_URL (RT's web address)"
        ) from error
    if status == 401:
        raise StartupError(
            credentials,
            f"{where} refused frontdesk's credentials (401)",
            f"give {credentials} of frontdesk's RT account (README: Request Tracker)",
        )
    if status == 403:
        raise StartupError(
            credentials,
            f"{where} refused frontdesk's account the queue {settings.rt_queue!r} (403)",
            "grant that account SeeQueue and the other rights on it (README: Request Tracker)",
        )
    if status == 404:
        raise StartupError(
            "RT_QUEUE",
            f"{where} has no queue {settings.rt_queue!r} (or RT_URL is not RT's address: 404)",
            "fix RT_QUEUE or RT_URL",
        )
    if not 200 <= status < 300:
        raise StartupError(
            "RT_URL",
            f"{where} answered {status} to GET /REST/2.0/queue/{settings.rt_queue}",
            "check that RT_URL is RT's address and RT is up (its REST2 API on)",
        )


# --- Telegram ----------------------------------------------------------------------------------


async def check_telegram(settings: Settings) -> None:
    """getMe: the server answers and takes the token."""
    from aiogram.exceptions import (
        ClientDecodeError,
        TelegramNetworkError,
        TelegramNotFound,
        TelegramServerError,
        TelegramUnauthorizedError,
    )

    from bot.factories import create_bot

    bot = create_bot(settings)
    server = _public(str(settings.telegram_api_url).rstrip("/"))
    timeout = settings.startup_timeout_seconds
    try:
        async with asyncio.timeout(timeout):
            await bot.get_me(request_timeout=max(1, round(timeout)))
    except TelegramUnauthorizedError as error:
        raise StartupError(
            "BOT_TOKEN",
            f"{server} rejected the token (401 Unauthorized)",
            "copy the token again from @BotFather (/mybots → API Token); /revoke gives a new one",
        ) from error
    except TelegramNotFound as error:
        # Telegram answers 404 to a token that is no token at all, a server that is no Bot API
        # server does too.
        raise StartupError(
            "BOT_TOKEN",
            f"{server} answered getMe with 404 Not Found (a malformed token, or "
            "TELEGRAM_API_URL is not a Bot API server)",
            "copy the token again from @BotFather, and check TELEGRAM_API_URL",
        ) from error
    except TelegramServerError as error:
        raise StartupError(
            "TELEGRAM_API_URL",
            f"{server} failed getMe: {_reason(error)}",
            "try again later, or check TELEGRAM_API_URL",
        ) from error
    except ClientDecodeError as error:
        raise StartupError(
            "TELEGRAM_API_URL",
            f"{server} answered getMe with something that is not the Bot API's",
            "point TELEGRAM_API_URL at a Bot API server (default https://api.telegram.org)",
        ) from error
    except (TelegramNetworkError, TimeoutError, OSError, aiohttp.ClientError) as error:
        raise _network_error(
            "TELEGRAM_API_URL",
            server,
            error,
            timeout,
            action="check the network (firewall, proxy) or TELEGRAM_API_URL",
        ) from error
    finally:
        await bot.session.close()


# --- the HTTP port -----------------------------------------------------------------------------


async def check_port(settings: Settings) -> None:
    """WEB_HOST:WEB_PORT can be listened on, as the HTTP server will (aiohttp reuses the address
    too); the server's own bind maps its error the same way (``port_error``)."""
    loop = asyncio.get_running_loop()
    try:
        server = await loop.create_server(
            asyncio.Protocol,
            settings.web_host,
            settings.web_port,
            reuse_address=True,
            # Beside the other processes already listening with it (WEB_REUSE_PORT).
            reuse_port=settings.web_reuse_port or None,
        )
    except OSError as error:
        raise port_error(settings, error) from error
    server.close()
    await server.wait_closed()


def port_error(settings: Settings, error: OSError) -> StartupError:
    host, port = settings.web_host, settings.web_port
    if isinstance(error, socket.gaierror):
        return StartupError(
            "WEB_HOST", f"{host!r} is not a known host name", "set it to 0.0.0.0 or an address"
        )
    if error.errno == errno.EADDRINUSE:
        return StartupError(
            "WEB_PORT",
            f"port {port} on {host} is in use by another program",
            f"stop it (`ss -ltnp 'sport = :{port}'` names it) or set WEB_PORT to a free port",
        )
    if error.errno == errno.EADDRNOTAVAIL:
        return StartupError(
            "WEB_HOST",
            f"{host} is not an address of this machine",
            "set it to 0.0.0.0 (all), 127.0.0.1 or one of this machine's addresses",
        )
    if error.errno == errno.EACCES:
        return StartupError(
            "WEB_PORT",
            f"listening on port {port} is not permitted to this user",
            "use a port above 1023 (behind a proxy) or grant the right",
        )
    return StartupError(
        "WEB_HOST/WEB_PORT", f"cannot listen on {host}:{port}: {_reason(error)}", "fix them"
    )


# --- wording -----------------------------------------------------------------------------------


def _network_error(
    setting: str, where: str, error: BaseException, timeout: float, *, action: str
) -> StartupError:
    if _first(error, lambda e: e if isinstance(e, socket.gaierror) else None) is not None:
        return StartupError(setting, f"{where}: the host name is unknown", action)
    if _first(error, lambda e: e if isinstance(e, ConnectionRefusedError) else None) is not None:
        return StartupError(setting, f"{where} refused the connection (nothing listens)", action)
    if _first(error, lambda e: e if isinstance(e, TimeoutError) else None) is not None or (
        "timeout" in type(error).__name__.lower() or "timeout" in str(error).lower()
    ):
        return StartupError(setting, f"{where} did not answer within {timeout:g} s", action)
    return StartupError(setting, f"{where} cannot be reached: {_reason(error)}", action)


def _public(url: str) -> str:
    """The address without the user and password it may carry."""
    parts = urlsplit(url)
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _chain(error: BaseException) -> Iterator[BaseException]:
    """The error, what caused it, and the driver's error SQLAlchemy wraps, each once."""
    seen: set[int] = set()
    pending: list[BaseException | None] = [error]
    while pending:
        current = pending.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        orig = getattr(current, "orig", None)
        pending += [
            orig if isinstance(orig, BaseException) else None,
            current.__cause__,
            current.__context__,
        ]


def _first(error: BaseException, pick: Callable[[BaseException], T | None]) -> T | None:
    """What ``pick`` finds first along the error's chain."""
    for current in _chain(error):
        found = pick(current)
        if found is not None:
            return found
    return None


def _reason(error: BaseException) -> str:
    """The innermost cause's first line, without a URL's credentials (drivers name the host and
    the user, never the password)."""
    innermost = error
    for current in _chain(error):
        if str(current).strip():
            innermost = current
    first_line = (str(innermost).strip().splitlines() or [type(innermost).__name__])[0]
    return first_line[:200]
