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
from typing import Any

import aiohttp
import pytest

from services.queue.base import Attachment
from services.queue.rt import attachments_payload

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


class RtSpecialist:
    """RT's superuser over REST2: what a specialist does in RT's web interface."""

    def __init__(self, session: aiohttp.ClientSession, server: RtServer) -> None:
        self.name = server.admin_user
        self._session = session
        self._api = server.base_url + "/REST/2.0/"
        self._headers = {
            "Authorization": aiohttp.encode_basic_auth(server.admin_user, server.admin_password)
        }

    async def call(self, method: str, path: str, body: Any = None) -> Any:
        async with self._session.request(
            method, self._api + path, json=body, headers=self._headers
        ) as response:
            assert response.status < 300, await response.text()
            return await response.json(content_type=None)

    async def reply(
        self, ticket_id: str, text: str, attachments: tuple[Attachment, ...] = ()
    ) -> None:
        body: dict[str, Any] = {"Content": text, "ContentType": "text/plain"}
        if attachments:
            body["Attachments"] = attachments_payload(attachments)
        await self.call("POST", f"ticket/{ticket_id}/correspond", body)

    async def note(self, ticket_id: str, text: str) -> None:
        await self.call(
            "POST", f"ticket/{ticket_id}/comment", {"Content": text, "ContentType": "text/plain"}
        )

    async def set_status(self, ticket_id: str, status: str) -> None:
        await self.call("PUT", f"ticket/{ticket_id}", {"Status": status})

    async def set_owner(self, ticket_id: str, owner: str) -> None:
        await self.call("PUT", f"ticket/{ticket_id}", {"Owner": owner})

    async def custom_fields(self, ticket_id: str) -> dict[str, list[str]]:
        ticket = await self.call("GET", f"ticket/{ticket_id}")
        return {field["name"]: field["values"] for field in ticket["CustomFields"]}


async def mail_in(server: RtServer, ticket_id: str, sender: str, text: str) -> None:
    """An e-mail reply to ticket `ticket_id` from `sender`, through RT's mail gateway (as
    rt-mailgate delivers it): anyone may write in, RT records the sender as its author."""
    message = (
        f"From: {sender}\nTo: support@localhost\nSubject: Re: ticket {ticket_id}\n"
        "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 8bit\n\n"
        f"{text}\n"
    )
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        async with session.post(
            server.base_url + "/REST/1.0/NoAuth/mail-gateway",
            data={
                "queue": server.queue,
                "action": "correspond",
                "ticket": ticket_id,
                "message": message,
            },
        ) as response:
            answer = await response.text()
    assert response.status == 200 and answer.startswith("ok"), answer


@dataclass(frozen=True, slots=True)
class RtStaffUser:
    """A specialist of the test RT that frontdesk acts for (scripts/rt-initialdata.pl: a
    privileged member of group Specialists, who may own tickets of queue Support)."""

    name: str
    real_name: str  # "" where RT has none: frontdesk shows the user name
    password: str = "specialist-test"


SPECIALIST = RtStaffUser("ivan", "Иван Петров")
SPECIALIST_WITHOUT_REAL_NAME = RtStaffUser("maria", "")
# An RT user who may not own tickets (unprivileged: RT refuses them OwnTicket).
NOT_A_SPECIALIST = "contractor@example.com"
