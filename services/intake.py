"""Whether a merchant may file a request of this category for this store, before it is written.

- Owner-only categories: «Просьбы по удалению контента магазина, передаче прав на магазин и
  приобретенный через inSales домен принимаются только в письменном виде и только от владельца
  магазина» — refused to admins and to merchants with no linked store (ownership unproven).
- The free plan: «На бесплатном тарифном плане имеются ограничения на обращения» — the scope in
  policies.toml (types, categories, tickets a month).
- Modifications beyond the month's allowance cost money, so the merchant confirms the price first.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from services import modifications, stores
from services.quota import QuotaStatus
from services.regulation import Regulation
from services.sla import ScopeRefusal, check_scope
from services.stores import StoreAccess

MODIFICATION = "modification"


class Refusal(StrEnum):
    OWNER_ONLY = "owner_only"
    TYPE_NOT_COVERED = "type_not_covered"
    CATEGORY_NOT_COVERED = "category_not_covered"
    MONTHLY_LIMIT_REACHED = "monthly_limit_reached"


@dataclass(frozen=True, slots=True)
class Eligibility:
    refusal: Refusal | None = None
    plan: str | None = None
    monthly_limit: int | None = None

    @property
    def allowed(self) -> bool:
        return self.refusal is None


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
    if entry.owner_only and (store is None or not store.is_owner):
        return Eligibility(Refusal.OWNER_ONLY, plan=store.plan if store else None)
    if store is None:
        return Eligibility()
    decision = check_scope(
        regulation.policies,
        plan=store.plan,
        type_code=type_code,
        category=category,
        system_error=entry.system_error,
        tickets_this_month=await stores.tickets_this_month(session, store.id, now),
    )
    refusal = {
        None: None,
        ScopeRefusal.TYPE_NOT_COVERED: Refusal.TYPE_NOT_COVERED,
        ScopeRefusal.CATEGORY_NOT_COVERED: Refusal.CATEGORY_NOT_COVERED,
        ScopeRefusal.MONTHLY_LIMIT_REACHED: Refusal.MONTHLY_LIMIT_REACHED,
    }[decision.refusal]
    return Eligibility(refusal, plan=store.plan, monthly_limit=decision.monthly_limit)


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
