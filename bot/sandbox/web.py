"""The sandbox's web server on loopback: the page (bot/sandbox/page.py), its JSON API
(bot/sandbox/api.py) and the event stream (`GET /api/events`, Server-Sent Events): every message
that appears or changes in a demo person's chat, and a nudge whenever the queue may have
changed."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import socket
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from aiohttp import web
from sqlalchemy import func, select

from bot.sandbox import demo
from bot.sandbox.api import SandboxApi, message_json
from bot.sandbox.telegram_emulator import ChatMessage, TelegramEmulator
from services.db.models import BuiltinQueueTicket, BuiltinQueueTransaction

logger = logging.getLogger(__name__)

QUEUE_POLL_SECONDS = 2.0
KEEPALIVE_SECONDS = 15.0
LOCAL_NAMES = frozenset({"127.0.0.1", "localhost", "::1"})
ANY_HOST = frozenset({"0.0.0.0", "::", ""})
BOUND_HOST = web.AppKey("bound_host", str)
Event = tuple[str, dict[str, Any]]


class EventHub:
    """Fans events out to every open event stream; a stream that falls far behind is dropped
    rather than let memory grow (the page reconnects and reloads)."""

    def __init__(self, backlog: int = 1000) -> None:
        self._subscribers: set[asyncio.Queue[Event | None]] = set()
        self._backlog = backlog

    def subscribe(self) -> asyncio.Queue[Event | None]:
        queue: asyncio.Queue[Event | None] = asyncio.Queue(self._backlog)
        self._subscribers.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue[Event | None]) -> None:
        self._subscribers.discard(queue)

    def publish(self, name: str, data: dict[str, Any]) -> None:
        for queue in list(self._subscribers):
            try:
                queue.put_nowait((name, data))
            except asyncio.QueueFull:
                self._subscribers.discard(queue)

    def close(self) -> None:
        for queue in list(self._subscribers):
            with contextlib.suppress(asyncio.QueueFull):
                queue.put_nowait(None)
        self._subscribers.clear()


@web.middleware
async def same_origin_only(request: web.Request, handler: Any) -> web.StreamResponse:
    """Another site open in the same browser must not act in the sandbox: a cross-origin POST
    (a form, a fetch) is refused, as is a request for another host name (DNS rebinding)."""
    bound = request.app.get(BOUND_HOST, "127.0.0.1")
    name = (request.url.host or "").strip("[]").lower()
    if bound not in ANY_HOST and name not in LOCAL_NAMES and name != bound:
        return web.json_response({"error": "unknown host"}, status=403)
    origin = request.headers.get("Origin")
    if request.method not in ("GET", "HEAD", "OPTIONS") and origin is not None:
        if urlsplit(origin).netloc.lower() != (request.host or "").lower():
            return web.json_response({"error": "cross-origin request refused"}, status=403)
    return await handler(request)


class SandboxWeb:
    def __init__(self, emulator: TelegramEmulator, app: Any) -> None:
        self.emulator = emulator
        self.events = EventHub()
        sessionmaker = app.dispatcher["sessionmaker"]
        self._sessionmaker = sessionmaker
        self.api = SandboxApi(
            emulator,
            queue=app.dispatcher["queue"],
            queue_changed=lambda: self.events.publish("queue", {}),
            i18n=app.dispatcher["i18n"],
        )
        self.web_app = self._build()
        self._runner: web.AppRunner | None = None
        self._poller: asyncio.Task[None] | None = None

    def _build(self) -> web.Application:
        from bot.sandbox import page

        web_app = web.Application(client_max_size=50 * 1024 * 1024, middlewares=[same_origin_only])
        self.api.add_routes(web_app)
        web_app.router.add_get("/api/events", self._events)
        page.add_routes(web_app)
        return web_app

    async def serve(self, sock: socket.socket) -> None:
        """Serves on a listening socket (runner.listen)."""
        self.web_app[BOUND_HOST] = str(sock.getsockname()[0])
        runner = web.AppRunner(
            self.web_app, handle_signals=False, access_log=None, shutdown_timeout=1.0
        )
        await runner.setup()
        try:
            await web.SockSite(runner, sock).start()
        except BaseException:
            await runner.cleanup()
            raise
        self._runner = runner

    async def __aenter__(self) -> SandboxWeb:
        self.emulator.observers.append(self._on_message)
        self._poller = asyncio.create_task(self._poll_queue(), name="sandbox-queue-poll")
        return self

    async def __aexit__(self, *exc: object) -> None:
        with contextlib.suppress(ValueError):
            self.emulator.observers.remove(self._on_message)
        self.events.close()
        if self._poller is not None:
            self._poller.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._poller
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _on_message(self, record: ChatMessage, changed: bool) -> None:
        person = demo.person_of(record.chat_id)
        if person is None:
            return
        self.events.publish(
            "message", {"person": person.id, "message": message_json(record, edited=changed)}
        )

    async def _poll_queue(self) -> None:
        """The bot changes the queue too (filing, the merchant's replies): a change of the
        queue's latest update or history row is announced."""
        seen: tuple[Any, ...] | None = None
        while True:
            try:
                async with self._sessionmaker() as session:
                    updated: datetime | None = await session.scalar(
                        select(func.max(BuiltinQueueTicket.updated_at))
                    )
                    last = await session.scalar(select(func.max(BuiltinQueueTransaction.id)))
                    count = await session.scalar(select(func.count(BuiltinQueueTicket.id)))
                state = (updated, last, count)
                if seen is not None and state != seen:
                    self.events.publish("queue", {})
                seen = state
            except Exception:  # a busy database now and then: try again at the next round
                logger.warning("sandbox: reading the queue failed", exc_info=True)
            await asyncio.sleep(QUEUE_POLL_SECONDS)

    async def _events(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(
            headers={
                "Content-Type": "text/event-stream",
                "Cache-Control": "no-cache",
                "X-Accel-Buffering": "no",
            }
        )
        await response.prepare(request)
        queue = self.events.subscribe()
        try:
            await response.write(b": connected\n\n")
            while True:
                try:
                    event = await asyncio.wait_for(queue.get(), KEEPALIVE_SECONDS)
                except TimeoutError:
                    await response.write(b": keep-alive\n\n")
                    continue
                if event is None:
                    break
                name, data = event
                payload = json.dumps(data, ensure_ascii=False)
                await response.write(f"event: {name}\ndata: {payload}\n\n".encode())
        except ConnectionResetError:  # the page went away
            pass
        finally:
            self.events.unsubscribe(queue)
        return response
