"""The real bot application run in the test's own event loop: `bot.app.application(settings)`,
its HTTP server and long polling (or the webhook), talking to the Bot API emulator over loopback
HTTP through aiogram's real client. What `python -m bot run` does, minus the process: no Python
start-up, no aiogram import per bot. Tests of the process itself (SIGKILL, signals, the CLI) use
`BotProcess`; this runner has the same surface (start, stop, base_url, env, log)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path
from typing import Any, Protocol

import aiohttp

from bot.app import Application, application, build_web_app, poll, serving, set_webhook
from bot.config import Settings
from bot.sandbox.runner import release_routers, settings_from
from tests.e2e.bot_process import free_port

# The loggers of the application, as the process's log would have them.
LOGGERS = ("bot", "handlers", "services", "aiogram", "aiohttp")


class RunningBot(Protocol):
    """What a test sees of a bot, in-process or a process."""

    env: dict[str, str]
    log_path: Path

    @property
    def base_url(self) -> str: ...

    async def start(self, timeout: float = 30) -> None: ...

    async def stop(self, *, kill: bool = False, timeout: float = 20) -> int: ...

    def log(self) -> str: ...


class _OwnRecords(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.name.split(".", 1)[0] in LOGGERS


class InProcessBot:
    # One at a time in a test process: two dispatchers cannot share the routers.
    running: InProcessBot | None = None

    def __init__(self, env: dict[str, str], *, webhook: bool, log_path: Path) -> None:
        self.webhook = webhook
        self.port = free_port()
        self.env = {"LOG_LEVEL": "INFO", "WEB_HOST": "127.0.0.1", "WEB_PORT": str(self.port), **env}
        if webhook:
            self.env.setdefault("WEBHOOK_BASE_URL", f"http://127.0.0.1:{self.port}")
            self.env.setdefault("WEBHOOK_SECRET", "e2e-secret-" + str(self.port))
        self.log_path = log_path
        self.app: Application | None = None
        self._task: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._handler: logging.Handler | None = None
        self._levels: dict[str, int] = {}

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 30) -> None:
        settings = settings_from(self.env)
        if InProcessBot.running is not None:
            raise RuntimeError("another in-process bot is running; stop it first")
        release_routers()
        InProcessBot.running = self
        self._capture_log(settings.log_level.upper())
        self._task = asyncio.create_task(self._run(settings), name=f"bot-{self.port}")
        await self._wait_healthy(timeout)

    async def _run(self, settings: Settings) -> None:
        async with (
            application(settings) as app,
            serving(build_web_app(app, webhook=self.webhook), settings),
        ):
            self.app = app
            if self.webhook:
                assert settings.webhook_url is not None and settings.webhook_secret is not None
                await set_webhook(app, settings.webhook_url, settings.webhook_secret)
                await self._stop.wait()
                return
            polling = asyncio.create_task(poll(app, handle_signals=False))
            stopping = asyncio.create_task(self._stop.wait())
            await asyncio.wait({polling, stopping}, return_when=asyncio.FIRST_COMPLETED)
            stopping.cancel()
            if not polling.done():
                try:
                    await app.dispatcher.stop_polling()  # what SIGTERM does in the process
                except RuntimeError:  # stopped before polling began
                    polling.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await polling

    async def _wait_healthy(self, timeout: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        async with aiohttp.ClientSession() as http:
            while asyncio.get_running_loop().time() < deadline:
                assert self._task is not None
                if self._task.done():
                    await self.stop()
                    raise RuntimeError(f"bot stopped during start-up:\n{self.log()}")
                try:
                    async with http.get(self.base_url + "/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.05)
        raise TimeoutError(f"bot did not become healthy:\n{self.log()}")

    async def stop(self, *, kill: bool = False, timeout: float = 20) -> int:
        """Stops as SIGTERM would (polling ends, workers are cancelled, connections closed);
        returns 0, or 1 if the application failed. A crash (kill) needs a real process."""
        if kill:
            raise NotImplementedError("SIGKILL needs a process: use the start_bot_process fixture")
        if self._task is None:
            if InProcessBot.running is self:
                InProcessBot.running = None
            return 0
        self._stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout)
        except TimeoutError:
            self._task.cancel()
        code = 0
        try:
            await self._task
        except BaseException:  # the application's own failure, as a process would exit with it
            logging.getLogger("bot").exception("the application failed")
            code = 1
        finally:
            self._task = None
            self._release_log()
            InProcessBot.running = None
        return code

    def background_tasks(self, prefix: str) -> list[asyncio.Task[Any]]:
        """The application's unfinished tasks whose name starts with `prefix` (they run in this
        test's event loop), e.g. "queue-event-": the pushed events being applied."""
        return [t for t in asyncio.all_tasks() if t.get_name().startswith(prefix) and not t.done()]

    def log(self) -> str:
        if self._handler is not None:
            self._handler.flush()
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def _capture_log(self, level: str) -> None:
        handler = logging.FileHandler(self.log_path, encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        handler.addFilter(_OwnRecords())
        handler.setLevel(level)
        for name in LOGGERS:
            logger = logging.getLogger(name)
            self._levels[name] = logger.level
            logger.setLevel(min(logger.getEffectiveLevel(), logging.getLevelName(level)))
        logging.getLogger().addHandler(handler)
        self._handler = handler

    def _release_log(self) -> None:
        if self._handler is None:
            return
        logging.getLogger().removeHandler(self._handler)
        self._handler.close()
        self._handler = None
        for name, level in self._levels.items():
            logging.getLogger(name).setLevel(level)
