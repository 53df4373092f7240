"""The real bot, `python -m bot run`, as a child process of the test or of the session's fork
server (tests/helpers/forked_cli.py)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
from pathlib import Path

import aiohttp

from tests.helpers.forked_cli import ForkedProcess, ForkServer

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class BotProcess:
    def __init__(
        self,
        env: dict[str, str],
        *,
        webhook: bool,
        log_path: Path,
        command: tuple[str, ...] = ("run",),
        server: ForkServer | None = None,
    ) -> None:
        self.webhook = webhook
        # `run`, or `worker` (the background loops alone).
        self.command = command
        # WEB_PORT given: shared by several processes (WEB_REUSE_PORT).
        self.port = int(env["WEB_PORT"]) if "WEB_PORT" in env else free_port()
        self.env = {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "LOG_LEVEL": "INFO",
            "WEB_HOST": "127.0.0.1",
            "WEB_PORT": str(self.port),
            **env,
        }
        if webhook:
            self.env.setdefault("WEBHOOK_BASE_URL", f"http://127.0.0.1:{self.port}")
            self.env.setdefault("WEBHOOK_SECRET", "e2e-secret-" + str(self.port))
        self.log_path = log_path
        # Forked from the session's fork server (frontdesk imported once), or without one a
        # plain `python -m bot`: a real process either way, signals and exit code included.
        self.server = server
        self.process: asyncio.subprocess.Process | ForkedProcess | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, timeout: float = 30) -> None:
        args = [sys.executable, "-m", "bot", *self.command] + (
            ["--webhook"] if self.webhook else []
        )
        if self.server is not None:
            self.process = self.server.spawn(
                args[3:], env=self.env, cwd=ROOT, stdout=self.log_path, stderr=self.log_path
            )
            await self._wait_healthy(timeout)
            return
        log = self.log_path.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            *args, cwd=ROOT, env=self.env, stdout=log, stderr=log
        )
        log.close()
        await self._wait_healthy(timeout)

    async def _wait_healthy(self, timeout: float) -> None:
        deadline = asyncio.get_running_loop().time() + timeout
        async with aiohttp.ClientSession() as http:
            while asyncio.get_running_loop().time() < deadline:
                assert self.process is not None
                if self.process.returncode is not None:
                    raise RuntimeError(f"bot exited with {self.process.returncode}:\n{self.log()}")
                try:
                    async with http.get(self.base_url + "/healthz") as response:
                        if response.status == 200:
                            return
                except aiohttp.ClientError:
                    pass
                await asyncio.sleep(0.2)
        raise TimeoutError(f"bot did not become healthy:\n{self.log()}")

    async def stop(self, *, kill: bool = False, timeout: float = 20) -> int:
        """SIGTERM (a deploy) or SIGKILL (a crash); returns the exit code."""
        if self.process is None:
            return 0
        if (code := self.process.returncode) is not None:
            return code
        self.process.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
        try:
            return await asyncio.wait_for(self.process.wait(), timeout)
        except TimeoutError:
            self.process.kill()
            return await self.process.wait()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
