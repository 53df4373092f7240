"""A ticket's files and the agreement to pay, filed by the filing worker into a real RT 5: read
back as RT's own API shows them to a specialist (attachments, custom field PaidAgreement)."""

from __future__ import annotations

import base64
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import tickets
from services.files import FileKind
from services.notices import Registered
from services.queue.rt import RequestTrackerQueue
from services.tickets import Draft
from tests.helpers.files import InMemoryFileSource
from tests.helpers.filing import REGULATION, filing_worker, register_merchant
from tests.helpers.notices import bodies
from tests.integration.rt_fixture import RtServer, RtSpecialist, rt_server

__all__ = ["rt_server"]  # the session fixture, imported to be found here

pytestmark = pytest.mark.rt

PHOTOS = [b"\xff\xd8\xff\xe0 screenshot %d of the header" % n for n in (1, 2, 3)]


@pytest.fixture
async def specialist(rt_server: RtServer) -> AsyncIterator[RtSpecialist]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield RtSpecialist(session, rt_server)


@pytest.fixture
async def queue(rt_server: RtServer) -> AsyncIterator[RequestTrackerQueue]:
    adapter = RequestTrackerQueue(
        rt_server.base_url, rt_server.queue, token=rt_server.token, timeout=15
    )
    yield adapter
    await adapter.close()


async def rt_attachments(specialist: RtSpecialist, number: str) -> list[tuple[str, str, bytes]]:
    """The files of the ticket as RT keeps them: name, type and exact bytes."""
    listed: dict[str, Any] = await specialist.call(
        "GET", f"ticket/{number}/attachments?fields=Filename,ContentType&per_page=100"
    )
    files = []
    for item in listed["items"]:
        if not item.get("Filename"):
            continue  # the message's own text parts
        full = await specialist.call("GET", f"attachment/{item['id']}")
        files.append((item["Filename"], item["ContentType"], base64.b64decode(full["Content"])))
    return files


async def rt_first_message(specialist: RtSpecialist, number: str) -> str:
    listed: dict[str, Any] = await specialist.call(
        "GET", f"ticket/{number}/attachments?fields=Filename,ContentType&per_page=100"
    )
    for item in listed["items"]:
        if item["ContentType"] == "text/plain" and not item.get("Filename"):
            full = await specialist.call("GET", f"attachment/{item['id']}")
            return base64.b64decode(full["Content"]).decode()
    raise AssertionError("no text part")


async def test_three_photos_and_the_agreement_to_pay_reach_rt(
    sessionmaker: async_sessionmaker[AsyncSession],
    queue: RequestTrackerQueue,
    specialist: RtSpecialist,
) -> None:
    source = InMemoryFileSource()
    files = [
        source.add(content, f"photo-{n}.jpg", kind=FileKind.PHOTO, content_type="image/jpeg")
        for n, content in enumerate(PHOTOS, start=1)
    ]
    async with sessionmaker() as session:
        merchant = await register_merchant(session)
        await tickets.submit(
            session,
            REGULATION.catalog,
            merchant,
            Draft("modification", "template", "Поменять шрифт в шапке", "Как на главной."),
            reference=tickets.new_reference(),
            locale="ru",
            queue_name="rt",
            files=files,
            paid=tickets.Price(500, "RUB"),
        )

    assert await filing_worker(sessionmaker, queue, files=source).run_once() == 1

    [notice] = [b for b in await bodies(sessionmaker, "registered") if isinstance(b, Registered)]
    assert notice.files == 3
    assert await rt_attachments(specialist, notice.number) == [
        (f"photo-{n}.jpg", "image/jpeg", content) for n, content in enumerate(PHOTOS, start=1)
    ]
    fields = await specialist.custom_fields(notice.number)
    [agreement] = fields["PaidAgreement"]
    assert agreement.startswith("500 RUB; Анна Петрова (telegram 7000000123); ")
    body = await rt_first_message(specialist, notice.number)
    assert body.startswith("Как на главной.")
    assert "Согласие на платную доработку: 500 RUB" in body
