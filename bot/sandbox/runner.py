"""`frontdesk sandbox`: frontdesk without Telegram, in one process and offline.

The Bot API emulator on loopback, the real bot application (bot/app.py) polling it through
aiogram's own HTTP client, the builtin queue on SQLite under `./.frontdesk-sandbox/`, the demo
people (bot/sandbox/demo.py) and a web page on loopback to be any of them and a specialist in the
queue (bot/sandbox/web.py). The tests run the bot in-process the same way
(tests/e2e/bot_in_process.py uses `settings_from` and `release_routers`)."""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import os
import shutil
import signal
import socket
import sys
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict

from bot.config import Settings

logger = logging.getLogger(__name__)

FOLDER = ".frontdesk-sandbox"
DATABASE = "frontdesk.sqlite3"
DEMO_MARKER = "demo-created"
# A fixed fake token: the emulator accepts it, Telegram never sees it (nothing leaves loopback).
TOKEN = "7000000001:sandbox-offline-not-a-telegram-token"
BOT_USERNAME = "frontdesk_sandbox_bot"
DEFAULT_PORT = 8090


class EnvironmentSettings(Settings):
    """Settings from the given values alone: neither the process's environment nor a `.env`."""

    model_config = SettingsConfigDict(env_file=None, extra="ignore")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        *args: Any,
        **kwargs: Any,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        return (init_settings,)


def settings_from(env: dict[str, str]) -> Settings:
    """Settings from these variables (names as in the environment), nothing else."""
    fields = Settings.model_fields
    return EnvironmentSettings.model_validate(
        {k.lower(): v for k, v in env.items() if k.lower() in fields}
    )


def release_routers() -> None:
    """handlers' routers are module-level and aiogram attaches a router to one dispatcher for
    good; a process running a second bot application (the tests; a sandbox started after
    another) detaches them from the previous one first (aiogram has no public way)."""
    from handlers import get_routers

    for router in get_routers():
        parent = router.parent_router
        if parent is not None:
            parent.sub_routers.remove(router)
            router._parent_router = None


def sandbox_env(database: Path, api_url: str) -> dict[str, str]:
    return {
        "BOT_TOKEN": TOKEN,
        "BOT_USERNAME": BOT_USERNAME,
        "TELEGRAM_API_URL": api_url,
        "DATABASE_URL": f"sqlite+aiosqlite:///{database}",
        "QUEUE": "builtin",
        "LOG_LEVEL": "WARNING",
        # A specialist's reply in the queue panel reaches the merchant within seconds.
        "SYNC_INTERVAL_SECONDS": "2",
        "SYNC_OVERLAP_SECONDS": "10",
        "SLA_WATCH_INTERVAL_SECONDS": "10",
        "FILING_RETRY_BASE_SECONDS": "0.5",
        "FILING_RETRY_CAP_SECONDS": "5",
        # The person linked to nothing can still try a technical request.
        "UNLINKED_MAY_FILE": "technical",
        # One visitor clicking through the demo: neither Telegram's pace nor flood control
        # should make them wait.
        "TELEGRAM_CHAT_RATE": "20 per second",
        "FLOOD_MESSAGES": "200",
        "TICKETS_PER_HOUR": "200",
        "DEFAULT_LOCALE": "ru",
    }


