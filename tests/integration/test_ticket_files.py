"""A ticket's files and the merchant's agreement to pay reach the queue with the ticket; the free
plan's monthly limit holds when admins of one store press Send at the same moment."""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from services import merchants, stores, tickets
from services.db.engine import create_engine, create_sessionmaker
from services.db.models import (
    BuiltinQueueComment,
    BuiltinQueueTicket,
    FilingOutbox,
    Role,
    Ticket,
    TicketStatus,
)
from services.files import FileKind, FileRef
from services.notices import Registered
from services.queue.builtin import BuiltinQueue
from services.tickets import Draft
from tests.helpers.files import InMemoryFileSource
from tests.helpers.filing import DRAFT, REGULATION, Clock, filing_worker, register_merchant
from tests.helpers.notices import bodies

PHOTO = b"\xff\xd8\xff\xe0 a screenshot of the checkout error"
LOG = b"2026-11-25 09:00:01 checkout: 500\n"
PRICE = tickets.Price(500, "RUB")


async def _submit(
    sessionmaker: async_sessionmaker[AsyncSession],
    *,
    files: list[FileRef] | tuple[FileRef, ...] = (),
    paid: tickets.Price | None = None,
    locale: str = "ru",
    draft: Draft = DRAFT,
) -> tickets.FiledTicket:
    async with sessionmaker() as session:
        merchant = await register_merchant(session)
        return await tickets.submit(
            session,
            REGULATION.catalog,
            merchant,
            draft,
            reference=tickets.new_reference(),
            locale=locale,
            queue_name="builtin",
            files=files,
            paid=paid,
        )


async def _first_message(
    sessionmaker: async_sessionmaker[AsyncSession], number: str
) -> tuple[BuiltinQueueTicket, BuiltinQueueComment]:
    async with sessionmaker() as session:
        ticket = await session.scalar(
            select(BuiltinQueueTicket)
            .where(BuiltinQueueTicket.id == int(number))
            .options(
                selectinload(BuiltinQueueTicket.comments).selectinload(
                    BuiltinQueueComment.attachments
                )
            )
        )
        assert ticket is not None
        return ticket, ticket.comments[0]


async def _registered(sessionmaker: async_sessionmaker[AsyncSession]) -> list[Registered]:
    return [b for b in await bodies(sessionmaker, "registered") if isinstance(b, Registered)]


