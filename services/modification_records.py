"""A specialist records a modification done on a ticket (issue 9, point 4).

The quota ledger (services/modifications.py) decides the charge: free when the work took at most
the free limit (15 minutes) and the store's allowance for the month is not used up; 500 RUB for
small work beyond the allowance; over the limit always paid, at the specialist's quote, which is
then required. In the same transaction the merchant gets a notice (free or paid, and the free
modifications left this month) and the ticket in the queue an internal note (a StaffNoteOutbox
row, posted by services/staff_notes.StaffNoteWorker), so neither is lost nor doubled.

``key`` identifies the specialist's action (the command's Telegram update): the note row's unique
key ``modification:<key>`` is taken first, so the same action retried records nothing more.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services import modifications, notices
from services.db.dialect import insert_for, rowcount
from services.db.models import Merchant, StaffNoteOutbox, Store, Ticket
from services.quota import Charge, QuotaPolicy, QuotaStatus

MODIFICATION = "modification"
MAX_MINUTES = 24 * 60


class RecordRefused(ValueError):
    """The specialist's request cannot be recorded as given; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# RecordRefused reasons, rendered by the handler.
NO_TICKET = "no_ticket"
NOT_MODIFICATION = "not_modification"
NO_STORE = "no_store"
BAD_MINUTES = "bad_minutes"
PRICE_REQUIRED = "price_required"


@dataclass(frozen=True, slots=True)
class Recorded:
    number: str
    minutes: int
    # None when this action was recorded before (a retried update): nothing new was written.
    charge: Charge | None
    quota: QuotaStatus


def note_text(specialist: str, minutes: int, charge: Charge, quota: QuotaStatus) -> str:
    """The internal note, in Russian as the specialists read the queue."""
    if charge.is_free:
        what = "бесплатная"
    else:
        what = f"платная, {charge.amount} {charge.currency}"
    return (
        f"[frontdesk] Доработка записана: {minutes} мин., {what} "
        f"(причина: {charge.reason.value}); специалист {specialist}. "
        f"Бесплатных доработок осталось в этом месяце: {quota.left} из {quota.allowance}."
    )


async def record(
    session: AsyncSession,
    policy: QuotaPolicy,
    *,
    number: str,
    minutes: int,
    price: int | None,
    specialist: str,
    key: str,
    now: datetime,
) -> Recorded:
    """Records the modification on the ticket the queue numbers ``number``; commits."""
    if minutes <= 0 or minutes > MAX_MINUTES:
        raise RecordRefused(BAD_MINUTES)
    ticket = await session.scalar(
        select(Ticket).where(Ticket.queue_ticket_id == number).order_by(Ticket.id).limit(1)
    )
    if ticket is None:
        raise RecordRefused(NO_TICKET)
    if ticket.request_type != MODIFICATION:
        raise RecordRefused(NOT_MODIFICATION)
    store = await session.get(Store, ticket.store_id) if ticket.store_id is not None else None
    if store is None:
        raise RecordRefused(NO_STORE)
    if minutes > policy.free_minutes_limit and (price is None or price <= 0):
        raise RecordRefused(PRICE_REQUIRED)
    note_key = f"{MODIFICATION}:{key}"
    taken = await session.execute(
        insert_for(session, StaffNoteOutbox)
        .values(
            key=note_key,
            reference=uuid.uuid4().hex,
            ticket_id=ticket.id,
            text="",
            attempts=0,
            next_attempt_at=now,
            delay_notified=False,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["key"])
    )
    if rowcount(taken) != 1:
        store_id, plan = store.id, store.plan
        await session.rollback()
        return await _recorded_before(session, policy, number, minutes, store_id, plan, now)
    charge = await modifications.add_modification(
        session,
        policy,
        store_id=store.id,
        plan=store.plan,
        minutes=minutes,
        specialist=specialist,
        done_at=now,
        ticket_id=ticket.id,
        price=price if minutes > policy.free_minutes_limit else None,
    )
    quota = await modifications.quota_status(
        session, policy, store_id=store.id, plan=store.plan, now=now
    )
    note = await session.scalar(select(StaffNoteOutbox).where(StaffNoteOutbox.key == note_key))
    assert note is not None
    note.text = note_text(specialist, minutes, charge, quota)
    merchant = await session.get_one(Merchant, ticket.merchant_id)
    await notices.enqueue(
        session,
        key=f"{MODIFICATION}:{key}",
        chat_id=merchant.telegram_id,
        locale=ticket.locale,
        body=notices.ModificationRecorded(
            number=number,
            subject=ticket.subject,
            minutes=minutes,
            free=charge.is_free,
            amount=charge.amount,
            currency=charge.currency,
            quota=quota,
        ),
        ticket_id=ticket.id,
        now=now,
    )
    await session.commit()
    return Recorded(number=number, minutes=minutes, charge=charge, quota=quota)


async def _recorded_before(
    session: AsyncSession,
    policy: QuotaPolicy,
    number: str,
    minutes: int,
    store_id: int,
    plan: str,
    now: datetime,
) -> Recorded:
    """The same action again (a retried update): nothing new, the quota as it is now."""
    quota = await modifications.quota_status(session, policy, store_id=store_id, plan=plan, now=now)
    return Recorded(number=number, minutes=minutes, charge=None, quota=quota)
