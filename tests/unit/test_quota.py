"""The free-modification quota: allowances, the 15-minute limit, the price and the monthly reset."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.quota import (
    Charge,
    ChargeKind,
    ChargeReason,
    QuotaPolicy,
    UnknownPlan,
    classify_next,
    quota_period,
    status_of,
)
from services.sla import load_policies
from services.working_calendar import MOSCOW


@cache
def policy() -> QuotaPolicy:
    return load_policies().quota


def msk(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0):
    return datetime(year, month, day, hour, minute, second, tzinfo=MOSCOW).astimezone(UTC)


# --- allowances and charges -------------------------------------------------------------------


@pytest.mark.parametrize(("plan", "allowance"), [("site", 4), ("combo", 4), ("premium", 10)])
def test_site_and_combo_plans_include_4_free_modifications_premium_10(
    plan: str, allowance: int
) -> None:
    assert policy().allowance_for(plan) == allowance
    for used in range(allowance):
        assert classify_next(plan, used, 10, policy()) == Charge(
            ChargeKind.FREE, 0, "RUB", ChargeReason.WITHIN_ALLOWANCE
        )
    assert classify_next(plan, allowance, 10, policy()) == Charge(
        ChargeKind.PAID, 500, "RUB", ChargeReason.ALLOWANCE_USED_UP
    )


def test_free_plan_includes_no_free_modifications() -> None:
    assert policy().allowance_for("free") == 0
    assert classify_next("free", 0, 5, policy()) == Charge(
        ChargeKind.PAID, 500, "RUB", ChargeReason.NO_ALLOWANCE
    )


@pytest.mark.parametrize("plan", ["site", "combo", "premium"])
def test_modification_of_at_most_15_minutes_is_free(plan: str) -> None:
    assert classify_next(plan, 0, 15, policy()).is_free
    assert classify_next(plan, 0, 0, policy()).is_free


@pytest.mark.parametrize("plan", ["free", "site", "combo", "premium"])
@pytest.mark.parametrize("used", [0, 3, 10])
def test_modification_over_15_minutes_is_paid_on_every_plan(plan: str, used: int) -> None:
    charge = classify_next(plan, used, 16, policy())
    assert charge.kind is ChargeKind.PAID
    assert charge.reason is ChargeReason.OVER_TIME_LIMIT
    assert charge.amount is None  # quoted by a specialist: the regulation sets no price


def test_each_small_modification_beyond_the_allowance_costs_500_rub() -> None:
    for used in (4, 5, 50):
        charge = classify_next("site", used, 15, policy())
        assert (charge.kind, charge.amount, charge.currency) == (ChargeKind.PAID, 500, "RUB")


def test_price_and_limit_are_configurable() -> None:
    custom = QuotaPolicy(allowance={"site": 2}, free_minutes_limit=30, price_beyond=700)
    assert classify_next("site", 1, 30, custom).is_free
    assert classify_next("site", 2, 30, custom).amount == 700


def test_bad_inputs_are_refused() -> None:
    with pytest.raises(UnknownPlan):
        classify_next("gold", 0, 10, policy())
    with pytest.raises(ValueError):
        classify_next("site", 0, -1, policy())
    with pytest.raises(ValueError):
        classify_next("site", -1, 10, policy())


def test_allowances_cannot_be_changed_after_loading() -> None:
    with pytest.raises(TypeError):
        policy().allowance["free"] = 100  # type: ignore[index]


# --- the calendar month in Moscow time -----------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "start", "end"),
    [
        (msk(2025, 1, 31, 23, 59, 59), msk(2025, 1, 1), msk(2025, 2, 1)),
        (msk(2025, 2, 1), msk(2025, 2, 1), msk(2025, 3, 1)),
        (msk(2025, 12, 31, 23, 59), msk(2025, 12, 1), msk(2026, 1, 1)),
        (msk(2026, 1, 1), msk(2026, 1, 1), msk(2026, 2, 1)),
        (msk(2028, 2, 29, 23, 59), msk(2028, 2, 1), msk(2028, 3, 1)),
        # 22:00 UTC on 31 December is already 1 January in Moscow.
        (datetime(2025, 12, 31, 22, tzinfo=UTC), msk(2026, 1, 1), msk(2026, 2, 1)),
    ],
)
def test_counter_resets_at_the_end_of_the_calendar_month_moscow_time(
    at: datetime, start: datetime, end: datetime
) -> None:
    assert quota_period(at) == (start, end)


def test_month_starts_at_21_00_utc_the_day_before() -> None:
    start, end = quota_period(msk(2026, 1, 15))
    assert start == datetime(2025, 12, 31, 21, tzinfo=UTC)
    assert end == datetime(2026, 1, 31, 21, tzinfo=UTC)
    assert start.tzinfo is UTC and end.tzinfo is UTC


def test_quota_period_refuses_naive_times() -> None:
    with pytest.raises(ValueError):
        quota_period(datetime(2025, 1, 1))


@settings(deadline=None)  # timing varies with machine load; correctness does not
@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 12, 1)))
def test_months_contain_their_moment_and_follow_each_other(naive: datetime) -> None:
    at = naive.replace(tzinfo=UTC)
    start, end = quota_period(at)
    assert start <= at < end
    assert quota_period(end)[0] == end
    assert quota_period(start - timedelta(microseconds=1))[1] == start
    first = start.astimezone(MOSCOW)
    assert (first.day, first.hour, first.minute, first.second) == (1, 0, 0, 0)


# --- the status shown to a merchant --------------------------------------------------------------


def test_status_gives_what_is_left_the_price_and_when_the_month_ends() -> None:
    status = status_of("site", 2, msk(2026, 1, 31, 23, 59), policy())
    assert (status.allowance, status.used, status.left) == (4, 2, 2)
    assert status.resets_at == msk(2026, 2, 1)
    assert status.period_start == msk(2026, 1, 1)
    assert (status.price_beyond, status.currency, status.free_minutes_limit) == (500, "RUB", 15)


def test_status_at_23_59_and_00_00_on_the_last_and_first_day_of_the_month() -> None:
    before = status_of("combo", 4, msk(2025, 12, 31, 23, 59), policy())
    after = status_of("combo", 0, msk(2026, 1, 1, 0, 0), policy())
    assert (before.left, before.period_start, before.resets_at) == (
        0,
        msk(2025, 12, 1),
        msk(2026, 1, 1),
    )
    assert (after.left, after.period_start, after.resets_at) == (
        4,
        msk(2026, 1, 1),
        msk(2026, 2, 1),
    )
    assert classify_next("combo", before.used, 10, policy()).kind is ChargeKind.PAID
    assert classify_next("combo", after.used, 10, policy()).kind is ChargeKind.FREE


def test_left_never_goes_below_zero() -> None:
    # An allowance lowered mid-month leaves more used than allowed.
    status = status_of("site", 6, msk(2025, 11, 30), policy())
    assert (status.used, status.left) == (6, 0)


def test_free_plan_status_has_nothing_left() -> None:
    status = status_of("free", 0, msk(2025, 11, 3), policy())
    assert (status.allowance, status.used, status.left) == (0, 0, 0)
