"""Whether a merchant may file a request of this category for this store, before it is written.

- Owner-only categories: «Просьбы по удалению контента магазина, передаче прав на магазин и
  приобретенный через inSales домен принимаются только в письменном виде и только от владельца
  магазина» — refused to admins and to merchants with no linked store (ownership unproven).
- The free plan: «На бесплатном тарифном плане имеются ограничения на обращения» — the regulation
  names none; the scope in policies.toml (types, categories, tickets a month) is the operator's
  policy. A refusal carries what the plan does allow (`choices_for`), so the answer can name it.
- A free plan may order modifications for a fee: «Если тариф не предусматривает бесплатных
  доработок ... доработки можно выполнить на платной основе» (its allowance is 0).
- Modifications beyond the month's allowance cost money, so the merchant confirms the price first.
- Someone linked to no store: the regulation takes requests from a store's admin panel, so by
  default they file nothing and are told how to link (UNLINKED_MAY_FILE=none); the operator may
  let them file technical requests that touch no account (=technical).
- Flood control: at most TICKETS_PER_HOUR requests a merchant in any hour.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services import modifications, restrictions, stores
from services.catalog import Category, RequestType
from services.db.models import Ticket
from services.quota import QuotaStatus
from services.regulation import Regulation, UnlinkedFiling
from services.sla import ScopeRefusal, check_scope, scope_allows, scope_choices, ticket_month
from services.stores import StoreAccess

MODIFICATION = "modification"


class Refusal(StrEnum):
    # Linked to no store, and the request touches an account (or the operator allows nothing).
    NOT_LINKED = "not_linked"
    OWNER_ONLY = "owner_only"
    TYPE_NOT_COVERED = "type_not_covered"
    CATEGORY_NOT_COVERED = "category_not_covered"
    MONTHLY_LIMIT_REACHED = "monthly_limit_reached"


@dataclass(frozen=True, slots=True)
class Choice:
    """A type the store's plan may file, with its categories the plan may file (catalog order).
    `price` is set when every one of them is paid (modifications on a plan with no allowance)."""

    type: RequestType
    categories: tuple[Category, ...]
    whole_type: bool
    price: int | None = None
    currency: str = "RUB"


@dataclass(frozen=True, slots=True)
class Eligibility:
    refusal: Refusal | None = None
    plan: str | None = None
    monthly_limit: int | None = None
    # The refused category (owner-only: named in the answer).
    category: Category | None = None
    # What the plan allows, for a scope refusal: the answer names what the merchant can choose.
    choices: tuple[Choice, ...] = ()
    # The monthly limit: when the next calendar month (Moscow time) begins, UTC.
    renews_at: datetime | None = None

    @property
    def allowed(self) -> bool:
        return self.refusal is None


def choices_for(regulation: Regulation, plan: str) -> tuple[Choice, ...]:
    """What a merchant on `plan` may choose among the wizard's buttons, from the plan's scope
    in policies.toml and the catalog."""
    catalog, quota = regulation.catalog, regulation.policies.quota
    result = []
    for choice in scope_choices(regulation.policies, catalog, plan):
        request_type = catalog.type(choice.type_code)
        if request_type is None:  # pragma: no cover - scope_choices walks the catalog
            continue
        paid = choice.type_code == MODIFICATION and quota.allowance_for(plan) == 0
        result.append(
            Choice(
                type=request_type,
                categories=tuple(
                    category
                    for category in request_type.categories
                    if category.code in choice.categories
                ),
                whole_type=choice.whole_type,
                price=quota.price_beyond if paid else None,
                currency=quota.currency,
            )
        )
    return tuple(result)


def check_type(regulation: Regulation, *, store: StoreAccess | None, type_code: str) -> Eligibility:
    """Whether the store's plan covers any category of the type: asked when the type is chosen,
    so a merchant is not led to a list of categories they may not file."""
    request_type = regulation.catalog.type(type_code)
    if request_type is None:
        raise LookupError(f"{type_code} is not in the catalog")
    if store is None:
        return Eligibility()
    scope = regulation.policies.scope_for(store.plan)
    if any(
        scope_allows(scope, type_code, category.code, system_error=category.system_error)
        for category in request_type.categories
    ):
        return Eligibility(plan=store.plan)
    return Eligibility(
        Refusal.TYPE_NOT_COVERED,
        plan=store.plan,
        monthly_limit=scope.monthly_tickets,
        choices=choices_for(regulation, store.plan),
    )


async def restricted(session: AsyncSession, telegram_id: int) -> bool:
    """Whether a lead restricted this Telegram user from filing (services/restrictions.py):
    /new and Send refuse them politely."""
    return await restrictions.is_restricted(session, telegram_id)


def may_start(regulation: Regulation, *, linked: bool) -> bool:
    """Whether /new opens the wizard at all: for someone linked to no store, only if the
    operator lets them file something (UNLINKED_MAY_FILE=technical)."""
    return linked or regulation.intake.unlinked_may_file is not UnlinkedFiling.NONE


def unlinked_may_file(regulation: Regulation, type_code: str, category: str) -> bool:
    """Someone linked to no store may file only a request that touches no account (never an
    owner-only one, an account change, a refund or a modification of a store), and only if the
    operator allows it."""
    if regulation.intake.unlinked_may_file is UnlinkedFiling.NONE:
        return False
    return not regulation.catalog.touches_account(type_code, category)


HOUR = timedelta(hours=1)


async def wait_before_filing(
    session: AsyncSession, regulation: Regulation, *, merchant_id: int, now: datetime
) -> timedelta | None:
    """None if the merchant may file one more request now; else how long until the oldest of
    their last hour's TICKETS_PER_HOUR requests leaves the hour. Counted from the tickets
    themselves, so what was accepted stays accepted."""
    limit = regulation.intake.tickets_per_hour
    recent = list(
        await session.scalars(
            select(Ticket.created_at)
            .where(Ticket.merchant_id == merchant_id, Ticket.created_at > now - HOUR)
            .order_by(Ticket.created_at.desc())
            .limit(limit)
        )
    )
    if len(recent) < limit:
        return None
    return max(recent[-1] + HOUR - now, timedelta(seconds=1))


async def check_category(
    session: AsyncSession,
    regulation: Regulation,
    *,
    store: StoreAccess | None,
    type_code: str,
    category: str,
    now: datetime,
) -> Eligibility:
    entry = regulation.catalog.category(type_code, category)
    if entry is None:
        raise LookupError(f"{type_code}/{category} is not in the catalog")
    if store is None and not unlinked_may_file(regulation, type_code, category):
        return Eligibility(Refusal.NOT_LINKED)
    if entry.owner_only and (store is None or not store.is_owner):
        return Eligibility(Refusal.OWNER_ONLY, plan=store.plan if store else None, category=entry)
    if store is None:
        return Eligibility()
    # Counted only for a plan with a monthly limit (the free one): a count the decision does
    # not use is a query on every category pressed.
    limited = regulation.policies.scope_for(store.plan).monthly_tickets is not None
    decision = check_scope(
        regulation.policies,
        plan=store.plan,
        type_code=type_code,
        category=category,
        system_error=entry.system_error,
        tickets_this_month=(
            await stores.tickets_this_month(session, store.id, now) if limited else 0
        ),
    )
    refusal = {
        None: None,
        ScopeRefusal.TYPE_NOT_COVERED: Refusal.TYPE_NOT_COVERED,
        ScopeRefusal.CATEGORY_NOT_COVERED: Refusal.CATEGORY_NOT_COVERED,
        ScopeRefusal.MONTHLY_LIMIT_REACHED: Refusal.MONTHLY_LIMIT_REACHED,
    }[decision.refusal]
    covered = refusal in (Refusal.TYPE_NOT_COVERED, Refusal.CATEGORY_NOT_COVERED)
    return Eligibility(
        refusal,
        plan=store.plan,
        monthly_limit=decision.monthly_limit,
        category=entry,
        choices=choices_for(regulation, store.plan) if covered else (),
        renews_at=ticket_month(now)[1] if refusal is Refusal.MONTHLY_LIMIT_REACHED else None,
    )


async def modification_quota(
    session: AsyncSession,
    regulation: Regulation,
    *,
    store: StoreAccess | None,
    type_code: str,
    now: datetime,
) -> QuotaStatus | None:
    """The store's quota when the request is a modification (None otherwise, or with no store)."""
    if type_code != MODIFICATION or store is None:
        return None
    return await modifications.quota_status(
        session, regulation.policies.quota, store_id=store.id, plan=store.plan, now=now
    )