class Sandbox:
    """Everything of the sandbox, started by `async with` (or start/stop) in the running loop."""

    def __init__(
        self,
        directory: Path,
        *,
        host: str = "127.0.0.1",
        port: int = DEFAULT_PORT,
        reset: bool = False,
        sock: socket.socket | None = None,
    ) -> None:
        """`sock`: a listening socket to serve on (`listen`), else one on host:port is opened."""
        self.folder = directory.resolve() / FOLDER
        self.host = host
        self.port = port
        self.reset = reset
        self._sock = sock
        self._stack: AsyncExitStack | None = None
        self._polling: asyncio.Task[None] | None = None
        # Set once started.
        self.emulator: Any = None  # TelegramEmulator
        self.app: Any = None  # bot.app.Application
        self.web: Any = None  # bot.sandbox.web.SandboxWeb

    @property
    def database(self) -> Path:
        return self.folder / DATABASE

    @property
    def demo_marker(self) -> Path:
        return self.folder / DEMO_MARKER

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    async def start(self) -> None:
        # Imported here: aiogram and the application take a while, the CLI's --help does not.
        from bot.app import application, poll
        from bot.sandbox import demo
        from bot.sandbox.telegram_emulator import TelegramEmulator
        from bot.sandbox.web import SandboxWeb

        if self._sock is None:
            self._sock = listen(self.host, self.port)
        self.port = int(self._sock.getsockname()[1])
        # A demo that never finished (stopped while linking) is started afresh, as --reset does.
        if (self.reset or not self.demo_marker.exists()) and self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        new = not self.demo_marker.exists()
        stack = AsyncExitStack()
        self._stack = stack
        stack.callback(self._sock.close)  # last: the page's port is free once all has stopped
        try:
            self.emulator = await stack.enter_async_context(
                TelegramEmulator(token=TOKEN, bot_username=BOT_USERNAME, bot_first_name="frontdesk")
            )
            for person in demo.PEOPLE:
                self.emulator.add_user(person.user)
            settings = settings_from(sandbox_env(self.database, self.emulator.base_url))
            release_routers()
            self.app = await stack.enter_async_context(application(settings))
            self._polling = asyncio.create_task(
                poll(self.app, handle_signals=False), name="sandbox-polling"
            )
            stack.push_async_callback(self._stop_polling)
            await self._wait_polling()
            sessionmaker = self.app.dispatcher["sessionmaker"]
            if new:
                await demo.create(self.emulator, sessionmaker)
                self.demo_marker.write_text("the demo people are linked\n")
            else:
                await self._restore_staff_menus(sessionmaker)
            self.web = SandboxWeb(self.emulator, self.app)
            await stack.enter_async_context(self.web)
            await self.web.serve(self._sock)
        except BaseException:
            self._stack = None
            await stack.aclose()
            raise

    async def _wait_polling(self, timeout: float = 30) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while not self.emulator.polling:
            assert self._polling is not None
            if self._polling.done():
                self._polling.result()  # its failure, as it is
                raise RuntimeError("the bot stopped polling during start-up")
            if loop.time() > deadline:
                raise TimeoutError("the bot did not start polling the emulator")
            await asyncio.sleep(0.02)

    async def _restore_staff_menus(self, sessionmaker: Any) -> None:
        """The emulator forgets between runs what the database remembers: the staff's own
        command menus, set when they linked, are set again."""
        from handlers.staff import show_staff_commands
        from services import staff

        async with sessionmaker() as session:
            members = await staff.list_staff(session)
        i18n = self.app.dispatcher["i18n"]
        for member in members:
            await show_staff_commands(self.app.bot, i18n, member.telegram_id)

    async def _stop_polling(self) -> None:
        polling = self._polling
        if polling is None:
            return
        self._polling = None
        if not polling.done():
            try:
                await self.app.dispatcher.stop_polling()
            except RuntimeError:  # stopped before polling began
                polling.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await polling

    async def stop(self) -> None:
        stack, self._stack = self._stack, None
        if stack is not None:
            await stack.aclose()

    async def __aenter__(self) -> Sandbox:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on host:port (0: any free port). Connections made before the server
    serves on it wait in its backlog: the URL can be printed before the bot is up."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    sock.setblocking(False)
    return sock


def url_of(sock: socket.socket) -> str:
    host, port = sock.getsockname()[:2]
    return f"http://{f'[{host}]' if ':' in host else host}:{port}/"


async def run(directory: Path, *, sock: socket.socket, reset: bool) -> None:
    """Runs the sandbox on `sock` until SIGINT or SIGTERM (which may come during start-up)."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    host, port = sock.getsockname()[:2]
    sandbox = Sandbox(directory, host=host, port=port, reset=reset, sock=sock)
    starting = asyncio.create_task(sandbox.start(), name="sandbox-start")
    stopping = asyncio.create_task(stop.wait(), name="sandbox-stop")
    try:
        await asyncio.wait({starting, stopping}, return_when=asyncio.FIRST_COMPLETED)
        if starting.done():
            starting.result()  # a failure to start, as it is
            await stopping
        else:
            starting.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await starting
    finally:
        stopping.cancel()
        await sandbox.stop()


def main(directory: Path, *, host: str, port: int, reset: bool) -> None:
    """`frontdesk sandbox`: the URL first (the page waits for the rest), then everything."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        sock = listen(host, port)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            print(
                f"frontdesk sandbox: port {port} on {host} is in use: pass --port N "
                "(or --port 0 for any free port)",
                file=sys.stderr,
            )
        else:
            print(f"frontdesk sandbox: cannot listen on {host}:{port}: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    # SIGTERM before the event loop takes over (the URL is out, the rest is starting) stops as
    # Ctrl-C does, never killing the process halfway.
    signal.signal(signal.SIGTERM, _interrupt)
    print(f"frontdesk sandbox: open {url_of(sock)}", flush=True)
    try:
        asyncio.run(run(directory, sock=sock, reset=reset))
    except KeyboardInterrupt:
        pass
    except Exception as error:
        if logging.getLogger().isEnabledFor(logging.DEBUG) or os.environ.get("SANDBOX_DEBUG"):
            raise
        # One line, as every start-up failure of frontdesk; SANDBOX_DEBUG=1 shows the traceback.
        print(f"frontdesk sandbox: stopped: {type(error).__name__}: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    print("frontdesk sandbox: stopped", file=sys.stderr, flush=True)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt
