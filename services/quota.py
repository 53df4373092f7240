"""Free small modifications: the monthly allowance per plan and what the next one costs.

The regulation: "На всех сайтовых и комбо тарифах доступно четыре бесплатных доработки, на
премиуме — десять доработок"; a modification is free only if it takes at most 15 minutes of a
specialist ("не более 15 минут"; "доработки более 15 минут являются платными для всех тарифов");
"Обнуление счетчика выполненных доработок происходит в конце календарного месяца"; beyond the
allowance "стоимость выполнения каждой мелкой доработки сверх лимита составляет 500 руб."

Pure rules only: the ledger of performed modifications is stored elsewhere and passed in. The
numbers come from services/data/policies.toml (loaded by `services.sla.load_policies`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from enum import StrEnum
from types import MappingProxyType
from zoneinfo import ZoneInfo

from services.working_calendar import MOSCOW


class UnknownPlan(LookupError):
    """A plan code that the policy file does not define."""

    def __init__(self, plan: str) -> None:
        super().__init__(f"unknown plan: {plan!r}")
        self.plan = plan


class ChargeKind(StrEnum):
    FREE = "free"
    PAID = "paid"


class ChargeReason(StrEnum):
    WITHIN_ALLOWANCE = "within_allowance"  # free: small, and the month's allowance is not used up
    NO_ALLOWANCE = "no_allowance"  # the plan has no free modifications (free plan)
    ALLOWANCE_USED_UP = "allowance_used_up"  # small, but this month's allowance is spent
    OVER_TIME_LIMIT = "over_time_limit"  # longer than the free limit: paid on every plan


@dataclass(frozen=True)
class QuotaPolicy:
    """Allowances, the free time limit and the price, as read from policies.toml."""

    allowance: Mapping[str, int]  # plan -> free modifications per calendar month
    free_minutes_limit: int = 15  # at most this many specialist minutes to be free
    price_beyond: int = 500  # per small modification beyond the allowance
    currency: str = "RUB"
    tz: ZoneInfo = MOSCOW  # the calendar month is counted in this zone

    def __post_init__(self) -> None:
        object.__setattr__(self, "allowance", MappingProxyType(dict(self.allowance)))

    def allowance_for(self, plan: str) -> int:
        try:
            return self.allowance[plan]
        except KeyError:
            raise UnknownPlan(plan) from None


@dataclass(frozen=True)
class Charge:
    """What the next modification costs. `amount` is None when the regulation sets no price:
    a modification over the time limit is quoted by a specialist ("Подробнее о платных
    доработках")."""

    kind: ChargeKind
    amount: int | None
    currency: str
    reason: ChargeReason

    @property
    def is_free(self) -> bool:
        return self.kind is ChargeKind.FREE


@dataclass(frozen=True)
class QuotaStatus:
    plan: str
    allowance: int
    used: int  # free modifications performed in the current period
    left: int
    resets_at: datetime  # UTC; the end of the calendar month in the policy's zone
    price_beyond: int
    currency: str = "RUB"
    free_minutes_limit: int = 15
    period_start: datetime | None = None  # UTC; when the current period began


def quota_period(at: datetime, tz: ZoneInfo = MOSCOW) -> tuple[datetime, datetime]:
    """The calendar month containing `at`, in `tz`, as a half-open UTC range [start, end).

    The counter resets at the end of the calendar month: 00:00 of the 1st in Moscow time, which is
    21:00 UTC on the last day of the previous month.
    """
    _require_aware(at, "at")
    local = at.astimezone(tz)
    first = date(local.year, local.month, 1)
    following = date(first.year + first.month // 12, first.month % 12 + 1, 1)
    start = datetime.combine(first, time.min, tzinfo=tz).astimezone(UTC)
    end = datetime.combine(following, time.min, tzinfo=tz).astimezone(UTC)
    return start, end


def classify_next(plan: str, used: int, minutes: int, policy: QuotaPolicy) -> Charge:
    """The charge for the next modification of `minutes` (the specialist's estimate) when `used`
    free ones were already done this month."""
    if minutes < 0:
        raise ValueError("minutes must not be negative")
    if used < 0:
        raise ValueError("used must not be negative")
    allowance = policy.allowance_for(plan)
    if minutes > policy.free_minutes_limit:
        return Charge(ChargeKind.PAID, None, policy.currency, ChargeReason.OVER_TIME_LIMIT)
    if allowance == 0:
        return Charge(
            ChargeKind.PAID, policy.price_beyond, policy.currency, ChargeReason.NO_ALLOWANCE
        )
    if used >= allowance:
        return Charge(
            ChargeKind.PAID, policy.price_beyond, policy.currency, ChargeReason.ALLOWANCE_USED_UP
        )
    return Charge(ChargeKind.FREE, 0, policy.currency, ChargeReason.WITHIN_ALLOWANCE)


def status_of(plan: str, used: int, now: datetime, policy: QuotaPolicy) -> QuotaStatus:
    """The quota of `plan` at `now` when `used` free modifications were done in the calendar
    month of `now` (paid ones use no allowance)."""
    allowance = policy.allowance_for(plan)
    start, end = quota_period(now, policy.tz)
    return QuotaStatus(
        plan=plan,
        allowance=allowance,
        used=used,
        left=max(allowance - used, 0),
        resets_at=end,
        price_beyond=policy.price_beyond,
        currency=policy.currency,
        free_minutes_limit=policy.free_minutes_limit,
        period_start=start,
    )


def _require_aware(moment: datetime, name: str = "done_at") -> datetime:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be an aware datetime")
    return moment
