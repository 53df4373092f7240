"""Stores a merchant acts for, and their role there (the owner, or an admin)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import event, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import ORMExecuteState, Session

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


# An update reads the merchant's stores with the merchant (services/merchants.arrive) and asks
# for them again at each step it renders: the session keeps what it read until it writes.
_KNOWN = "frontdesk.stores"

STORE_COLUMNS = (Store.id, Store.domain, Store.name, Store.plan, Membership.role)


def store_access(id: int, domain: str, name: str, plan: str, role: Role) -> StoreAccess:
    return StoreAccess(id=id, domain=domain, name=name, plan=plan, role=role)


def remember(session: AsyncSession, merchant_id: int, stores: list[StoreAccess]) -> None:
    session.info.setdefault(_KNOWN, {})[merchant_id] = tuple(stores)


async def stores_of(session: AsyncSession, merchant_id: int) -> list[StoreAccess]:
    known = session.info.get(_KNOWN, {}).get(merchant_id)
    if known is not None:
        return list(known)
    rows = await session.execute(
        select(*STORE_COLUMNS)
        .join(Membership, Membership.store_id == Store.id)
        .where(Membership.merchant_id == merchant_id)
        .order_by(Store.name, Store.id)
    )
    stores = [store_access(*row) for row in rows]
    remember(session, merchant_id, stores)
    return stores


@event.listens_for(Session, "do_orm_execute")
def _forget_on_write(execute: ORMExecuteState) -> None:
    # Any write may be a link, an unlink or a plan's change: read the stores again after it.
    if not execute.is_select:
        execute.session.info.pop(_KNOWN, None)


@event.listens_for(Session, "after_flush")
@event.listens_for(Session, "after_rollback")
def _forget(session: Session, *_: object) -> None:
    session.info.pop(_KNOWN, None)


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
