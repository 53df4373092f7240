"""`frontdesk sandbox`: the emulator, the real bot, the builtin queue and the page's API in one
process. Everything here goes through the page's HTTP API only, as the page does: the merchant
files a request through the wizard, a specialist answers it from the queue panel with a file, and
the reply arrives in the merchant's chat on the event stream."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from bot.sandbox.runner import Sandbox

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.e2e
URL_LINE = re.compile(r"^frontdesk sandbox: open (http://127\.0\.0\.1:(\d+)/)$")
Message = dict[str, Any]


class Page:
    """What the sandbox's page does, over its API."""

    def __init__(self, http: aiohttp.ClientSession, base: str) -> None:
        self.http = http
        self.base = base.rstrip("/")
        self.events: list[tuple[str, dict[str, Any]]] = []
        self._reader: asyncio.Task[None] | None = None

    async def get(self, path: str) -> Any:
        async with self.http.get(self.base + path) as response:
            assert response.status == 200, await response.text()
            return await response.json()

    async def post(self, path: str, **kwargs: Any) -> Any:
        async with self.http.post(self.base + path, **kwargs) as response:
            body = await response.json()
            assert response.status == 200, body
            return body

    async def chat(self, person: str) -> dict[str, Any]:
        return await self.get(f"/api/chats/{person}")

    async def say(self, person: str, text: str) -> None:
        assert await self.post(f"/api/chats/{person}/messages", json={"text": text}) == {"ok": True}

    async def wait(
        self, person: str, found: Callable[[Message], bool], *, after: int = 0, timeout: float = 20
    ) -> Message:
        """The newest bot message after message id `after` that satisfies `found`."""
        deadline = asyncio.get_running_loop().time() + timeout
        while True:
            messages = (await self.chat(person))["messages"]
            for message in reversed(messages):
                if message["from"] == "bot" and message["id"] > after and found(message):
                    return message
            if asyncio.get_running_loop().time() > deadline:
                shown = [(m["id"], m["html"][:100], m["buttons"]) for m in messages[-5:]]
                raise TimeoutError(f"no such message in {person}'s chat: {shown}")
            await asyncio.sleep(0.1)

    async def last_id(self, person: str) -> int:
        messages = (await self.chat(person))["messages"]
        return messages[-1]["id"] if messages else 0

    async def press(self, person: str, label: str, *, after: int = 0) -> dict[str, Any]:
        """Presses the button whose text contains `label` on the newest message showing it."""
        message = await self.wait(person, lambda m: _button(m, label) is not None, after=after)
        button = _button(message, label)
        assert button is not None and button["data"]
        return await self.post(
            f"/api/chats/{person}/press", json={"message_id": message["id"], "data": button["data"]}
        )

    def listen(self) -> None:
        self._reader = asyncio.create_task(self._read_events())

    async def _read_events(self) -> None:
        async with self.http.get(
            self.base + "/api/events", timeout=aiohttp.ClientTimeout(total=None)
        ) as response:
            assert response.headers["Content-Type"].startswith("text/event-stream")
            name = None
            async for raw in response.content:
                line = raw.decode().rstrip("\n")
                if line.startswith("event: "):
                    name = line.removeprefix("event: ")
                elif line.startswith("data: ") and name is not None:
                    self.events.append((name, json.loads(line.removeprefix("data: "))))
                    name = None

    async def event(
        self, found: Callable[[str, dict[str, Any]], bool], timeout: float = 30
    ) -> dict[str, Any]:
        deadline = asyncio.get_running_loop().time() + timeout
        while asyncio.get_running_loop().time() < deadline:
            for name, data in self.events:
                if found(name, data):
                    return data
            await asyncio.sleep(0.1)
        raise TimeoutError(f"no such event among {[n for n, _ in self.events]}")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, aiohttp.ClientError):
                await self._reader


def _button(message: Message, label: str) -> dict[str, Any] | None:
    return next((b for row in message["buttons"] for b in row if label in b["text"]), None)


def _has(*parts: str) -> Callable[[Message], bool]:
    return lambda message: all(part in message["html"] for part in parts)


@pytest.fixture
async def page(tmp_path: Path) -> AsyncIterator[Page]:
    async with (
        Sandbox(tmp_path, port=0) as sandbox,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http,
    ):
        page = Page(http, sandbox.url)
        page.listen()
        try:
            yield page
        finally:
            await page.close()


