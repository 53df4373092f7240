"""Faults of the official queue while filing, against a real Request Tracker behind a proxy that
misbehaves on demand; every test counts the tickets RT holds for the reference afterwards."""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from datetime import timedelta

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.db.models import FilingOutbox, Ticket, TicketStatus
from services.queue.base import NewTicket
from services.queue.rt import RequestTrackerQueue
from tests.helpers.filing import AheadClock, filing_worker, submit_request
from tests.helpers.notices import written
from tests.helpers.rt_faults import FaultProxy, rt_tickets_with_reference
from tests.integration.rt_fixture import RtServer, rt_server

__all__ = ["rt_server"]

# Timeouts of a few seconds against a real RT: these tests run one after another on one xdist
# worker (scripts/test: --dist loadgroup), never beside each other.
pytestmark = [pytest.mark.rt, pytest.mark.xdist_group("rt-faults")]


@pytest.fixture
async def proxy(rt_server: RtServer) -> AsyncIterator[FaultProxy]:
    async with FaultProxy(rt_server.base_url) as running:
        yield running


def _queue(proxy: FaultProxy, rt: RtServer, timeout: float = 3.0) -> RequestTrackerQueue:
    return RequestTrackerQueue(proxy.base_url, rt.queue, token=rt.token, timeout=timeout)


async def _reference(sessionmaker: async_sessionmaker[AsyncSession], ticket_id: int) -> str:
    async with sessionmaker() as session:
        ticket = await session.get(Ticket, ticket_id)
        assert ticket is not None
        return ticket.reference


async def _numbers_told(sessionmaker: async_sessionmaker[AsyncSession]) -> list[str]:
    """The ticket numbers merchants are told (the "registered" notices written)."""
    return [getattr(n.body, "number", "") for n in await written(sessionmaker, "registered")]


async def _outbox(sessionmaker: async_sessionmaker[AsyncSession]) -> list[FilingOutbox]:
    async with sessionmaker() as session:
        return list(await session.scalars(select(FilingOutbox)))


async def test_rt_down_at_send_keeps_the_ticket_tells_the_merchant_and_files_once_when_back(
    sessionmaker: async_sessionmaker[AsyncSession], proxy: FaultProxy, rt_server: RtServer
) -> None:
    queue = _queue(proxy, rt_server)
    clock = AheadClock(timedelta(seconds=5))  # RT is slow under a loaded suite
    worker = filing_worker(sessionmaker, queue, clock)
    await proxy.down()  # connection refused
    accepted = await submit_request(sessionmaker, f"fault-down-{uuid.uuid4().hex[:12]}")
    assert await worker.run_once() == 1
    assert [n.ticket_id for n in await written(sessionmaker, "delayed")] == [accepted.id]
    [entry] = await _outbox(sessionmaker)
    assert entry.attempts == 1 and "QueueUnavailable" in (entry.last_error or "")

    await proxy.up()
    clock.ahead += timedelta(minutes=10)
    assert await worker.run_once() == 1
    [number] = await _numbers_told(sessionmaker)
    reference = await _reference(sessionmaker, accepted.id)
    assert await rt_tickets_with_reference(rt_server, reference) == [number]
    assert await _outbox(sessionmaker) == []
    await queue.close()


async def test_rt_timing_out_after_it_created_the_ticket_gives_no_duplicate(
    sessionmaker: async_sessionmaker[AsyncSession], proxy: FaultProxy, rt_server: RtServer
) -> None:
    queue = _queue(proxy, rt_server, timeout=2.0)
    clock = AheadClock(timedelta(seconds=5))  # RT is slow under a loaded suite
    worker = filing_worker(sessionmaker, queue, clock)
    accepted = await submit_request(sessionmaker, f"fault-timeout-{uuid.uuid4().hex[:12]}")
    proxy.mode = "hang_after_create"
    assert await worker.run_once() == 1  # RT created it; the answer never came
    assert proxy.creates_forwarded == 1
    assert await _numbers_told(sessionmaker) == []

    proxy.mode = "pass"
    clock.ahead += timedelta(minutes=10)
    assert await worker.run_once() == 1
    assert proxy.creates_forwarded == 1  # found by its reference, not created again
    reference = await _reference(sessionmaker, accepted.id)
    [number] = await rt_tickets_with_reference(rt_server, reference)
    assert await _numbers_told(sessionmaker) == [number]
    await queue.close()


