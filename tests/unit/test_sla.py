"""SLA clocks, the default policies of the regulation, the support scope and deadline phrases."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from functools import cache
from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from services.catalog import load_catalog
from services.quota import UnknownPlan
from services.sla import (
    DEFAULT_BUSINESS_HOURS,
    DEFAULT_POLICIES,
    BusinessHours,
    Clock,
    NoSlaPolicy,
    PhraseKind,
    Policies,
    PolicyFileError,
    ScopeChoice,
    ScopeRefusal,
    SlaRule,
    SupportScope,
    add_duration,
    check_against_catalog,
    check_scope,
    deadlines_for,
    describe_deadline,
    load_policies,
    parse_duration,
    scope_choices,
)
from services.working_calendar import MOSCOW, WorkingCalendar
from tests.helpers.counted_time import counted_between


@cache
def calendar() -> WorkingCalendar:
    # Preloaded, so that no example pays for computing a year.
    return WorkingCalendar.russian(years=range(2014, 2031))


@cache
def policies() -> Policies:
    return load_policies()


def msk(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    """A Moscow wall-clock time as the engine takes it: aware, UTC."""
    return datetime(year, month, day, hour, minute, tzinfo=MOSCOW).astimezone(UTC)


def local(moment: datetime) -> datetime:
    return moment.astimezone(MOSCOW)


# --- the clocks: properties -----------------------------------------------------------------------

# Covers 2025-2026 and their decrees, the New Year holidays of 2025-2029 and 29 February 2028.
starts = st.datetimes(min_value=datetime(2024, 12, 1), max_value=datetime(2029, 1, 31)).map(
    lambda naive: naive.replace(tzinfo=UTC)
)
durations = st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=15))
positive_durations = st.timedeltas(
    min_value=timedelta(microseconds=1), max_value=timedelta(days=15)
)
clocks = st.sampled_from(list(Clock))

BOUNDARY_STARTS = [
    msk(2025, 12, 31, 23, 59),  # the New Year holidays, over a year boundary
    msk(2026, 1, 8, 18, 30),
    msk(2025, 10, 31, 18, 59),  # Friday before the working Saturday 1 November 2025
    msk(2028, 2, 28, 19, 0),  # the eve of the leap day
    msk(2028, 2, 29, 10, 0),
    msk(2025, 4, 30, 23, 59),  # the May holidays, over a month boundary
]


@settings(max_examples=300, deadline=None)
@given(clock=clocks, start=starts, duration=durations)
@example(clock=Clock.BUSINESS_HOURS, start=BOUNDARY_STARTS[0], duration=timedelta(hours=9))
@example(clock=Clock.WORKING_DAYS, start=BOUNDARY_STARTS[1], duration=timedelta(days=1))
def test_deadline_is_never_before_registration(
    clock: Clock, start: datetime, duration: timedelta
) -> None:
    due = add_duration(clock, start, duration, calendar())
    assert due >= start
    assert due.tzinfo is UTC
    assert counted_between(clock, start, due, calendar()) == duration


@settings(max_examples=300, deadline=None)
@given(start=starts, duration=positive_durations)
@example(start=msk(2025, 11, 3, 9), duration=timedelta(hours=9))  # day off, then Tue 4 Nov off
@example(start=msk(2025, 11, 5, 10), duration=timedelta(hours=9))  # ends exactly at 19:00
@example(start=msk(2028, 2, 28, 19), duration=timedelta(minutes=1))
def test_business_hours_deadline_falls_inside_the_window_or_at_its_close(
    start: datetime, duration: timedelta
) -> None:
    """The boundary rule: a positive duration ends at a Moscow time in (10:00, 19:00] on a working
    day; never at 10:00 (the earliest instant is the previous close), never at night."""
    due = local(add_duration(Clock.BUSINESS_HOURS, start, duration, calendar()))
    assert calendar().is_working_day(due.date())
    assert time(10, 0) < due.time() <= time(19, 0)


@settings(max_examples=300, deadline=None)
@given(start=starts, duration=positive_durations)
@example(start=msk(2025, 10, 31, 15), duration=timedelta(hours=9))  # ends Sat 1 Nov 00:00
@example(start=msk(2025, 12, 30, 12), duration=timedelta(hours=12))  # ends 31 Dec 00:00, a day off
def test_working_days_deadline_falls_on_a_working_day_or_at_its_midnight(
    start: datetime, duration: timedelta
) -> None:
    """A positive duration ends after 00:00 of a working day, or exactly at the midnight that
    closes one (which may begin a day off)."""
    due = local(add_duration(Clock.WORKING_DAYS, start, duration, calendar()))
    if due.time() == time.min:
        assert calendar().is_working_day(due.date() - timedelta(days=1))
    else:
        assert calendar().is_working_day(due.date())


@settings(max_examples=300, deadline=None)
@given(clock=clocks, start=starts, first=durations, second=durations)
@example(
    clock=Clock.BUSINESS_HOURS,
    start=msk(2025, 5, 7, 17),
    first=timedelta(hours=2),
    second=timedelta(hours=1),
)
@example(
    clock=Clock.WORKING_DAYS,
    start=msk(2028, 2, 28, 12),
    first=timedelta(hours=12),
    second=timedelta(days=1),
)
def test_adding_a_then_b_equals_adding_a_plus_b(
    clock: Clock, start: datetime, first: timedelta, second: timedelta
) -> None:
    step = add_duration(clock, start, first, calendar())
    assert add_duration(clock, step, second, calendar()) == add_duration(
        clock, start, first + second, calendar()
    )


@settings(max_examples=300, deadline=None)
@given(clock=clocks, start=starts, duration=durations, extra=durations)
def test_deadlines_are_monotonic_in_the_duration(
    clock: Clock, start: datetime, duration: timedelta, extra: timedelta
) -> None:
    assert add_duration(clock, start, duration, calendar()) <= add_duration(
        clock, start, duration + extra, calendar()
    )


def _reference_deadline(clock: Clock, start: datetime, minutes: int) -> datetime:
    """Minute by minute, the slow obvious way."""
    moment, left = start, minutes
    while left:
        wall = local(moment)
        counted = calendar().is_working_day(wall.date()) and (
            clock is Clock.WORKING_DAYS or time(10) <= wall.time() < time(19)
        )
        moment += timedelta(minutes=1)
        left -= counted
    return moment


@settings(max_examples=60, deadline=None)
@given(
    clock=st.sampled_from([Clock.WORKING_DAYS, Clock.BUSINESS_HOURS]),
    start=starts.map(lambda moment: moment.replace(second=0, microsecond=0)),
    minutes=st.integers(min_value=0, max_value=30 * 60),
)
@example(clock=Clock.BUSINESS_HOURS, start=msk(2025, 12, 30, 18), minutes=120)
@example(clock=Clock.WORKING_DAYS, start=msk(2028, 2, 28, 23), minutes=25 * 60)
def test_clocks_agree_with_a_minute_by_minute_count(
    clock: Clock, start: datetime, minutes: int
) -> None:
    due = add_duration(clock, start, timedelta(minutes=minutes), calendar())
    assert due == _reference_deadline(clock, start, minutes)


# --- the clocks: real dates -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("clock", "start", "duration", "due"),
    [
        (Clock.CONTINUOUS, msk(2025, 12, 31, 15), timedelta(hours=24), msk(2026, 1, 1, 15)),
        (Clock.CONTINUOUS, msk(2028, 2, 28, 15), timedelta(hours=24), msk(2028, 2, 29, 15)),
        # Friday 31 Oct 2025 15:00: 9 h that day, the rest on the working Saturday.
        (Clock.WORKING_DAYS, msk(2025, 10, 31, 15), timedelta(hours=24), msk(2025, 11, 1, 15)),
        # Saturday 1 Nov works, 2-4 Nov are off.
        (Clock.WORKING_DAYS, msk(2025, 11, 1, 15), timedelta(hours=24), msk(2025, 11, 5, 15)),
        # Tue 30 Dec 2025 12:00: 12 h, then 31 Dec and 1-11 Jan 2026 off.
        (Clock.WORKING_DAYS, msk(2025, 12, 30, 12), timedelta(hours=24), msk(2026, 1, 12, 12)),
        # Registered during the holidays: the clock starts on the first working day.
        (Clock.WORKING_DAYS, msk(2026, 1, 3, 9), timedelta(hours=24), msk(2026, 1, 13)),
        # Wed 30 Apr 2025 18:00: 6 h, 1-4 May off, Monday 5 May.
        (Clock.WORKING_DAYS, msk(2025, 4, 30, 18), timedelta(hours=24), msk(2025, 5, 5, 18)),
        # Fri 6 Mar 2026: the weekend and Monday 9 March (observed 8 March) are off.
        (Clock.WORKING_DAYS, msk(2026, 3, 6, 10), timedelta(hours=24), msk(2026, 3, 10, 10)),
        (Clock.WORKING_DAYS, msk(2028, 2, 28), timedelta(days=2), msk(2028, 3, 1)),
        # Wed 7 May 2025 17:00: 2 h, 8-11 May off, 1 h on Monday 12 May.
        (Clock.BUSINESS_HOURS, msk(2025, 5, 7, 17), timedelta(hours=3), msk(2025, 5, 12, 11)),
        # Exactly a window: ends at 19:00 the same day, not at 10:00 the next.
        (Clock.BUSINESS_HOURS, msk(2025, 11, 5, 10), timedelta(hours=9), msk(2025, 11, 5, 19)),
        # At night: the window of the next working day.
        (Clock.BUSINESS_HOURS, msk(2025, 11, 5, 22), timedelta(hours=1), msk(2025, 11, 6, 11)),
        (Clock.BUSINESS_HOURS, msk(2025, 11, 6, 7), timedelta(hours=1), msk(2025, 11, 6, 11)),
        # Zero: the registration time itself, even outside the window.
        (Clock.BUSINESS_HOURS, msk(2025, 11, 2, 3), timedelta(0), msk(2025, 11, 2, 3)),
    ],
)
def test_add_duration_on_real_dates(
    clock: Clock, start: datetime, duration: timedelta, due: datetime
) -> None:
    assert add_duration(clock, start, duration, calendar()) == due


def test_business_hours_window_is_configurable() -> None:
    early = BusinessHours(opens=time(9), closes=time(18))
    assert add_duration(
        Clock.BUSINESS_HOURS, msk(2025, 11, 5, 17), timedelta(hours=2), calendar(), early
    ) == msk(2025, 11, 6, 10)
    with pytest.raises(ValueError):
        BusinessHours(opens=time(19), closes=time(10))


def test_add_duration_takes_any_aware_zone_and_returns_utc() -> None:
    start = datetime(2025, 10, 31, 15, tzinfo=MOSCOW)
    due = add_duration(Clock.WORKING_DAYS, start, timedelta(hours=24), calendar())
    assert due == msk(2025, 11, 1, 15) and due.tzinfo is UTC


def test_add_duration_refuses_naive_times_and_negative_durations() -> None:
    with pytest.raises(ValueError, match="aware"):
        add_duration(Clock.CONTINUOUS, datetime(2025, 1, 1), timedelta(hours=1), calendar())
    with pytest.raises(ValueError, match="negative"):
        add_duration(Clock.WORKING_DAYS, msk(2025, 1, 9), timedelta(hours=-1), calendar())


def test_a_long_duration_takes_days_not_minutes() -> None:
    # About ten years of working days: thousands of loop steps, not millions of minutes.
    due = add_duration(Clock.WORKING_DAYS, msk(2025, 1, 9), timedelta(days=2470), calendar())
    last_working_day = calendar().add_working_days(date(2025, 1, 9), 2469)
    assert due == msk(2025, 1, 9) + (last_working_day + timedelta(days=1) - date(2025, 1, 9))


def test_counted_intervals_are_half_open() -> None:
    # What add_duration counts, minute by minute: the window's first minute, not the one at its
    # close; nothing on a day off; a working Saturday; every minute round the clock.
    minute = timedelta(minutes=1)
    for clock, start, counted in [
        (Clock.BUSINESS_HOURS, msk(2025, 11, 5, 10), True),
        (Clock.BUSINESS_HOURS, msk(2025, 11, 5, 19), False),
        (Clock.WORKING_DAYS, msk(2025, 11, 3, 12), False),
        (Clock.WORKING_DAYS, msk(2025, 11, 1, 12), True),
        (Clock.CONTINUOUS, msk(2025, 11, 3, 12), True),
    ]:
        due = add_duration(clock, start, minute, calendar())
        assert (due == start + minute) is counted, (clock, start)


# --- the default policies of the regulation ---------------------------------------------------

PAID_AND_FREE_PLANS = ["free", "site", "combo"]
REGISTERED = msk(2025, 10, 31, 15)  # Friday, before the working Saturday and the 2-4 Nov break


def due(plan: str, type_code: str, category: str, at: datetime = REGISTERED):
    return deadlines_for(
        policies(), calendar(), plan=plan, type_code=type_code, category=category, registered_at=at
    )


@pytest.mark.parametrize("plan", PAID_AND_FREE_PLANS)
@pytest.mark.parametrize(
    "category",
    ["store_setup", "payments_delivery", "integrations", "system_error", "other_technical"],
)
def test_technical_first_reaction_within_24_hours_round_the_clock(plan: str, category: str) -> None:
    deadlines = due(plan, "technical", category, msk(2025, 11, 2, 15))  # a Sunday counts
    assert deadlines.policy.clock is Clock.CONTINUOUS
    assert deadlines.first_reaction_due == msk(2025, 11, 3, 15)
    assert deadlines.resolution_due is None


@pytest.mark.parametrize("plan", PAID_AND_FREE_PLANS)
@pytest.mark.parametrize("category", ["template", "email_template", "custom_export"])
def test_modification_first_reaction_within_24_hours_round_the_clock(
    plan: str, category: str
) -> None:
    deadlines = due(plan, "modification", category, msk(2025, 12, 31, 20))  # a holiday counts
    assert deadlines.policy.clock is Clock.CONTINUOUS
    assert deadlines.first_reaction_due == msk(2026, 1, 1, 20)


@pytest.mark.parametrize("plan", PAID_AND_FREE_PLANS)
@pytest.mark.parametrize(
    "category", ["account", "plan_payment", "content_deletion", "transfer_rights"]
)
def test_administrative_first_reaction_within_24_hours_not_counting_weekends_and_days_off(
    plan: str, category: str
) -> None:
    deadlines = due(plan, "administrative", category, msk(2025, 11, 1, 15))
    assert deadlines.policy.clock is Clock.WORKING_DAYS
    assert deadlines.first_reaction_due == msk(2025, 11, 5, 15)  # 2-4 Nov are not counted
    assert deadlines.resolution_due is None


def test_premium_account_first_reaction_within_24_hours_not_counting_days_off() -> None:
    deadlines = due("premium", "administrative", "account", msk(2025, 12, 30, 12))
    assert deadlines.policy.first_reaction == timedelta(hours=24)
    assert deadlines.first_reaction_due == msk(2026, 1, 12, 12)


@pytest.mark.parametrize("plan", PAID_AND_FREE_PLANS)
def test_reregistration_processed_within_24_hours_not_counting_days_off(plan: str) -> None:
    deadlines = due(plan, "administrative", "reregistration", msk(2025, 4, 30, 18))
    assert deadlines.policy.clock is Clock.WORKING_DAYS
    assert deadlines.first_reaction_due == msk(2025, 5, 5, 18)  # 1-4 May are not counted


@pytest.mark.parametrize("plan", PAID_AND_FREE_PLANS)
def test_refund_processed_within_24_hours_and_money_returned_within_10_working_days(
    plan: str,
) -> None:
    deadlines = due(plan, "administrative", "refund")
    assert deadlines.policy.clock is Clock.WORKING_DAYS
    assert deadlines.first_reaction_due == msk(2025, 11, 1, 15)  # the working Saturday counts
    # Fri 31 Oct 15:00 + 10 working days: 31 Oct, 1, 5, 6, 7, 10-14 Nov, 17 Nov (2-4 Nov off).
    assert deadlines.resolution_due == msk(2025, 11, 17, 15)


@pytest.mark.parametrize("plan", PAID_AND_FREE_PLANS)
def test_complaint_processed_within_7_working_days(plan: str) -> None:
    deadlines = due(plan, "administrative", "complaint", msk(2025, 12, 30, 12))
    assert deadlines.policy.clock is Clock.WORKING_DAYS
    assert deadlines.policy.resolution == timedelta(days=7)
    # 30 Dec, then 12-16 and 19 Jan 2026: the New Year holidays are not counted.
    assert deadlines.resolution_due == msk(2026, 1, 20, 12)
    # The first reaction is that of every administrative ticket.
    assert deadlines.first_reaction_due == msk(2026, 1, 12, 12)


CATALOG_CODES = [
    (request_type.code, category.code)
    for request_type in load_catalog().types
    for category in request_type.categories
]


@pytest.mark.parametrize(("type_code", "category"), CATALOG_CODES)
def test_premium_first_reaction_within_3_hours_except_account(
    type_code: str, category: str
) -> None:
    policy = policies().sla_policy("premium", type_code, category)
    expected = timedelta(hours=24) if category == "account" else timedelta(hours=3)
    assert policy.first_reaction == expected
    # The clock and any resolution deadline stay those of the type and category.
    site = policies().sla_policy("site", type_code, category)
    assert (policy.clock, policy.resolution) == (site.clock, site.resolution)


def test_premium_technical_ticket_at_night_answered_within_3_hours() -> None:
    deadlines = due("premium", "technical", "system_error", msk(2025, 11, 2, 23))
    assert deadlines.first_reaction_due == msk(2025, 11, 3, 2)


def test_premium_refund_keeps_money_back_within_10_working_days() -> None:
    deadlines = due("premium", "administrative", "refund")
    assert deadlines.first_reaction_due == msk(2025, 10, 31, 18)
    assert deadlines.resolution_due == msk(2025, 11, 17, 15)
    assert deadlines.policy.rules == ("premium", "refund")


@pytest.mark.parametrize(("type_code", "category"), CATALOG_CODES)
def test_regulation_is_the_same_for_every_plan_but_premium(type_code: str, category: str) -> None:
    resolved = {policies().sla_policy(plan, type_code, category) for plan in PAID_AND_FREE_PLANS}
    assert len(resolved) == 1


def test_policies_agree_with_the_request_catalog() -> None:
    check_against_catalog(policies(), load_catalog())


# --- the support scope of the free plan ------------------------------------------------------


def scope(plan: str, type_code: str, category: str, *, system_error: bool, filed: int = 0):
    return check_scope(
        policies(),
        plan=plan,
        type_code=type_code,
        category=category,
        system_error=system_error,
        tickets_this_month=filed,
    )


def test_free_plan_support_limited_to_system_errors_and_paid_modifications() -> None:
    assert scope("free", "technical", "system_error", system_error=True).allowed
    refused = scope("free", "technical", "store_setup", system_error=False)
    assert refused.refusal is ScopeRefusal.CATEGORY_NOT_COVERED
    refused = scope("free", "administrative", "refund", system_error=False)
    assert refused.refusal is ScopeRefusal.TYPE_NOT_COVERED


@pytest.mark.parametrize("category", ["template", "email_template", "custom_export"])
def test_free_plan_may_order_modifications_for_a_fee(category: str) -> None:
    # "Если тариф не предусматривает бесплатных доработок ... доработки можно выполнить на
    # платной основе": the free plan may file them, and its allowance is 0, so each is paid.
    assert scope("free", "modification", category, system_error=False).allowed
    assert policies().quota.allowance_for("free") == 0


def test_a_refusal_can_name_what_the_free_plan_allows_from_policy_and_catalog() -> None:
    choices = scope_choices(policies(), load_catalog(), "free")
    assert choices == (
        ScopeChoice("technical", ("system_error",), whole_type=False),
        ScopeChoice(
            "modification", ("template", "email_template", "custom_export"), whole_type=True
        ),
    )
    # Computed, not written down: another scope gives other choices.
    narrow = Policies(
        plans=policies().plans,
        rules=policies().rules,
        business_hours=DEFAULT_BUSINESS_HOURS,
        scopes={"free": SupportScope(plan="free", system_errors_only=True)},
        quota=policies().quota,
    )
    assert scope_choices(narrow, load_catalog(), "free") == (
        ScopeChoice("technical", ("system_error",), whole_type=False),
    )
    assert all(choice.whole_type for choice in scope_choices(policies(), load_catalog(), "site"))


def test_a_scope_category_of_a_type_it_does_not_allow_stops_start_up() -> None:
    broken = Policies(
        plans=policies().plans,
        rules=policies().rules,
        business_hours=DEFAULT_BUSINESS_HOURS,
        scopes={
            "free": SupportScope(
                plan="free", types=frozenset({"technical"}), categories=frozenset({"refund"})
            )
        },
        quota=policies().quota,
    )
    with pytest.raises(PolicyFileError, match="category 'refund' is of type 'administrative'"):
        check_against_catalog(broken, load_catalog())


def test_free_plan_limited_to_5_tickets_a_calendar_month() -> None:
    fourth = scope("free", "technical", "system_error", system_error=True, filed=3)
    assert fourth.allowed and fourth.monthly_limit == 5 and fourth.left_this_month == 1
    fifth = scope("free", "technical", "system_error", system_error=True, filed=4)
    assert fifth.allowed and fifth.left_this_month == 0
    sixth = scope("free", "technical", "system_error", system_error=True, filed=5)
    assert not sixth.allowed
    assert sixth.refusal is ScopeRefusal.MONTHLY_LIMIT_REACHED
    assert sixth.left_this_month == 0


@pytest.mark.parametrize("plan", ["site", "combo", "premium"])
@pytest.mark.parametrize(("type_code", "category"), CATALOG_CODES)
def test_paid_plans_may_file_every_type_and_category(
    plan: str, type_code: str, category: str
) -> None:
    decision = scope(plan, type_code, category, system_error=False, filed=1000)
    assert decision.allowed and decision.monthly_limit is None


def test_unknown_plan_is_refused_loudly() -> None:
    with pytest.raises(UnknownPlan):
        policies().sla_policy("gold", "technical", "system_error")
    with pytest.raises(UnknownPlan):
        scope("gold", "technical", "system_error", system_error=True)


# --- precedence ----------------------------------------------------------------------------------


def table(*rules: SlaRule) -> Policies:
    base = policies()
    return Policies(
        plans=base.plans,
        rules=rules,
        business_hours=DEFAULT_BUSINESS_HOURS,
        scopes={},
        quota=base.quota,
    )


def test_each_field_comes_from_the_highest_ranked_rule_that_sets_it() -> None:
    rules = table(
        SlaRule("everything", clock=Clock.CONTINUOUS, first_reaction=timedelta(hours=24)),
        SlaRule("by_type", type="administrative", clock=Clock.WORKING_DAYS),
        SlaRule("by_category", category="refund", resolution=timedelta(days=10)),
        SlaRule(
            "by_type_and_category",
            type="administrative",
            category="refund",
            first_reaction=timedelta(hours=12),
        ),
        SlaRule("by_plan", plan="premium", first_reaction=timedelta(hours=3)),
    )
    site = rules.sla_policy("site", "administrative", "refund")
    assert (site.clock, site.first_reaction, site.resolution) == (
        Clock.WORKING_DAYS,
        timedelta(hours=12),
        timedelta(days=10),
    )
    assert site.rules == ("by_type_and_category", "by_category", "by_type")
    premium = rules.sla_policy("premium", "administrative", "refund")
    assert premium.first_reaction == timedelta(hours=3)  # a plan outranks category and type
    assert rules.sla_policy("site", "technical", "x").clock is Clock.CONTINUOUS


def test_except_categories_skip_a_rule() -> None:
    rules = table(
        SlaRule("everything", clock=Clock.CONTINUOUS, first_reaction=timedelta(hours=24)),
        SlaRule(
            "by_plan",
            plan="premium",
            except_categories=frozenset({"account"}),
            first_reaction=timedelta(hours=3),
        ),
    )
    assert rules.sla_policy("premium", "administrative", "account").first_reaction == timedelta(
        hours=24
    )


def test_a_ticket_no_rule_covers_has_no_policy() -> None:
    rules = table(
        SlaRule(
            "by_type", type="technical", clock=Clock.CONTINUOUS, first_reaction=timedelta(hours=24)
        )
    )
    with pytest.raises(NoSlaPolicy):
        rules.sla_policy("site", "administrative", "refund")
    with pytest.raises(PolicyFileError, match="administrative"):
        check_against_catalog(rules, load_catalog())


# --- policies.toml ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("24h", timedelta(hours=24)),
        ("10d", timedelta(days=10)),
        ("1d12h", timedelta(hours=36)),
        ("90m", timedelta(minutes=90)),
        ("2h30m", timedelta(hours=2, minutes=30)),
    ],
)
def test_durations_are_written_in_days_hours_and_minutes(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


@pytest.mark.parametrize("text", ["", "24", "h", "1.5h", "3h1d", "-3h", "24 hours"])
def test_a_malformed_duration_is_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)


def test_default_policy_file_carries_the_regulation_numbers() -> None:
    loaded = policies()
    assert loaded.plans == ("free", "site", "combo", "premium")
    assert loaded.business_hours == BusinessHours(opens=time(10), closes=time(19))
    assert loaded.source == DEFAULT_POLICIES


GOOD = DEFAULT_POLICIES.read_text(encoding="utf-8")


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        (
            GOOD.replace('first_reaction = "3h"', 'first_reaction = "3 hours"'),
            r"sla\.6 \(rule 'premium'\)\.first_reaction: .*invalid duration",
        ),
        (
            GOOD.replace('first_reaction = "3h"', "first_reaction = 3"),
            r"sla\.6 \(rule 'premium'\)\.first_reaction: .*string like",
        ),
        (
            GOOD.replace('first_reaction = "3h"', 'first_reaction = "0h"'),
            r"sla\.6 \(rule 'premium'\)\.first_reaction: .*longer than zero",
        ),
        (GOOD.replace('plan = "premium"', 'plan = "gold"'), r"sla\.6 \(rule 'premium'\)\.plan"),
        (
            GOOD.replace('clock = "continuous"', 'clock = "weekdays"', 1),
            r"sla\.0 \(rule 'technical'\)\.clock: Input should be",
        ),
        (GOOD.replace('rule = "modification"', 'rule = "technical"'), r"rule name already used"),
        (
            GOOD.replace('type = "modification"', 'type = "technical"'),
            r"same plan, type and category as rule 'technical'",
        ),
        (GOOD.replace("premium = 10", ""), r"quota\.allowance: missing plans: premium"),
        (GOOD.replace("site = 4", "site = -4"), r"quota\.allowance\.site"),
        (GOOD.replace('closes = "19:00"', 'closes = "09:00"'), r"business_hours: opens"),
        (GOOD.replace("[scope.free]", "[scope.gold]"), r"scope\.gold: unknown plan"),
        (
            GOOD.replace("monthly_tickets = 5", "monthly_tickets = 5\nmonthly = 5"),
            r"scope\.free\.monthly: Extra inputs",
        ),
        (
            GOOD.replace('plans = ["free", "site", "combo", "premium"]', ""),
            r"plans: Field required",
        ),
        (GOOD.replace('first_reaction = "3h"', ""), r"sla\.6 \(rule 'premium'\): a rule must set"),
        (GOOD + "\n[oops", r"not valid TOML"),
    ],
)
def test_a_bad_policy_file_stops_start_up_with_one_clear_line(
    tmp_path: Path, broken: str, message: str
) -> None:
    assert broken != GOOD
    path = tmp_path / "policies.toml"
    path.write_text(broken, encoding="utf-8")
    with pytest.raises(PolicyFileError, match=message) as caught:
        load_policies(path)
    assert str(caught.value).startswith(f"SLA policies {path}: ")
    assert "\n" not in str(caught.value)


def test_a_missing_policy_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(PolicyFileError, match="file not found"):
        load_policies(tmp_path / "absent.toml")


# --- describing deadlines -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("now", "deadline", "kind", "day", "hours", "end_of_day"),
    [
        (
            msk(2025, 11, 5, 12),
            msk(2025, 11, 5, 15),
            PhraseKind.WITHIN_HOURS,
            date(2025, 11, 5),
            3,
            False,
        ),
        (
            msk(2025, 11, 5, 12),
            msk(2025, 11, 5, 14, 1),
            PhraseKind.WITHIN_HOURS,
            date(2025, 11, 5),
            3,
            False,
        ),  # rounded up: never promise earlier than the deadline
        (
            msk(2025, 11, 5, 12),
            msk(2025, 11, 5, 12),
            PhraseKind.WITHIN_HOURS,
            date(2025, 11, 5),
            1,
            False,
        ),
        (
            msk(2025, 11, 5, 9),
            msk(2025, 11, 5, 19),
            PhraseKind.TODAY,
            date(2025, 11, 5),
            None,
            False,
        ),
        (
            msk(2025, 11, 5, 12),
            msk(2025, 11, 6, 12),
            PhraseKind.TOMORROW,
            date(2025, 11, 6),
            None,
            False,
        ),
        # 00:00 on Saturday reads "by the end of Friday"
        (msk(2025, 10, 31, 9), msk(2025, 11, 1), PhraseKind.TODAY, date(2025, 10, 31), None, True),
        (
            msk(2025, 10, 31, 15),
            msk(2025, 11, 5, 15),
            PhraseKind.WEEKDAY,
            date(2025, 11, 5),
            None,
            False,
        ),
        (
            msk(2025, 12, 30, 12),
            msk(2026, 1, 12, 12),
            PhraseKind.DATE,
            date(2026, 1, 12),
            None,
            False,
        ),
        (
            msk(2025, 11, 5, 16),
            msk(2025, 11, 5, 15),
            PhraseKind.OVERDUE,
            date(2025, 11, 5),
            None,
            False,
        ),
    ],
)
def test_describe_deadline_gives_the_bot_what_to_translate(
    now: datetime,
    deadline: datetime,
    kind: PhraseKind,
    day: date,
    hours: int | None,
    end_of_day: bool,
) -> None:
    phrase = describe_deadline(now, deadline, MOSCOW)
    assert phrase.kind is kind
    assert phrase.day == day and phrase.weekday == day.weekday()
    assert phrase.hours == hours
    assert phrase.end_of_day is end_of_day
    assert phrase.local == deadline and phrase.local.tzinfo is MOSCOW
    assert phrase.remaining == deadline - now


def test_describe_deadline_threshold_for_hours_is_configurable() -> None:
    phrase = describe_deadline(
        msk(2025, 11, 5, 10), msk(2025, 11, 5, 18), within_hours_limit=timedelta(hours=8)
    )
    assert (phrase.kind, phrase.hours) == (PhraseKind.WITHIN_HOURS, 8)


@settings(deadline=None)  # timing varies with machine load; correctness does not
@given(
    now=starts, ahead=st.timedeltas(min_value=timedelta(hours=-48), max_value=timedelta(days=30))
)
def test_describe_deadline_classifies_every_moment(now: datetime, ahead: timedelta) -> None:
    phrase = describe_deadline(now, now + ahead)
    assert (phrase.kind is PhraseKind.OVERDUE) == (ahead < timedelta(0))
    assert (phrase.hours is not None) == (phrase.kind is PhraseKind.WITHIN_HOURS)
    if phrase.kind is PhraseKind.WEEKDAY:
        assert 2 <= (phrase.day - local(now).date()).days <= 6