async def test_files_of_a_ticket_are_filed_as_attachments_of_its_first_message(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    source = InMemoryFileSource()
    files = [
        source.add(PHOTO + b"1", "photo-1.jpg", kind=FileKind.PHOTO, content_type="image/jpeg"),
        source.add(PHOTO + b"2", "photo-2.jpg", kind=FileKind.PHOTO, content_type="image/jpeg"),
        source.add(LOG, "журнал заказа.log", content_type="text/plain"),
    ]
    await _submit(sessionmaker, files=files)

    assert await filing_worker(sessionmaker, BuiltinQueue(sessionmaker), files=source).run_once()

    [notice] = await _registered(sessionmaker)
    assert notice.files == 3 and notice.missing_files == []
    ticket, message = await _first_message(sessionmaker, notice.number)
    assert message.body == DRAFT.description  # nothing to add: no agreement, no missing file
    assert [(a.filename, a.content_type, a.content) for a in message.attachments] == [
        ("photo-1.jpg", "image/jpeg", PHOTO + b"1"),
        ("photo-2.jpg", "image/jpeg", PHOTO + b"2"),
        ("журнал заказа.log", "text/plain", LOG),
    ]
    assert ticket.paid_agreement is None


@pytest.mark.parametrize(
    ("locale", "line"),
    [
        ("ru", "Файл «photo-2.jpg» не удалось получить из Telegram"),
        ("en", "The file «photo-2.jpg» could not be read from Telegram"),
    ],
)
async def test_a_file_telegram_no_longer_has_does_not_hold_the_ticket_back(
    sessionmaker: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
    locale: str,
    line: str,
) -> None:
    source = InMemoryFileSource()
    kept = source.add(PHOTO, "photo-1.jpg", kind=FileKind.PHOTO, content_type="image/jpeg")
    gone = source.add(PHOTO, "photo-2.jpg", kind=FileKind.PHOTO, content_type="image/jpeg")
    source.gone.add(gone.file_id)
    await _submit(sessionmaker, files=[kept, gone], locale=locale)

    worker = filing_worker(sessionmaker, BuiltinQueue(sessionmaker), files=source)
    with caplog.at_level(logging.WARNING, logger="services.filing"):
        assert await worker.run_once()

    [notice] = await _registered(sessionmaker)
    assert notice.files == 1 and notice.missing_files == ["photo-2.jpg"]
    _, message = await _first_message(sessionmaker, notice.number)
    assert message.body.startswith(DRAFT.description)
    assert line in message.body
    assert [a.filename for a in message.attachments] == ["photo-1.jpg"]
    [warning] = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert "file 2 left out" in warning
    assert "photo-2.jpg" not in warning  # a file's name is the merchant's words: not logged


async def test_a_transient_read_error_is_retried_with_the_filing_backoff(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    source = InMemoryFileSource()
    ref = source.add(LOG, "checkout.log", content_type="text/plain")
    await _submit(sessionmaker, files=[ref])
    source.failing = True
    clock = Clock(datetime.now(UTC) + timedelta(seconds=5))
    worker = filing_worker(sessionmaker, BuiltinQueue(sessionmaker), clock, files=source)

    await worker.run_once()

    async with sessionmaker() as session:
        entry = await session.scalar(select(FilingOutbox))
        assert entry is not None and entry.attempts == 1
        assert entry.last_error is not None and "checkout.log" in entry.last_error
        assert await session.scalar(select(func.count()).select_from(BuiltinQueueTicket)) == 0
    # Telegram's hiccup is not the queue's silence: the merchant is not told the queue is down.
    assert await bodies(sessionmaker, "delayed") == []
    source.failing = False
    clock.now += timedelta(minutes=2)  # past the backoff (capped at 60 s here)
    await worker.run_once()

    [notice] = await _registered(sessionmaker)
    _, message = await _first_message(sessionmaker, notice.number)
    assert [a.content for a in message.attachments] == [LOG]


@pytest.mark.parametrize(
    ("locale", "line"),
    [
        ("ru", "Согласие на платную доработку: 500 RUB. Согласие дано в Telegram: Анна Петрова"),
        ("en", "Agreement to pay for the modification: 500 RUB. Given in Telegram by Анна Петрова"),
    ],
)
async def test_the_agreement_to_pay_is_stored_and_reaches_the_queue_and_the_notice(
    sessionmaker: async_sessionmaker[AsyncSession], locale: str, line: str
) -> None:
    draft = Draft("modification", "template", "Поменять шрифт в шапке", "Шрифт как на главной.")
    before = datetime.now(UTC)
    accepted = await _submit(sessionmaker, paid=PRICE, locale=locale, draft=draft)

    async with sessionmaker() as session:
        ticket = await session.get(Ticket, accepted.id)
        assert ticket is not None
        agreement = tickets.paid_agreement_of(ticket)
    assert agreement is not None
    assert (agreement.amount, agreement.currency, agreement.name) == (500, "RUB", "Анна Петрова")
    assert before <= agreement.at <= datetime.now(UTC)

    assert await filing_worker(sessionmaker, BuiltinQueue(sessionmaker)).run_once()

    [notice] = await _registered(sessionmaker)
    assert notice.paid is not None
    assert (notice.paid.amount, notice.paid.currency) == (500, "RUB")
    assert notice.paid.by == "Анна Петрова" and notice.paid.at == agreement.at
    queued, message = await _first_message(sessionmaker, notice.number)
    assert line in message.body
    assert queued.paid_agreement is not None
    assert queued.paid_agreement.startswith("500 RUB; Анна Петрова (telegram 7000000123); ")


async def _free_store_at(sessionmaker: async_sessionmaker[AsyncSession], filed: int) -> int:
    async with sessionmaker() as session:
        store_id = await stores.add_store(
            session, domain="free.example.com", name="Free shop", plan="free"
        )
        for number in range(filed):
            merchant = await register_merchant(session)
            await tickets.submit(
                session,
                REGULATION.catalog,
                merchant,
                DRAFT,
                reference=f"earlier-{number}",
                locale="ru",
                queue_name="builtin",
                store_id=store_id,
                plan="free",
                policies=REGULATION.policies,
            )
        return store_id


async def _admins(sessionmaker: async_sessionmaker[AsyncSession], store_id: int, count: int):  # type: ignore[no-untyped-def]
    admins = []
    async with sessionmaker() as session:
        for number in range(count):
            admin = await merchants.get_or_register(
                session, telegram_id=8_000_000 + number, full_name=f"Admin {number}", username=None
            )
            await stores.grant(session, merchant_id=admin.id, store_id=store_id, role=Role.ADMIN)
            admins.append(admin)
    return admins


async def _press_send_at_once(url: str, store_id: int, admins: list) -> list[object]:  # type: ignore[type-arg]
    """Each admin presses Send in their own update: own connection, own transaction."""
    engines = [create_engine(url) for _ in admins]
    start = asyncio.Event()

    async def press(engine, admin) -> object:  # type: ignore[no-untyped-def]
        async with create_sessionmaker(engine)() as session:
            await session.execute(select(1))  # connected before the start, as a live update is
            await start.wait()
            try:
                return await tickets.submit(
                    session,
                    REGULATION.catalog,
                    admin,
                    DRAFT,
                    reference=tickets.new_reference(),
                    locale="ru",
                    queue_name="builtin",
                    store_id=store_id,
                    plan="free",
                    policies=REGULATION.policies,
                )
            except tickets.MonthlyLimitReached as refusal:
                return refusal

    try:
        pressing = [
            asyncio.create_task(press(engine, admin))
            for engine, admin in zip(engines, admins, strict=True)
        ]
        await asyncio.sleep(0.2)
        start.set()
        return await asyncio.gather(*pressing)
    finally:
        for engine in engines:
            await engine.dispose()


async def test_free_plan_monthly_limit_holds_when_admins_press_send_at_once(
    database_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    limit = REGULATION.policies.scope_for("free").monthly_tickets
    assert limit == 5
    store_id = await _free_store_at(sessionmaker, limit - 1)
    admins = await _admins(sessionmaker, store_id, 6)

    outcomes = await _press_send_at_once(database_url, store_id, admins)

    accepted = [o for o in outcomes if isinstance(o, tickets.FiledTicket)]
    refused = [o for o in outcomes if isinstance(o, tickets.MonthlyLimitReached)]
    assert len(accepted) == 1 and len(refused) == 5
    assert all(r.limit == 5 for r in refused)
    async with sessionmaker() as session:
        filed = await session.scalar(
            select(func.count()).select_from(Ticket).where(Ticket.store_id == store_id)
        )
        assert filed == limit
        assert await session.scalar(select(func.count()).select_from(FilingOutbox)) == limit


async def test_the_same_draft_sent_twice_at_the_limit_is_one_ticket_not_a_refusal(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    limit = REGULATION.policies.scope_for("free").monthly_tickets or 0
    store_id = await _free_store_at(sessionmaker, limit)
    async with sessionmaker() as session:
        merchant = await register_merchant(session)
        first = await tickets.submit(
            session,
            REGULATION.catalog,
            merchant,
            DRAFT,
            reference="earlier-0",
            locale="ru",
            queue_name="builtin",
            store_id=store_id,
            plan="free",
            policies=REGULATION.policies,
        )
        assert first.status is TicketStatus.PENDING
        with pytest.raises(tickets.MonthlyLimitReached):
            await tickets.submit(
                session,
                REGULATION.catalog,
                merchant,
                DRAFT,
                reference="a-new-one",
                locale="ru",
                queue_name="builtin",
                store_id=store_id,
                plan="free",
                policies=REGULATION.policies,
            )


def test_more_files_than_a_ticket_takes_are_refused() -> None:
    refs = [
        FileRef(file_id=f"f{n}", file_unique_id=f"u{n}", kind=FileKind.PHOTO, filename="p.jpg")
        for n in range(11)
    ]
    with pytest.raises(tickets.InvalidRequest) as refused:
        asyncio.run(_submit_without_session(refs))
    assert refused.value.reason == "too_many_files"


async def _submit_without_session(refs: list[FileRef]) -> None:
    await tickets.submit(
        None,  # type: ignore[arg-type]  # refused before the database is touched
        REGULATION.catalog,
        None,  # type: ignore[arg-type]
        DRAFT,
        reference="x",
        locale="ru",
        queue_name="builtin",
        files=refs,
    )
