"""A real Request Tracker 5 for the tests, started by scripts/rt-test-server.sh (never by hand).

The script installs Debian's request-tracker5 when it is missing, so it needs root and apt. Where
either is lacking the tests using `rt_server` are skipped, unless FRONTDESK_REQUIRE_RT=1, where
they fail: a run that must cover RT never silently skips it. Any other failure of the script
fails the tests. The server is left running after the session (the next one reuses it in a
second); `scripts/rt-test-server.sh stop` ends it.

Import the fixture where it is needed: `from tests.integration.rt_fixture import rt_server`.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "rt-test-server.sh"
TOKEN_FILE = Path("/tmp/frontdesk-rt/frontdesk.token")
# Installing the packages takes about 40 s on a fresh machine; leave room for a slow mirror.
START_TIMEOUT = 900


@dataclass(frozen=True, slots=True)
class RtServer:
    """Where the test RT answers, and its two logins.

    `user`/`password` (and `token`) are frontdesk's own account, with rights on queue `queue`
    only; `admin_user`/`admin_password` is RT's superuser, who plays the specialist.
    """

    base_url: str
    user: str
    password: str
    token: str
    admin_user: str
    admin_password: str
    queue: str = "Support"


def _unavailable(reason: str) -> None:
    if os.environ.get("FRONTDESK_REQUIRE_RT") == "1":
        pytest.fail(f"{reason} (FRONTDESK_REQUIRE_RT=1)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def rt_server() -> RtServer:
    if os.geteuid() != 0:
        _unavailable("the RT test server needs root: scripts/rt-test-server.sh installs packages")
    if shutil.which("apt-get") is None or shutil.which("dpkg-query") is None:
        _unavailable("the RT test server needs apt (Debian's request-tracker5 package)")
    try:
        started = subprocess.run(
            ["bash", str(SCRIPT), "start"],
            capture_output=True,
            text=True,
            timeout=START_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        pytest.fail(f"{SCRIPT.name} start took longer than {START_TIMEOUT} s")
    if started.returncode != 0:
        pytest.fail(f"{SCRIPT.name} start failed ({started.returncode}):\n{started.stderr[-3000:]}")
    lines = started.stdout.strip().splitlines()
    if not lines or not lines[-1].startswith("http://"):
        pytest.fail(f"{SCRIPT.name} start printed no base URL: {started.stdout!r}")
    return RtServer(
        base_url=lines[-1],
        user="frontdesk",
        password="frontdesk-test",
        token=TOKEN_FILE.read_text().strip(),
        admin_user="root",
        admin_password="password",
    )