async def test_a_merchant_files_through_the_page_and_gets_the_specialists_reply_with_a_file(
    page: Page,
) -> None:
    people = await page.get("/api/people")
    assert [p["id"] for p in people] == ["merchant", "unlinked", "specialist", "lead"]
    assert all(p["name"] and p["description"] and p["user_id"] for p in people)
    english = await page.get("/api/people?lang=en")
    assert "Owner of «Цветочная лавка»" in english[0]["description"]
    assert "Владелец «Цветочная лавка»" in people[0]["description"]

    # Linked by the real link tokens: the bot's answers to `/start <token>` are in the chat.
    chat = await page.chat("merchant")
    texts = [m["html"] for m in chat["messages"]]
    assert any("<b>Цветочная лавка</b>" in t for t in texts), texts
    assert any("<b>Книжный угол</b>" in t for t in texts), texts
    assert {"new", "tickets", "quota"} <= {c["command"] for c in chat["commands"]}
    assert (await page.chat("unlinked"))["messages"] == []

    # The wizard, button by button, by the buttons' callback data.
    start = await page.last_id("merchant")
    await page.say("merchant", "/new")
    await page.press("merchant", "flowers.example.com", after=start)
    await page.press("merchant", "Доработка", after=start)
    await page.press("merchant", "Шаблон магазина", after=start)
    await page.wait("merchant", _has("<b>тему</b>"), after=start)
    await page.say("merchant", "Поменять баннер на главной")
    asked = await page.last_id("merchant")
    await page.wait("merchant", _has("Опишите"), after=asked - 1)
    await page.say("merchant", "Страница https://flowers.example.com/ — заменить баннер <весна>.")
    await page.press("merchant", "✅ Готово", after=asked)
    await page.press("merchant", "Пропустить »", after=asked)
    review = await page.wait("merchant", _has("Проверьте обращение"), after=asked)
    assert "&lt;весна&gt;" in review["html"]
    before_send = await page.last_id("merchant")
    await page.press("merchant", "✅ Отправить", after=asked)
    registered = await page.wait("merchant", _has("под номером"), after=before_send - 1, timeout=30)
    number = re.search(r"#(\d+)", registered["html"])
    assert number, registered["html"]
    assert "⏱ Первая реакция" in registered["html"]
    assert "🛠 Бесплатные доработки в этом месяце" in registered["html"]

    # The queue panel lists it with its deadline.
    queue = await page.get("/api/queue")
    assert queue["staff"] == ["ivanov", "petrova"]
    ticket = queue["tickets"][0]
    assert ticket["number"] == number.group(1)
    assert ticket["subject"] == "Поменять баннер на главной"
    assert ticket["store"] == "flowers.example.com"
    assert ticket["due"] and ticket["owner"] is None
    detail = await page.get(f"/api/queue/{ticket['number']}")
    assert "&lt;весна&gt;" in detail["messages"][0]["html"]
    assert await page.event(lambda name, _: name == "queue") == {}

    # A specialist takes it and answers with a file, as in the queue's web interface.
    await page.post(f"/api/queue/{ticket['number']}/assign", json={"owner": "ivanov"})
    form = aiohttp.FormData()
    form.add_field("text", "Баннер заменён, проверьте, пожалуйста.")
    form.add_field("author", "ivanov")
    form.add_field(
        "file", b"%PDF-1.4 banner", filename="banner.pdf", content_type="application/pdf"
    )
    await page.post(f"/api/queue/{ticket['number']}/reply", data=form)
    assert (await page.get("/api/queue"))["tickets"][0]["owner"] == "ivanov"
    # The specialist it was assigned to gets its card in Telegram.
    card = await page.event(
        lambda name, data: (
            name == "message"
            and data["person"] == "specialist"
            and f"#{ticket['number']}" in data["message"]["html"]
        )
    )
    assert card["message"]["from"] == "bot"

    reply = await page.event(
        lambda name, data: (
            name == "message"
            and data["person"] == "merchant"
            and "Баннер заменён" in data["message"]["html"]
        )
    )
    assert reply["message"]["from"] == "bot"
    file = await page.event(
        lambda name, data: (
            name == "message"
            and data["person"] == "merchant"
            and (data["message"]["file"] or {}).get("name") == "banner.pdf"
        )
    )
    async with page.http.get(page.base + file["message"]["file"]["url"]) as response:
        assert await response.read() == b"%PDF-1.4 banner"
    detail = await page.get(f"/api/queue/{ticket['number']}")
    answer = detail["messages"][-1]
    assert answer["by_support"] and answer["author"] == "ivanov"
    assert [f["name"] for f in answer["files"]] == ["banner.pdf"]
    async with page.http.get(page.base + answer["files"][0]["url"]) as response:
        assert await response.read() == b"%PDF-1.4 banner"

    await page.post(f"/api/queue/{ticket['number']}/status", json={"status": "resolved"})
    assert (await page.get("/api/queue"))["tickets"][0]["status"] == "resolved"