async def test_worker_dead_between_rts_answer_and_the_local_commit_files_once(
    sessionmaker: async_sessionmaker[AsyncSession], proxy: FaultProxy, rt_server: RtServer
) -> None:
    """The dead worker's claim lapses; the next one finds the RT ticket by its reference."""
    queue = _queue(proxy, rt_server)
    clock = AheadClock(timedelta(seconds=5))  # RT is slow under a loaded suite
    accepted = await submit_request(sessionmaker, f"fault-kill-{uuid.uuid4().hex[:12]}")
    dead = filing_worker(sessionmaker, queue, clock)
    assert len(await dead._claim()) == 1
    async with sessionmaker() as session:  # what the dead worker got done before it died
        entry = await dead._load(session, (await _outbox(sessionmaker))[0].id)
        assert entry is not None
        ticket = entry.ticket
        created = await queue.create_ticket(
            NewTicket(
                ticket.reference,
                "fault@example.com",
                ticket.subject,
                ticket.body,
                ticket.request_type,
                ticket.category,
                7_000_000_123,
            )
        )
    survivor = filing_worker(sessionmaker, queue, clock)
    assert await survivor.run_once() == 0  # still leased to the dead worker
    clock.ahead += timedelta(minutes=3)
    assert await survivor.run_once() == 1
    assert proxy.creates_forwarded == 1
    reference = await _reference(sessionmaker, accepted.id)
    assert await rt_tickets_with_reference(rt_server, reference) == [created.id]
    async with sessionmaker() as session:
        saved = await session.get(Ticket, accepted.id)
        assert saved is not None and saved.status is TicketStatus.REGISTERED
        assert saved.queue_ticket_id == created.id
    await queue.close()


@pytest.mark.parametrize("mode", ["garbage", "error"])
async def test_malformed_json_and_5xx_are_retried_logged_and_filed_once(
    sessionmaker: async_sessionmaker[AsyncSession],
    proxy: FaultProxy,
    rt_server: RtServer,
    caplog: pytest.LogCaptureFixture,
    mode: str,
) -> None:
    queue = _queue(proxy, rt_server)
    clock = AheadClock(timedelta(seconds=5))  # RT is slow under a loaded suite
    worker = filing_worker(sessionmaker, queue, clock)
    accepted = await submit_request(sessionmaker, f"fault-{mode}-{uuid.uuid4().hex[:12]}")
    proxy.mode = mode
    with caplog.at_level(logging.WARNING, logger="services.filing"):
        for _ in range(3):
            assert await worker.run_once() == 1
            clock.ahead += timedelta(minutes=10)
    [entry] = await _outbox(sessionmaker)
    assert entry.attempts == 3 and "QueueUnavailable" in (entry.last_error or "")
    assert sum("did not take ticket" in r.getMessage() for r in caplog.records) == 3

    proxy.mode = "pass"
    assert await worker.run_once() == 1
    reference = await _reference(sessionmaker, accepted.id)
    [number] = await rt_tickets_with_reference(rt_server, reference)
    assert await _numbers_told(sessionmaker) == [number]
    assert len(await written(sessionmaker, "delayed")) == 1
    await queue.close()


async def test_revoked_rt_token_stops_the_retries_tells_once_and_files_once_when_re_driven(
    sessionmaker: async_sessionmaker[AsyncSession],
    rt_server: RtServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    requests = 0

    async def counted(*_: object) -> None:
        nonlocal requests
        requests += 1

    trace = aiohttp.TraceConfig()
    trace.on_request_start.append(counted)
    version, user, _secret = rt_server.token.split("-", 2)
    revoked = f"{version}-{user}-{'0' * 32}"  # RT answers it as it answers a revoked token
    clock = AheadClock(timedelta(seconds=5))  # RT is slow under a loaded suite
    async with aiohttp.ClientSession(trace_configs=[trace]) as http:
        refused = RequestTrackerQueue(
            rt_server.base_url, rt_server.queue, token=revoked, session=http, account="frontdesk"
        )
        worker = filing_worker(sessionmaker, refused, clock)
        accepted = await submit_request(sessionmaker, f"fault-revoked-{uuid.uuid4().hex[:12]}")
        assert await worker.run_once() == 1
        for _ in range(5):  # hours pass: no retry storm against a queue that refuses
            clock.ahead += timedelta(hours=1)
            assert await worker.run_once() == 0
    assert requests == 1
    [entry] = await _outbox(sessionmaker)
    assert entry.refused_at is not None and "QueueRejected" in (entry.last_error or "")
    assert [n.ticket_id for n in await written(sessionmaker, "refused")] == [accepted.id]
    assert any(r.levelname == "ERROR" and "refused" in r.getMessage() for r in caplog.records)

    # The operator installs a valid token, then re-drives: filed once.
    from services.filing import retry_refused

    async with sessionmaker() as session:
        assert await retry_refused(session) == 1
    fixed = RequestTrackerQueue(rt_server.base_url, rt_server.queue, token=rt_server.token)
    try:
        assert await filing_worker(sessionmaker, fixed, clock).run_once() == 1
    finally:
        await fixed.close()
    reference = await _reference(sessionmaker, accepted.id)
    [number] = await rt_tickets_with_reference(rt_server, reference)
    assert await _numbers_told(sessionmaker) == [number]
    assert len(await written(sessionmaker, "refused")) == 1
    assert await _outbox(sessionmaker) == []
