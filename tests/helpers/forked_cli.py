"""`python -m bot …` as a real process that skips the seconds of importing: a server process
imports frontdesk and aiogram once, then forks one child per command. The child gets the test's
environment, working directory, argv and its own stdout/stderr, runs `bot/__main__.py` as
`python -m bot` does, and exits with its code; a setting read at start-up is read in the child.

What it does not cover — the interpreter starting and importing — a few tests keep checking with
a plain `python -m bot` (tests/e2e/test_startup_errors.py, test_staff_cli_does_not_load_aiogram).

    server = ForkServer.start()
    child = server.spawn(["run"], env=..., cwd=..., stdout=path, stderr=path)
    code = child.wait()
"""

from __future__ import annotations

import atexit
import json
import os
import runpy
import signal
import subprocess
import sys
import threading
import traceback
from pathlib import Path
from typing import IO, Any

ROOT = Path(__file__).resolve().parents[2]


class ForkedProcess:
    def __init__(self, server: ForkServer, pid: int) -> None:
        self.server = server
        self.pid = pid
        self.returncode: int | None = None

    def wait(self) -> int:
        """Blocks until the child has exited; its exit code (negative: killed by that signal)."""
        if self.returncode is None:
            self.returncode = self.server._exit_code(self.pid)
        return self.returncode

    def kill(self) -> None:
        try:
            os.kill(self.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class ForkServer:
    """The server process, one per test session (per xdist worker). One child at a time: each
    test waits for its command to exit before the next."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self._lock = threading.Lock()
        self._exits: dict[int, int] = {}

    @classmethod
    def start(cls) -> ForkServer:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.helpers.forked_cli"],
            cwd=ROOT,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        server = cls(process)
        assert server._read() == {"ready": True}
        atexit.register(server.stop)
        return server

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            self.process.wait(timeout=30)

    def _read(self) -> dict[str, Any]:
        assert self.process.stdout is not None
        line = self.process.stdout.readline()
        if not line:
            raise RuntimeError("the fork server stopped")
        return dict(json.loads(line))

    def spawn(
        self, argv: list[str], *, env: dict[str, str], cwd: Path | str, stdout: Path, stderr: Path
    ) -> ForkedProcess:
        request = {
            "argv": argv,
            "env": env,
            "cwd": str(cwd),
            "stdout": str(stdout),
            "stderr": str(stderr),
        }
        with self._lock:
            assert self.process.stdin is not None
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            started = self._read()
        return ForkedProcess(self, int(started["pid"]))

    def _exit_code(self, pid: int) -> int:
        with self._lock:
            while pid not in self._exits:
                message = self._read()
                self._exits[int(message["pid"])] = int(message["code"])
            return self._exits.pop(pid)


# --- the server ---------------------------------------------------------------------------------


def _child(request: dict[str, Any], channel: int) -> None:
    """In the forked child: become `python -m bot ARGV` and never return."""
    code = 1
    try:
        os.close(channel)  # the server's replies: only the server writes them
        for fd, path, flags in (
            (0, os.devnull, os.O_RDONLY),
            (1, request["stdout"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
            (2, request["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC),
        ):
            opened = os.open(path, flags, 0o644)
            os.dup2(opened, fd)
            os.close(opened)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        sys.argv = ["bot", *request["argv"]]
        try:
            runpy.run_module("bot", run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exit_:
            # As the interpreter does: None is 0, a number is the code, anything else is printed.
            if exit_.code is None:
                code = 0
            elif isinstance(exit_.code, int):
                code = exit_.code
            else:
                print(exit_.code, file=sys.stderr)
                code = 1
        except BaseException:
            traceback.print_exc()
            code = 1
        atexit._run_exitfuncs()  # logging.shutdown among them, as at a normal exit
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def _serve(requests: IO[str], replies: IO[str]) -> None:
    def reply(message: dict[str, Any]) -> None:
        replies.write(json.dumps(message) + "\n")
        replies.flush()

    running: set[int] = set()
    reaper_lock = threading.Lock()

    def reap(pid: int) -> None:
        _, status = os.waitpid(pid, 0)
        with reaper_lock:
            running.discard(pid)
            reply({"pid": pid, "code": os.waitstatus_to_exitcode(status)})

    reply({"ready": True})
    for line in requests:
        request = json.loads(line)
        with reaper_lock:  # no reply written by a reaper while the child forks
            pid = os.fork()
            if pid == 0:
                _child(request, replies.fileno())
            running.add(pid)
            reply({"pid": pid})
        threading.Thread(target=reap, args=(pid,), daemon=True).start()
    with reaper_lock:
        for pid in running:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass


def main() -> None:
    # What `frontdesk run` imports, once: the seconds each plain `python -m bot run` spends.
    import aiogram.exceptions  # noqa: F401
    import redis.asyncio  # noqa: F401

    import bot.app
    import bot.cli
    import bot.factories
    import bot.startup  # noqa: F401

    replies = os.fdopen(os.dup(1), "w")
    # The server's own stdout would be the channel; keep prints of imported code out of it.
    os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
    _serve(sys.stdin, replies)


if __name__ == "__main__":
    main()
