"""POST /queue/events: a queue that pushes tells frontdesk at once that a ticket changed.

The call is signed (services/event_signature.py: HMAC-SHA256 over the timestamp and the raw
body, headers X-Frontdesk-Timestamp and X-Frontdesk-Signature) and its body names what changed,
as an RT Scrip knows it (scripts/rt-frontdesk-scrip.pl):

    {"ticket_id": "147", "transaction_id": "1205"}

A call that is unsigned, forged, stale (more than 5 minutes off) or replayed gets 401 and changes
nothing. A good one gets 202 at once and is applied in the background: frontdesk reads that
ticket's history from the queue itself (the body is never trusted for content) and applies it up
to that transaction through the same path as the sync worker (services/sync.py), so the event is
applied once whether it is pushed, pulled, or both. Answering before reading matters: RT runs the
Scrip while it records the transaction, and frontdesk reading RT back inside that call could wait
on RT itself. A transaction not visible yet is looked for again a few times; after that the sync
worker finds it anyway.

Unset QUEUE_EVENTS_SECRET, the endpoint answers 404.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import Callable
from datetime import datetime

from aiohttp import web

from services import event_signature
from services.db.base import utcnow
from services.event_signature import Refusal
from services.queue.base import QueueUnavailable, TicketNotFound
from services.sync import TicketSync, first_delivery

logger = logging.getLogger(__name__)

PATH = "/queue/events"
MAX_BODY = 16 * 1024
# Before each look at the ticket's history, in seconds: RT may not have committed it yet.
LOOK_DELAYS = (0.0, 0.5, 1.0, 2.0, 4.0)
_NUMBER = re.compile(r"[0-9]{1,18}")


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


class QueueEventsEndpoint:
    def __init__(
        self,
        sync: TicketSync,
        secret: str | None,
        *,
        clock: Callable[[], datetime] = utcnow,
        look_delays: tuple[float, ...] = LOOK_DELAYS,
    ) -> None:
        self._sync = sync
        self._secret = secret
        self._clock = clock
        self._look_delays = look_delays
        self._tasks: set[asyncio.Task[None]] = set()

    def register(self, web_app: web.Application) -> None:
        web_app.router.add_post(PATH, self.handle)
        web_app.on_cleanup.append(self._cancel_pending)

    async def handle(self, request: web.Request) -> web.Response:
        if self._secret is None:
            return _error(404, "queue events are disabled (QUEUE_EVENTS_SECRET is not set)")
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _error(413, f"the body is limited to {MAX_BODY} bytes")
        body = await request.read()  # a chunked body is bounded by client_max_size (1 MiB)
        if len(body) > MAX_BODY:
            return _error(413, f"the body is limited to {MAX_BODY} bytes")

        verified = event_signature.verify(
            self._secret,
            request.headers.get(event_signature.TIMESTAMP_HEADER),
            request.headers.get(event_signature.SIGNATURE_HEADER),
            body,
            now=self._clock(),
        )
        if isinstance(verified, Refusal):
            logger.warning("queue event refused from %s: %s", request.remote, verified.value)
            return _error(401, verified.value)
        named = self._named(body)
        if isinstance(named, str):
            return _error(400, named)
        async with self._sync.sessionmaker() as session:
            if not await first_delivery(session, verified, now=self._clock()):
                logger.warning("queue event refused from %s: replayed", request.remote)
                return _error(401, "replayed call")

        ticket_id, transaction_id = named
        task = asyncio.create_task(
            self._apply(ticket_id, transaction_id), name=f"queue-event-{ticket_id}"
        )
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return web.json_response(
            {"status": "accepted", "ticket_id": ticket_id, "transaction_id": transaction_id},
            status=202,
        )

    @staticmethod
    def _named(body: bytes) -> tuple[str, str] | str:
        """(ticket id, transaction id) from the body, or what is wrong with it."""
        try:
            data = json.loads(body.decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError):
            return "the body must be JSON"
        if not isinstance(data, dict):
            return "the body must be a JSON object"
        values = []
        for name in ("ticket_id", "transaction_id"):
            value = data.get(name)
            if isinstance(value, int) and not isinstance(value, bool):
                value = str(value)
            if not isinstance(value, str) or not _NUMBER.fullmatch(value):
                return f"{name} must be a number"
            values.append(value)
        return values[0], values[1]

    async def _apply(self, ticket_id: str, transaction_id: str) -> None:
        queue = self._sync.queue.name
        for delay in self._look_delays:
            await asyncio.sleep(delay)
            try:
                result = await self._sync.sync_ticket(ticket_id, upto=transaction_id)
            except QueueUnavailable as error:
                logger.warning("queue event %s:%s: queue unavailable: %s", queue, ticket_id, error)
                continue
            except TicketNotFound:
                logger.info("queue event for %s ticket %s: no such ticket", queue, ticket_id)
                return
            except Exception:
                logger.exception("queue event %s:%s:%s failed", queue, ticket_id, transaction_id)
                return
            if not result.known:
                logger.info("queue event for %s ticket %s: not frontdesk's", queue, ticket_id)
                return
            if result.reached:
                logger.info(
                    "queue event %s:%s:%s: %d event(s) applied, %d already applied",
                    queue,
                    ticket_id,
                    transaction_id,
                    result.applied,
                    result.already_applied,
                )
                return
        logger.warning(
            "queue event %s:%s:%s: transaction not found; left to the sync worker",
            queue,
            ticket_id,
            transaction_id,
        )

    async def settle(self) -> None:
        """Waits until every accepted call has been applied (or given up on)."""
        while self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _cancel_pending(self, _app: web.Application) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
