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

import asyncio
import atexit
import contextlib
import json
import os
import queue
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
    """A child of the fork server, as the test sees it: asyncio.subprocess.Process's few calls
    the tests make (returncode, wait, send_signal, kill)."""

    def __init__(self, server: ForkServer, pid: int) -> None:
        self.server = server
        self.pid = pid

    @property
    def returncode(self) -> int | None:
        """The exit code once it has exited (negative: killed by that signal), else None."""
        return self.server._exits.get(self.pid)

    def _exited_within(self, timeout: float) -> None:
        with self.server._exited:
            self.server._exited.wait_for(lambda: self.returncode is not None, timeout)

    async def wait(self) -> int:
        """Until it has exited. The wait blocks a thread, never the event loop, and no longer
        than half a second at a time, so that a cancelled wait leaves no thread behind."""
        while (code := self.returncode) is None:
            await asyncio.to_thread(self._exited_within, 0.5)
        return code

    def send_signal(self, sig: int) -> None:
        if self.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, sig)

    def kill(self) -> None:
        self.send_signal(signal.SIGKILL)


class ForkServer:
    """The server process, one per test session (per xdist worker), with a thread here reading
    its messages: which child a request started, and each child's exit code."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self._spawning = threading.Lock()
        self._started: queue.Queue[int] = queue.Queue()
        self._exited = threading.Condition()
        self._exits: dict[int, int] = {}
        self._runs = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._ready = threading.Event()
        self._reader.start()

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
        if not server._ready.wait(120):
            server.stop()
            raise RuntimeError("the fork server did not start within 120 s")
        atexit.register(server.stop)
        return server

    def stop(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()  # the server kills the children still running
            self.process.wait(timeout=30)

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            message = json.loads(line)
            if "ready" in message:
                self._ready.set()
            elif "code" in message:
                with self._exited:
                    self._exits[int(message["pid"])] = int(message["code"])
                    self._exited.notify_all()
            else:
                self._started.put(int(message["pid"]))

    def spawn(
        self, argv: list[str], *, env: dict[str, str], cwd: Path | str, stdout: Path, stderr: Path
    ) -> ForkedProcess:
        """Starts `python -m bot ARGV` with exactly `env` as its environment."""
        request = {
            "argv": argv,
            "env": env,
            "cwd": str(cwd),
            "stdout": str(stdout),
            "stderr": str(stderr),
        }
        with self._spawning:
            assert self.process.stdin is not None
            self.process.stdin.write(json.dumps(request) + "\n")
            self.process.stdin.flush()
            pid = self._started.get(timeout=30)
        return ForkedProcess(self, pid)

    async def run(
        self,
        argv: list[str],
        *,
        env: dict[str, str],
        cwd: Path,
        logs: Path | None = None,
        timeout: float = 60,
    ) -> tuple[int, str]:
        """`python -m bot ARGV` until it exits: its exit code and stderr (its stdout and stderr
        are kept in `logs`, by default cwd: frontdesk-N.stdout and frontdesk-N.stderr)."""
        self._runs += 1
        stderr = (logs or cwd) / f"frontdesk-{self._runs}.stderr"
        stdout = (logs or cwd) / f"frontdesk-{self._runs}.stdout"
        child = self.spawn(argv, env=env, cwd=cwd, stdout=stdout, stderr=stderr)
        try:
            code = await asyncio.wait_for(child.wait(), timeout)
        except TimeoutError:
            child.kill()
            await child.wait()
            raise TimeoutError(
                f"frontdesk did not stop within {timeout} s:\n{stderr.read_text()}"
            ) from None
        return code, stderr.read_bytes().decode(errors="replace")


async def run_plain(
    argv: list[str], *, env: dict[str, str], cwd: Path, timeout: float = 60
) -> tuple[int, str]:
    """`python -m bot ARGV` started the ordinary way (the interpreter and its imports included)
    until it exits: its exit code and stderr; the fork server's `run` without the server."""
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *argv,
        cwd=cwd,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, stderr = await asyncio.wait_for(process.communicate(), timeout)
    except TimeoutError:
        process.kill()
        _, stderr = await process.communicate()
        raise TimeoutError(
            f"frontdesk did not stop within {timeout} s:\n{stderr.decode()}"
        ) from None
    assert process.returncode is not None
    return process.returncode, stderr.decode(errors="replace")


# --- the server ---------------------------------------------------------------------------------


def _child(request: dict[str, Any], channel: int) -> None:
    """In the forked child: become `python -m bot ARGV` and never return."""
    code = 1
    try:
        os.close(channel)  # the server's replies: only the server writes them
        # Appended to, as a log file opened "ab"; one file for both when the paths agree.
        null = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null, 0)
        os.close(null)
        for fd, path in ((1, request["stdout"]), (2, request["stderr"])):
            if fd == 2 and path == request["stdout"]:
                os.dup2(1, 2)
                continue
            opened = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
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