async def test_the_staff_see_the_staff_commands_and_errors_are_json(page: Page) -> None:
    specialist = await page.chat("specialist")
    commands = {c["command"] for c in specialist["commands"]}
    assert {"whoami", "reply", "take", "resolve"} <= commands
    assert "whoami" not in {c["command"] for c in (await page.chat("merchant"))["commands"]}
    async with page.http.get(page.base + "/api/chats/nobody") as response:
        assert response.status == 404
        assert "error" in await response.json()
    async with page.http.post(
        page.base + "/api/chats/merchant/press", json={"message_id": 999, "data": "x"}
    ) as response:
        assert response.status == 400
        assert "error" in await response.json()
    async with page.http.post(
        page.base + "/api/queue/1/status", json={"status": "pending"}
    ) as response:
        assert response.status in (400, 404)
    # Another site in the same browser cannot act in the sandbox, nor reach it by another name.
    async with page.http.post(
        page.base + "/api/chats/merchant/messages",
        json={"text": "/new"},
        headers={"Origin": "https://evil.example"},
    ) as response:
        assert response.status == 403
    async with page.http.get(
        page.base + "/api/queue", headers={"Host": "rebound.example:8090"}
    ) as response:
        assert response.status == 403
    await page.post(
        "/api/chats/merchant/messages", json={"text": "/help"}, headers={"Origin": page.base}
    )


async def test_a_photo_from_the_page_reaches_the_bot_as_a_photo(page: Page) -> None:
    png = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00\x00\x02\x00\x00\x00\x02\x08\x06\x00\x00\x00"
    form = aiohttp.FormData()
    form.add_field("file", png, filename="screen.png", content_type="image/png")
    form.add_field("caption", "скриншот")
    await page.post("/api/chats/unlinked/messages", data=form)
    sent = (await page.chat("unlinked"))["messages"][0]
    assert sent["from"] == "user" and sent["file"]["kind"] == "photo"
    assert sent["html"] == "скриншот"
    async with page.http.get(page.base + sent["file"]["url"]) as response:
        assert response.content_type == "image/png" or response.status == 200
        assert await response.read() == png


async def test_reset_recreates_the_demo_and_a_restart_keeps_the_queue(tmp_path: Path) -> None:
    async with (
        aiohttp.ClientSession() as http,
        Sandbox(tmp_path, port=0) as sandbox,
    ):
        page = Page(http, sandbox.url)
        await page.post("/api/chats/unlinked/messages", json={"text": "/new"})
        await page.wait("unlinked", lambda m: bool(m["buttons"]))
    async with aiohttp.ClientSession() as http, Sandbox(tmp_path, port=0) as sandbox:
        page = Page(http, sandbox.url)
        # The emulator's chats start empty; the links and the staff menus are remembered.
        assert (await page.chat("merchant"))["messages"] == []
        assert "whoami" in {c["command"] for c in (await page.chat("lead"))["commands"]}
        await page.say("merchant", "/stores")
        await page.wait("merchant", _has("flowers.example.com", "books.example.com"))
    async with (
        aiohttp.ClientSession() as http,
        Sandbox(tmp_path, port=0, reset=True) as sandbox,
    ):
        page = Page(http, sandbox.url)
        texts = [m["html"] for m in (await page.chat("merchant"))["messages"]]
        assert any("<b>Цветочная лавка</b>" in t for t in texts), texts
        assert (await page.get("/api/queue"))["tickets"] == []


def _offline_env() -> dict[str, str]:
    """No settings at all: no BOT_TOKEN, no database, no proxy; nothing beyond loopback."""
    return {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/")}


async def _url_of(process: asyncio.subprocess.Process, timeout: float) -> str:
    assert process.stdout is not None
    line = await asyncio.wait_for(process.stdout.readline(), timeout)
    found = URL_LINE.match(line.decode().strip())
    assert found, line
    return found.group(1)


async def _stop(process: asyncio.subprocess.Process) -> int:
    if process.returncode is None:
        process.send_signal(signal.SIGTERM)
    return await asyncio.wait_for(process.wait(), 20)


async def test_python_m_bot_sandbox_prints_its_url_within_10_s_offline(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bot", "sandbox", "--port", "0",
        cwd=tmp_path, env=_offline_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    try:
        url = await _url_of(process, timeout=10)
        async with aiohttp.ClientSession() as http, http.get(url + "api/people") as response:
            assert response.status == 200
        assert (tmp_path / ".frontdesk-sandbox" / "frontdesk.sqlite3").exists()
    finally:
        code = await _stop(process)
    assert code == 0


async def test_scripts_run_without_a_token_runs_the_sandbox(tmp_path: Path) -> None:
    process = await asyncio.create_subprocess_exec(
        str(ROOT / "scripts" / "run"), "--port", "0", "--dir", str(tmp_path),
        env=_offline_env(),
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )  # fmt: skip
    try:
        url = await _url_of(process, timeout=300)  # a first run installs into .venv
        async with aiohttp.ClientSession() as http, http.get(url + "api/people") as response:
            assert response.status == 200
    finally:
        code = await _stop(process)
    assert code == 0
