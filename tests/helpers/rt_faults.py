"""A misbehaving proxy in front of the test Request Tracker, and a look into RT's tickets: for the
fault tests of filing (integration and e2e)."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
from aiohttp import web

from tests.integration.rt_fixture import RtServer, RtSpecialist


class FaultProxy:
    """A reverse proxy on loopback in front of RT. Modes: pass, down (nothing listens), error
    (502 without forwarding), garbage (200 with broken JSON), hang_after_create (forwards the
    ticket create to RT, then never answers: RT did the work, the client times out),
    hang_after_correspond (the same for a message on a ticket), hang_after_comment (the same for
    an internal note)."""

    def __init__(self, target: str) -> None:
        self.target = target.rstrip("/")
        self.mode = "pass"
        self.creates_forwarded = 0
        self.correspondence_forwarded = 0
        self.comments_forwarded = 0
        # Called once RT has created a ticket, before its answer is relayed.
        self.after_create: Callable[[], Awaitable[None]] | None = None
        self._runner: web.AppRunner | None = None
        self._http: aiohttp.ClientSession | None = None
        self.port = 0

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def __aenter__(self) -> FaultProxy:
        self._http = aiohttp.ClientSession()
        await self.up()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.down()
        assert self._http is not None
        await self._http.close()

    async def up(self) -> None:
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # Hanging handlers must not hold the test up when the proxy stops.
        self._runner = web.AppRunner(app, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def down(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        if self.mode == "error":
            return web.Response(status=502, text="Bad Gateway")
        if self.mode == "garbage":
            return web.Response(status=200, text='{"id": "12", ', content_type="application/json")
        assert self._http is not None
        body = await request.read()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in ("host",)}
        async with self._http.request(
            request.method, self.target + request.path_qs, data=body, headers=headers
        ) as upstream:
            payload = await upstream.read()
            status, content_type = upstream.status, upstream.content_type
        is_create = request.method == "POST" and request.path.rstrip("/").endswith("/ticket")
        if is_create:
            self.creates_forwarded += 1
            if self.after_create is not None:
                await self.after_create()
            if self.mode == "hang_after_create":
                await asyncio.sleep(3600)
        if request.method == "POST" and request.path.rstrip("/").endswith("/correspond"):
            self.correspondence_forwarded += 1
            if self.mode == "hang_after_correspond":
                await asyncio.sleep(3600)
        if request.method == "POST" and request.path.rstrip("/").endswith("/comment"):
            self.comments_forwarded += 1
            if self.mode == "hang_after_comment":
                await asyncio.sleep(3600)
        return web.Response(status=status, body=payload, content_type=content_type)


async def rt_tickets_with_reference(rt: RtServer, reference: str) -> list[str]:
    async with aiohttp.ClientSession() as http:
        rows = await RtSpecialist(http, rt).call(
            "GET", f"tickets?query=CF.{{FrontdeskRef}} = '{reference}'"
        )
    return [str(row["id"]) for row in rows["items"]]


async def rt_correspondence(rt: RtServer, number: str) -> list[dict[str, Any]]:
    """The ticket's correspondence in RT, as a specialist reads it: type, author, parts."""
    async with aiohttp.ClientSession() as http:
        specialist = RtSpecialist(http, rt)
        rows = await specialist.call(
            "GET",
            f"ticket/{number}/history?fields=Type,Creator&per_page=100",
        )
        messages = []
        for row in rows["items"]:
            if row["Type"] not in ("Create", "Correspond"):
                continue
            parts = await specialist.call(
                "GET",
                f"transaction/{row['id']}/attachments?fields=Filename,ContentType&per_page=50",
            )
            files = []
            for part in parts["items"]:
                if part.get("Filename"):
                    full = await specialist.call("GET", f"attachment/{part['id']}")
                    files.append((part["Filename"], base64.b64decode(full["Content"])))
            messages.append({"type": row["Type"], "creator": row["Creator"]["id"], "files": files})
        return messages


async def rt_messages(rt: RtServer, number: str) -> list[tuple[str, str]]:
    """The ticket's messages in RT as a specialist reads them, internal notes included:
    (transaction type, text of its parts)."""
    async with aiohttp.ClientSession() as http:
        specialist = RtSpecialist(http, rt)
        rows = await specialist.call(
            "GET", f"ticket/{number}/history?fields=Type,Creator&per_page=100"
        )
        messages = []
        for row in rows["items"]:
            if row["Type"] not in ("Create", "Correspond", "Comment"):
                continue
            parts = await specialist.call(
                "GET", f"transaction/{row['id']}/attachments?fields=ContentType&per_page=50"
            )
            text = ""
            for part in parts["items"]:
                if str(part.get("ContentType", "")).startswith("text/"):
                    full = await specialist.call("GET", f"attachment/{part['id']}")
                    text += base64.b64decode(full.get("Content") or "").decode("utf-8", "replace")
            messages.append((row["Type"], text))
        return messages
