"""`frontdesk run` that cannot start says why in one line on stderr — the setting and what to do —
and exits with 2, without a traceback (README: Start-up errors). Each test runs the real process
with the one setting that makes it fail; everything else points at working peers (the Bot API
emulator, a SQLite file of the test). The process is forked from a server that has imported
frontdesk once (tests/helpers/forked_cli.py); the tests of a token Telegram rejects run a plain
`python -m bot run`, interpreter start and imports included."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import socket
import struct
import subprocess
import time
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web

from bot.sandbox.telegram_emulator import TelegramEmulator
from tests.conftest import REQUIRE_SERVICES
from tests.e2e.bot_process import ROOT, BotProcess, free_port
from tests.e2e.conftest import TOKEN, StartBot
from tests.helpers.databases import PostgresDatabases
from tests.helpers.forked_cli import ForkServer, run_plain

pytestmark = pytest.mark.e2e


@dataclass
class Exit:
    code: int
    stderr: str

    def one_line(self) -> str:
        """The single line on stderr, asserting there is exactly one and no traceback."""
        assert self.code == 2, self.stderr
        assert "Traceback" not in self.stderr, self.stderr
        lines = self.stderr.strip().splitlines()
        assert len(lines) == 1, self.stderr
        return lines[0]


class Frontdesk:
    """`python -m bot run` with the test's settings, run until it exits: forked from the session's
    fork server (tests/helpers/forked_cli.py: frontdesk and aiogram imported once), or with
    `real=True` a plain `python -m bot run`, interpreter start and imports included."""

    def __init__(self, env: dict[str, str], server: ForkServer | None) -> None:
        self.env = env
        self.server = server

    async def run(
        self, *, webhook: bool = False, timeout: float = 60, real: bool = False, **env: str
    ) -> Exit:
        argv = ["run"] + (["--webhook"] if webhook else [])
        if not real and self.server is not None:
            return await self._forked(argv, timeout, {**self.env, **env})
        try:
            code, stderr = await run_plain(
                argv,
                env={**self.env, **env},
                cwd=Path(self.env["FRONTDESK_TEST_CWD"]),
                timeout=timeout,
            )
        except TimeoutError as error:
            pytest.fail(str(error))
        return Exit(code, stderr)

    async def _forked(self, argv: list[str], timeout: float, env: dict[str, str]) -> Exit:
        assert self.server is not None
        try:
            code, stderr = await self.server.run(
                argv, env=env, cwd=Path(env["FRONTDESK_TEST_CWD"]), timeout=timeout
            )
        except TimeoutError as error:
            pytest.fail(str(error))
        return Exit(code, stderr)


@pytest.fixture
def frontdesk(
    emulator: TelegramEmulator, tmp_path: Path, fork_server: ForkServer | None
) -> Frontdesk:
    return Frontdesk(
        {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "PYTHONPATH": str(ROOT),
            "FRONTDESK_TEST_CWD": str(tmp_path),  # no stray .env
            "BOT_TOKEN": TOKEN,
            "TELEGRAM_API_URL": emulator.base_url,
            "DATABASE_URL": f"sqlite:///{tmp_path / 'frontdesk.sqlite3'}",
            "WEB_HOST": "127.0.0.1",
            "WEB_PORT": str(free_port()),
            "LOG_LEVEL": "INFO",
            "STARTUP_TIMEOUT_SECONDS": "5",
        },
        fork_server,
    )


def closed_port() -> int:
    return free_port()  # bound a moment ago, closed since: nothing listens


# --- Telegram -----------------------------------------------------------------------------------


@pytest.mark.parametrize("webhook", [False, True], ids=["polling", "webhook"])
async def test_a_token_telegram_rejects_stops_start_up_naming_bot_token(
    frontdesk: Frontdesk, webhook: bool
) -> None:
    port = frontdesk.env["WEB_PORT"]
    # A plain `python -m bot run`, as README: Start-up errors shows it (the others are forked).
    result = await frontdesk.run(
        webhook=webhook,
        real=True,
        BOT_TOKEN="7000001:someone-elses-token",  # the emulator answers 401
        WEBHOOK_BASE_URL=f"http://127.0.0.1:{port}",
        WEBHOOK_SECRET="startup-test-secret-0123",
    )
    line = result.one_line()
    assert line.startswith("frontdesk: cannot start: BOT_TOKEN: "), line
    assert "rejected the token (401 Unauthorized)" in line
    assert "@BotFather" in line
    assert "someone-elses-token" not in line


@pytest.mark.parametrize("webhook", [False, True], ids=["polling", "webhook"])
async def test_telegram_unreachable_stops_start_up_naming_telegram_api_url(
    frontdesk: Frontdesk, webhook: bool
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = await frontdesk.run(
        webhook=webhook,
        TELEGRAM_API_URL=url,
        WEBHOOK_BASE_URL="https://bot.example.com",
        WEBHOOK_SECRET="startup-test-secret-0123",
    )
    assert result.one_line() == (
        f"frontdesk: cannot start: TELEGRAM_API_URL: {url} refused the connection (nothing "
        "listens); check the network (firewall, proxy) or TELEGRAM_API_URL"
    )


async def test_with_log_level_debug_the_line_is_followed_by_the_traceback(
    frontdesk: Frontdesk,
) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = await frontdesk.run(TELEGRAM_API_URL=url, LOG_LEVEL="DEBUG")
    assert result.code == 2
    assert "frontdesk: cannot start: TELEGRAM_API_URL: " in result.stderr
    assert "Traceback (most recent call last)" in result.stderr
    assert "TelegramNetworkError" in result.stderr


async def test_the_readme_example_token_is_refused_by_the_format_check(
    frontdesk: Frontdesk,
) -> None:
    example = re.search(r"BOT_TOKEN=(\S+) scripts/run", (ROOT / "README.md").read_text())
    assert example is not None, "the README shows how to run with a token"
    result = await frontdesk.run(BOT_TOKEN=example.group(1))
    line = result.one_line()
    assert line.startswith("frontdesk: configuration error: BOT_TOKEN: must be the token "), line


@pytest.mark.parametrize(
    "token", ["123456789:AA...", "<token from @BotFather>", "123456789: AAAA", "123456789:"]
)
async def test_a_placeholder_token_is_refused_in_one_line(frontdesk: Frontdesk, token: str) -> None:
    result = await frontdesk.run(BOT_TOKEN=token)
    line = result.one_line()
    assert line.startswith("frontdesk: configuration error: BOT_TOKEN: "), line
    assert token not in line


async def test_a_shortened_token_for_telegram_itself_is_refused_before_connecting(
    frontdesk: Frontdesk,
) -> None:
    env = {key: value for key, value in frontdesk.env.items() if key != "TELEGRAM_API_URL"}
    result = await Frontdesk(env, frontdesk.server).run(BOT_TOKEN="123456789:AAHdqTcvCH1vG")
    assert result.one_line() == (
        "frontdesk: cannot start: BOT_TOKEN: too short for a token of Telegram (13 after the "
        "colon, where @BotFather gives about 35 characters); paste the whole token @BotFather "
        "gave"
    )


# --- webhook settings ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("Zq", "must be at least 16 characters"),
        ("fifteen-chars-x", "must be at least 16 characters"),
        ("sixteen chars ok", "may contain only A-Z, a-z, 0-9, _ and -"),
        ("секрет-секрет-секрет", "may contain only A-Z, a-z, 0-9, _ and -"),
        ("x" * 257, "must be at most 256 characters"),
    ],
)
async def test_a_weak_or_malformed_webhook_secret_is_refused_in_one_line(
    frontdesk: Frontdesk, secret: str, reason: str
) -> None:
    result = await frontdesk.run(
        webhook=True, WEBHOOK_BASE_URL="https://bot.example.com", WEBHOOK_SECRET=secret
    )
    line = result.one_line()
    assert line.startswith(f"frontdesk: configuration error: WEBHOOK_SECRET: {reason}"), line
    assert secret not in line


async def test_webhook_mode_without_its_address_is_refused_in_one_line(
    frontdesk: Frontdesk,
) -> None:
    result = await frontdesk.run(webhook=True)
    assert result.one_line().startswith(
        "frontdesk: cannot start: WEBHOOK_BASE_URL: is required for --webhook; "
    )


async def test_a_webhook_address_telegram_refuses_stops_start_up_naming_it(
    frontdesk: Frontdesk,
) -> None:
    # Found only when the webhook is set, after the checks: the log lines of the start come
    # first (LOG_LEVEL=INFO), the reason last.
    result = await frontdesk.run(
        webhook=True,
        WEBHOOK_BASE_URL="https://bot.example.com",  # the emulator calls loopback only
        WEBHOOK_SECRET="startup-test-secret-0123",
    )
    assert result.code == 2, result.stderr
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines()[-1] == (
        "frontdesk: cannot start: WEBHOOK_BASE_URL: Telegram refused the webhook "
        "https://bot.example.com/telegram/webhook: Bad Request: bad webhook: the emulator "
        "delivers to loopback URLs only; give a public https address (port 443, 80, 88 or 8443)"
    )


# --- the database -------------------------------------------------------------------------------


async def test_a_sqlite_file_in_a_missing_directory_stops_start_up(
    frontdesk: Frontdesk, tmp_path: Path
) -> None:
    missing = tmp_path / "no-such-dir"
    result = await frontdesk.run(DATABASE_URL=f"sqlite:///{missing}/frontdesk.sqlite3")
    assert result.one_line() == (
        f"frontdesk: cannot start: DATABASE_URL: the SQLite file's directory {missing} does not "
        "exist; create it, or point DATABASE_URL at a file in an existing directory"
    )


async def test_postgres_not_listening_stops_start_up(frontdesk: Frontdesk) -> None:
    port = closed_port()
    result = await frontdesk.run(DATABASE_URL=f"postgresql://frontdesk:pw@127.0.0.1:{port}/x")
    line = result.one_line()
    assert line == (
        f"frontdesk: cannot start: DATABASE_URL: PostgreSQL at 127.0.0.1:{port} refused the "
        "connection (nothing listens); start PostgreSQL, or fix the host and port in DATABASE_URL"
    )


@pytest.mark.postgres
async def test_an_unknown_postgres_database_stops_start_up(
    frontdesk: Frontdesk, postgres: PostgresDatabases
) -> None:
    url = postgres.url_for("frontdesk_no_such_database")
    result = await frontdesk.run(DATABASE_URL=url)
    assert result.one_line() == (
        "frontdesk: cannot start: DATABASE_URL: PostgreSQL at 127.0.0.1:5432 has no database "
        "'frontdesk_no_such_database'; create it (createdb frontdesk_no_such_database) or fix "
        "the name in DATABASE_URL"
    )


@pytest.mark.postgres
async def test_a_postgres_user_the_server_refuses_stops_start_up(
    frontdesk: Frontdesk, postgres: PostgresDatabases
) -> None:
    url = postgres.url_for("test").replace("://postgres@", "://frontdesk_no_such_role:secret@")
    result = await frontdesk.run(DATABASE_URL=url)
    line = result.one_line()
    assert line.startswith(
        "frontdesk: cannot start: DATABASE_URL: PostgreSQL at 127.0.0.1:5432 refused user "
        "'frontdesk_no_such_role'"
    ), line
    assert "secret" not in line


@pytest.fixture
async def password_refusing_postgres() -> AsyncIterator[int]:
    """A loopback server speaking just enough of PostgreSQL's protocol to ask for a password
    and refuse it (28P01), as a server with password authentication does (the machine's
    PostgreSQL trusts loopback, so it never asks)."""

    async def session(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            length, code = struct.unpack("!ii", await reader.readexactly(8))
            if code == 80877103:  # SSLRequest: no TLS here
                writer.write(b"N")
                length, code = struct.unpack("!ii", await reader.readexactly(8))
            await reader.readexactly(length - 8)  # the startup message's parameters
            writer.write(b"R" + struct.pack("!ii", 8, 3))  # AuthenticationCleartextPassword
            _, length = struct.unpack("!ci", await reader.readexactly(5))
            await reader.readexactly(length - 4)
            fields = b"SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed\0\0"
            writer.write(b"E" + struct.pack("!i", len(fields) + 4) + fields)
            await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()

    server = await asyncio.start_server(session, "127.0.0.1", 0)
    try:
        yield server.sockets[0].getsockname()[1]
    finally:
        server.close()
        await server.wait_closed()


async def test_a_wrong_postgres_password_stops_start_up(
    frontdesk: Frontdesk, password_refusing_postgres: int
) -> None:
    port = password_refusing_postgres
    url = f"postgresql://frontdesk:wrong-password@127.0.0.1:{port}/frontdesk"
    result = await frontdesk.run(DATABASE_URL=url)
    assert result.one_line() == (
        f"frontdesk: cannot start: DATABASE_URL: PostgreSQL at 127.0.0.1:{port} refused the "
        "password of user 'frontdesk'; put the right password in DATABASE_URL"
    )


# --- Redis --------------------------------------------------------------------------------------


async def test_redis_not_listening_at_start_stops_start_up(frontdesk: Frontdesk) -> None:
    port = closed_port()
    result = await frontdesk.run(REDIS_URL=f"redis://127.0.0.1:{port}/0")
    assert result.one_line() == (
        f"frontdesk: cannot start: REDIS_URL: Redis at 127.0.0.1:{port} refused the connection "
        "(nothing listens); start Redis, or fix REDIS_URL (unset, the database keeps the state)"
    )


@pytest.mark.parametrize(
    "url", ["127.0.0.1:6379", "http://127.0.0.1:6379/0", "redis://127.0.0.1:port/0"]
)
async def test_a_malformed_redis_url_is_refused_in_one_line(frontdesk: Frontdesk, url: str) -> None:
    result = await frontdesk.run(REDIS_URL=url)
    assert result.one_line().startswith(
        "frontdesk: configuration error: REDIS_URL: must look like redis://"
    )


@dataclass
class OwnRedis:
    port: int
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def stop(self) -> None:
        self.process.kill()
        self.process.wait(timeout=10)


def _start_redis(*extra: str) -> OwnRedis:
    binary = shutil.which("redis-server")
    if binary is None:
        message = "redis-server is not installed"
        if REQUIRE_SERVICES:
            pytest.fail(message)
        pytest.skip(message)
    port = free_port()
    process = subprocess.Popen(
        [
            *(binary, "--port", str(port), "--bind", "127.0.0.1", "--daemonize", "no"),
            *("--save", "", "--appendonly", "no", *extra),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    redis = OwnRedis(port, process)
    for _ in range(100):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return redis
        except OSError:
            if process.poll() is not None:
                break
            time.sleep(0.05)
    redis.stop()
    pytest.fail(f"redis-server on port {port} did not start")


@pytest.fixture
def own_redis() -> Iterator[OwnRedis]:
    """A Redis server of this test alone (the machine's is shared: never stopped by a test)."""
    redis = _start_redis()
    yield redis
    if redis.process.poll() is None:
        redis.stop()


@pytest.mark.redis
async def test_a_redis_password_refused_stops_start_up(frontdesk: Frontdesk) -> None:
    redis = _start_redis("--requirepass", "the-right-password")
    try:
        url = f"redis://:the-wrong-password@127.0.0.1:{redis.port}/0"
        result = await frontdesk.run(REDIS_URL=url)
    finally:
        redis.stop()
    line = result.one_line()
    assert line.startswith(
        f"frontdesk: cannot start: REDIS_URL: Redis at 127.0.0.1:{redis.port} refused the password"
    ), line
    assert "the-wrong-password" not in line


@pytest.mark.redis
async def test_redis_lost_while_running_makes_healthz_unhealthy(
    start_bot_process: StartBot, own_redis: OwnRedis
) -> None:
    bot = await start_bot_process(env={"REDIS_URL": own_redis.url, "HEALTH_TIMEOUT_SECONDS": "1"})
    assert isinstance(bot, BotProcess)
    async with aiohttp.ClientSession() as http:
        async with http.get(bot.base_url + "/healthz") as response:
            assert response.status == 200
            assert (await response.json())["checks"]["redis"] == {"status": "ok"}
        own_redis.stop()
        async with http.get(bot.base_url + "/healthz") as response:
            body = await response.json()
            assert (response.status, body["status"]) == (503, "unhealthy")
            assert body["checks"]["redis"]["status"] == "down"


# --- the queue ----------------------------------------------------------------------------------


async def test_rt_not_listening_stops_start_up(frontdesk: Frontdesk) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = await frontdesk.run(QUEUE="rt", RT_URL=url, RT_TOKEN="1-14-0123456789abcdef")
    assert result.one_line() == (
        f"frontdesk: cannot start: RT_URL: RT at {url} refused the connection (nothing listens); "
        "start RT, or fix RT_URL (RT's web address)"
    )


@pytest.fixture
async def refusing_rt() -> AsyncIterator[str]:
    """A loopback stand-in for RT's REST2 that refuses every credential but "token 1-2-seeing"
    and lets that one see no queue."""

    async def queue(request: web.Request) -> web.Response:
        authorization = request.headers.get("Authorization", "")
        if authorization != "token 1-2-seeing":
            return web.json_response({"message": "Unauthorized"}, status=401)
        return web.json_response({"message": "Forbidden"}, status=403)

    app = web.Application()
    app.router.add_get("/REST/2.0/queue/{name}", queue)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


@pytest.mark.parametrize(
    ("credentials", "setting"),
    [
        ({"RT_TOKEN": "1-14-0123456789abcdef"}, "RT_TOKEN"),
        ({"RT_USER": "frontdesk", "RT_PASSWORD": "wrong"}, "RT_USER/RT_PASSWORD"),
    ],
    ids=["token", "password"],
)
async def test_rt_refusing_the_credentials_stops_start_up(
    frontdesk: Frontdesk, refusing_rt: str, credentials: dict[str, str], setting: str
) -> None:
    result = await frontdesk.run(QUEUE="rt", RT_URL=refusing_rt, **credentials)
    assert result.one_line() == (
        f"frontdesk: cannot start: {setting}: RT at {refusing_rt} refused frontdesk's "
        f"credentials (401); give {setting} of frontdesk's RT account (README: Request Tracker)"
    )


async def test_rt_refusing_the_queue_to_the_account_stops_start_up(
    frontdesk: Frontdesk, refusing_rt: str
) -> None:
    result = await frontdesk.run(QUEUE="rt", RT_URL=refusing_rt, RT_TOKEN="1-2-seeing")
    assert result.one_line().startswith(
        f"frontdesk: cannot start: RT_TOKEN: RT at {refusing_rt} refused frontdesk's account "
        "the queue 'Support' (403); grant that account SeeQueue"
    )


# --- the HTTP port ------------------------------------------------------------------------------


@pytest.mark.parametrize("webhook", [False, True], ids=["polling", "webhook"])
async def test_the_port_in_use_stops_start_up_naming_web_port(
    frontdesk: Frontdesk, webhook: bool
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = await frontdesk.run(
            webhook=webhook,
            WEB_PORT=str(port),
            WEBHOOK_BASE_URL=f"http://127.0.0.1:{port}",
            WEBHOOK_SECRET="startup-test-secret-0123",
        )
    assert result.one_line() == (
        f"frontdesk: cannot start: WEB_PORT: port {port} on 127.0.0.1 is in use by another "
        f"program; stop it (`ss -ltnp 'sport = :{port}'` names it) or set WEB_PORT to a free port"
    )
