"""Recording a modification (issue 9, point 4) on SQLite and PostgreSQL: the ledger decides free
(≤ 15 minutes and allowance left) or paid (500 RUB beyond; over 15 minutes at the specialist's
quote, which is then required); the merchant gets a notice saying which and how many free ones are
left, the queue ticket one internal note, /quota's count moves; the same action retried records
once. The Telegram command path is in tests/e2e/test_modification_e2e.py."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import modification_records, modifications, stores, tickets
from services.db.models import Modification, Role, StaffNoteOutbox, Ticket
from services.notices import ModificationRecorded
from services.queue.builtin import BuiltinQueue
from services.quota import ChargeKind, ChargeReason
from services.tickets import Draft
from tests.helpers.filing import REGULATION, Clock, filing_worker, register_merchant
from tests.helpers.notices import written
from tests.helpers.staff_notes import builtin_notes, staff_note_worker

POLICY = REGULATION.policies.quota
TELEGRAM_ID = 7_000_000_123  # tests/helpers/filing.register_merchant
MODIFICATION = Draft("modification", "template", "Поправить шапку", "Сдвинуть логотип влево.")
TECHNICAL = Draft("technical", "system_error", "Ошибка 500", "Шаги: открыть корзину.")


@pytest.fixture
def clock() -> Clock:
    return Clock(datetime.now(UTC) + timedelta(seconds=5))


async def _filed(
    sessionmaker: async_sessionmaker[AsyncSession],
    clock: Clock,
    plan: str,
    draft: Draft = MODIFICATION,
    ref: str = "m1",
) -> tuple[int, int, str, BuiltinQueue]:
    """A ticket of a ``plan`` store, registered in the builtin queue: (store, ticket, number)."""
    async with sessionmaker() as session:
        merchant = await register_merchant(session)
        store_id = await stores.add_store(
            session, domain=f"{ref}.example.com", name="Лавка", plan=plan
        )
        await stores.grant(session, merchant_id=merchant.id, store_id=store_id, role=Role.OWNER)
        await session.commit()
        filed = await tickets.submit(
            session,
            REGULATION.catalog,
            merchant,
            draft,
            reference=ref,
            locale="ru",
            queue_name="builtin",
            store_id=store_id,
            plan=plan,
        )
    queue = BuiltinQueue(sessionmaker)
    assert await filing_worker(sessionmaker, queue, clock).run_once() == 1
    async with sessionmaker() as session:
        number = (await session.get_one(Ticket, filed.id)).queue_ticket_id
    assert number is not None
    return store_id, filed.id, number, queue


async def _record(  # type: ignore[no-untyped-def]
    sessionmaker, number: str, minutes: int, key: str, price: int | None = None
):
    async with sessionmaker() as session:
        return await modification_records.record(
            session,
            POLICY,
            number=number,
            minutes=minutes,
            price=price,
            specialist="ivanov",
            key=key,
            now=datetime.now(UTC),
        )


async def _left(sessionmaker: async_sessionmaker[AsyncSession], store_id: int, plan: str) -> int:
    async with sessionmaker() as session:
        status = await modifications.quota_status(
            session, POLICY, store_id=store_id, plan=plan, now=datetime.now(UTC)
        )
    return status.left


async def test_small_modifications_are_free_within_the_allowance_then_500_rub_and_the_merchant_is_told(  # noqa: E501
    sessionmaker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    store_id, _, number, queue = await _filed(sessionmaker, clock, "site")
    assert await _left(sessionmaker, store_id, "site") == 4

    charges = [(await _record(sessionmaker, number, 10, f"u{i}")).charge for i in range(5)]
    assert [c.kind for c in charges if c] == [ChargeKind.FREE] * 4 + [ChargeKind.PAID]
    last = charges[-1]
    assert last is not None and last.amount == 500
    assert last.reason is ChargeReason.ALLOWANCE_USED_UP
    assert await _left(sessionmaker, store_id, "site") == 0  # what /quota reads

    told = [n.body for n in await written(sessionmaker, "modification")]
    assert all(isinstance(b, ModificationRecorded) for b in told)
    assert [(b.free, b.amount, b.quota.left) for b in told] == [  # type: ignore[union-attr]
        (True, 0, 3),
        (True, 0, 2),
        (True, 0, 1),
        (True, 0, 0),
        (False, 500, 0),
    ]
    assert {n.chat_id for n in await written(sessionmaker, "modification")} == {TELEGRAM_ID}

    # The record reaches the queue as internal notes, through the staff-note outbox.
    worker = staff_note_worker(sessionmaker, queue)
    while await worker.run_once():
        pass
    notes = await builtin_notes(sessionmaker, number)
    assert len(notes) == 5
    assert "10 мин., бесплатная" in notes[0][1] and "ivanov" in notes[0][1]
    assert "платная, 500 RUB" in notes[-1][1]


async def test_work_over_15_minutes_is_paid_at_the_specialists_quote_which_is_required(
    sessionmaker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    store_id, _, number, _ = await _filed(sessionmaker, clock, "premium")
    with pytest.raises(modification_records.RecordRefused) as refused:
        await _record(sessionmaker, number, 40, "no-price")
    assert refused.value.reason == modification_records.PRICE_REQUIRED
    recorded = await _record(sessionmaker, number, 40, "priced", price=3000)
    assert recorded.charge is not None
    assert (recorded.charge.kind, recorded.charge.amount) == (ChargeKind.PAID, 3000)
    assert recorded.charge.reason is ChargeReason.OVER_TIME_LIMIT
    assert await _left(sessionmaker, store_id, "premium") == 10  # no free slot used
    async with sessionmaker() as session:
        amounts = list(await session.scalars(select(Modification.amount)))
    assert amounts == [3000]
    # 15 minutes exactly is still small: free, and the price given is ignored.
    free = await _record(sessionmaker, number, 15, "fifteen", price=999)
    assert free.charge is not None and free.charge.is_free


async def test_the_same_command_retried_records_once(
    sessionmaker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    store_id, _, number, _ = await _filed(sessionmaker, clock, "site")
    first = await _record(sessionmaker, number, 10, "update-1")
    again = await _record(sessionmaker, number, 10, "update-1")
    assert first.charge is not None and first.charge.is_free
    assert again.charge is None and again.quota.left == 3
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Modification)) == 1
        assert await session.scalar(select(func.count()).select_from(StaffNoteOutbox)) == 1
    assert len(await written(sessionmaker, "modification")) == 1
    assert await _left(sessionmaker, store_id, "site") == 3


async def test_only_a_modification_ticket_of_a_store_is_recorded(
    sessionmaker: async_sessionmaker[AsyncSession], clock: Clock
) -> None:
    _, _, number, _ = await _filed(sessionmaker, clock, "site", TECHNICAL, ref="t1")
    for wrong, reason in (
        (number, modification_records.NOT_MODIFICATION),
        ("999999", modification_records.NO_TICKET),
    ):
        with pytest.raises(modification_records.RecordRefused) as refused:
            await _record(sessionmaker, wrong, 10, f"k{wrong}")
        assert refused.value.reason == reason
    with pytest.raises(modification_records.RecordRefused) as refused:
        await _record(sessionmaker, number, 0, "zero")
    assert refused.value.reason == modification_records.BAD_MINUTES
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Modification)) == 0
        assert await session.scalar(select(func.count()).select_from(StaffNoteOutbox)) == 0
