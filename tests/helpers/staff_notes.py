"""Internal notes as the tests read them in the builtin queue (services/staff_notes.py)."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import stores
from services.db.models import (
    BuiltinQueueComment,
    BuiltinQueueTransaction,
    Merchant,
    Role,
    Ticket,
)
from services.outbox import RetryPolicy
from services.queue.builtin import Kind
from services.staff_notes import StaffNoteWorker


def staff_note_worker(sessionmaker, queue, clock=None, **kwargs) -> StaffNoteWorker:  # type: ignore[no-untyped-def]
    return StaffNoteWorker(
        sessionmaker,
        queue,
        retry=RetryPolicy(base=timedelta(seconds=2), cap=timedelta(seconds=60)),
        **({"clock": clock} if clock else {}),
        **kwargs,
    )


async def builtin_notes(
    sessionmaker: async_sessionmaker[AsyncSession], number: str
) -> list[tuple[str, str]]:
    """The internal notes on a builtin-queue ticket: (author, body), oldest first."""
    async with sessionmaker() as session:
        rows = await session.execute(
            select(BuiltinQueueComment.author, BuiltinQueueComment.body)
            .join(
                BuiltinQueueTransaction,
                BuiltinQueueTransaction.comment_id == BuiltinQueueComment.id,
            )
            .where(
                BuiltinQueueComment.ticket_id == int(number),
                BuiltinQueueTransaction.kind == Kind.NOTE,
            )
            .order_by(BuiltinQueueComment.id)
        )
        return [(author, body) for author, body in rows]


async def set_email(
    sessionmaker: async_sessionmaker[AsyncSession], telegram_id: int, email: str
) -> None:
    """The merchant's tickets become a store's whose membership registered `email` (the e-mail
    belongs to the membership: services.merchants.requester_of)."""
    async with sessionmaker() as session:
        merchant = await session.scalar(select(Merchant).where(Merchant.telegram_id == telegram_id))
        assert merchant is not None
        store_id = await stores.add_store(
            session, domain=f"store-{telegram_id}.example.com", name="Цветы", plan="premium"
        )
        await stores.grant(
            session, merchant_id=merchant.id, store_id=store_id, role=Role.OWNER, email=email
        )
        await session.execute(
            update(Ticket).where(Ticket.merchant_id == merchant.id).values(store_id=store_id)
        )
        await session.commit()
