"""Stores a merchant acts for, and their role there (the owner, or an admin)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.db.models import Membership, Role, Store, Ticket
from services.sla import ticket_month


@dataclass(frozen=True, slots=True)
class StoreAccess:
    id: int
    domain: str
    name: str
    plan: str
    role: Role

    @property
    def is_owner(self) -> bool:
        return self.role is Role.OWNER


async def stores_of(session: AsyncSession, merchant_id: int) -> list[StoreAccess]:
    rows = await session.execute(
        select(Store, Membership.role)
        .join(Membership, Membership.store_id == Store.id)
        .where(Membership.merchant_id == merchant_id)
        .order_by(Store.name, Store.id)
    )
    return [
        StoreAccess(id=store.id, domain=store.domain, name=store.name, plan=store.plan, role=role)
        for store, role in rows
    ]


async def tickets_this_month(session: AsyncSession, store_id: int, now: datetime) -> int:
    """Tickets filed for the store in the calendar month of `now` (Moscow time)."""
    start, end = ticket_month(now)
    count = await session.scalar(
        select(func.count())
        .select_from(Ticket)
        .where(Ticket.store_id == store_id, Ticket.created_at >= start, Ticket.created_at < end)
    )
    return count or 0


async def add_store(
    session: AsyncSession, *, domain: str, name: str, plan: str, owner_email: str | None = None
) -> int:
    store = Store(domain=domain.lower(), name=name, plan=plan, owner_email=owner_email)
    session.add(store)
    await session.commit()
    return store.id


async def grant(
    session: AsyncSession, *, merchant_id: int, store_id: int, role: Role, email: str | None = None
) -> None:
    """A membership by hand (the platform's links go through services/links.py); `email`, the
    requester of the store's tickets, None for the placeholder."""
    existing = await session.scalar(
        select(Membership).where(
            Membership.merchant_id == merchant_id, Membership.store_id == store_id
        )
    )
    if existing is None:
        session.add(Membership(merchant_id=merchant_id, store_id=store_id, role=role, email=email))
    else:
        existing.role, existing.email = role, email
    await session.commit()
