"""The Russian working calendar, checked against the production calendars of 2025-2027 as the
`holidays` package (0.109) encodes the government decrees."""

from __future__ import annotations

from datetime import date, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import holidays
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.working_calendar import MOSCOW, CalendarError, WorkingCalendar


@cache
def russian() -> WorkingCalendar:
    # Preloaded, so that no example pays for computing a year.
    return WorkingCalendar.russian(years=range(2014, 2031))


@pytest.mark.parametrize(
    ("day", "working", "why"),
    [
        # 2025: decree of 4 October 2024 (consultant.ru cons_doc_LAW_481586)
        (date(2024, 12, 31), False, "2024: day off moved from Sunday 7 January 2024"),
        (date(2025, 1, 1), False, "New Year holidays, 1-8 January"),
        (date(2025, 1, 6), False, "New Year holidays, 1-8 January"),
        (date(2025, 1, 7), False, "Christmas"),
        (date(2025, 1, 8), False, "New Year holidays, 1-8 January"),
        (date(2025, 1, 9), True, "the first working day of 2025"),
        (date(2025, 2, 24), True, "Sunday 23 February 2025 was moved to 8 May, not to Monday"),
        (date(2025, 3, 10), True, "Saturday 8 March 2025 was moved to 13 June, not to Monday"),
        (date(2025, 4, 30), True, "an ordinary Wednesday"),
        (date(2025, 5, 1), False, "Spring and Labour Day"),
        (date(2025, 5, 2), False, "day off moved from Saturday 4 January"),
        (date(2025, 5, 5), True, "a working Monday between the May holidays"),
        (date(2025, 5, 7), True, "a working Wednesday between the May holidays"),
        (date(2025, 5, 8), False, "day off moved from Sunday 23 February"),
        (date(2025, 5, 9), False, "Victory Day"),
        (date(2025, 6, 12), False, "Russia Day"),
        (date(2025, 6, 13), False, "day off moved from Saturday 8 March"),
        (date(2025, 11, 1), True, "working Saturday, its day off moved to 3 November"),
        (date(2025, 11, 2), False, "an ordinary Sunday"),
        (date(2025, 11, 3), False, "day off moved from Saturday 1 November"),
        (date(2025, 11, 4), False, "Unity Day"),
        (date(2025, 11, 5), True, "an ordinary Wednesday"),
        (date(2025, 12, 30), True, "the last working day of 2025"),
        (date(2025, 12, 31), False, "day off moved from Sunday 5 January"),
        # 2026: decree of 24 September 2025 (cons_doc_LAW_515170) and the Labour Code, art. 112
        (date(2026, 1, 1), False, "New Year holidays"),
        (date(2026, 1, 8), False, "New Year holidays"),
        (date(2026, 1, 9), False, "day off moved from Saturday 3 January"),
        (date(2026, 1, 12), True, "the first working day of 2026"),
        (date(2026, 2, 23), False, "Defender of the Fatherland Day, a Monday"),
        (date(2026, 3, 9), False, "Sunday 8 March 2026 moves to Monday (observed)"),
        (date(2026, 5, 1), False, "Spring and Labour Day"),
        (date(2026, 5, 4), True, "no May bridge in 2026"),
        (date(2026, 5, 11), False, "Saturday 9 May 2026 moves to Monday (observed)"),
        (date(2026, 6, 12), False, "Russia Day"),
        (date(2026, 11, 4), False, "Unity Day"),
        (date(2026, 12, 31), False, "day off moved from Sunday 4 January"),
        # 2027 as holidays 0.109 has it
        (date(2027, 2, 20), True, "working Saturday, its day off moved to 22 February"),
        (date(2027, 2, 22), False, "day off moved from Saturday 20 February"),
        (date(2027, 11, 5), False, "day off moved from Saturday 2 January"),
        # leap day
        (date(2028, 2, 29), True, "an ordinary Tuesday"),
    ],
)
def test_russian_production_calendar(day: date, working: bool, why: str) -> None:
    assert russian().is_working_day(day) is working, why


def test_2025_and_2026_have_247_working_days_each() -> None:
    # The official production calendars: 247 working days and 118 days off in each year.
    assert len(russian().days_off(2025)) == 118
    assert len(russian().days_off(2026)) == 118
    assert russian().working_days_between(date(2025, 1, 1), date(2026, 1, 1)) == 247


def test_2026_has_no_working_saturday() -> None:
    weekends = [date(2026, 1, 1) + timedelta(days=n) for n in range(365)]
    assert not [d for d in weekends if d.weekday() >= 5 and russian().is_working_day(d)]


def test_2025_has_one_working_saturday() -> None:
    weekends = [date(2025, 1, 1) + timedelta(days=n) for n in range(365)]
    assert [d for d in weekends if d.weekday() >= 5 and russian().is_working_day(d)] == [
        date(2025, 11, 1)
    ]


@settings(deadline=None)  # timing varies with machine load; correctness does not
@given(st.dates(min_value=date(2015, 1, 1), max_value=date(2030, 12, 31)))
def test_calendar_agrees_with_holidays_package(day: date) -> None:
    assert russian().is_working_day(day) is holidays.RU().is_working_day(day)


def test_next_working_day_skips_new_year_holidays() -> None:
    assert russian().next_working_day(date(2025, 12, 30)) == date(2026, 1, 12)
    assert russian().previous_working_day(date(2026, 1, 12)) == date(2025, 12, 30)


def test_next_working_day_after_friday_before_working_saturday() -> None:
    assert russian().next_working_day(date(2025, 10, 31)) == date(2025, 11, 1)
    assert russian().next_working_day(date(2025, 11, 1)) == date(2025, 11, 5)


def test_working_day_on_or_after_keeps_a_working_day() -> None:
    assert russian().working_day_on_or_after(date(2025, 5, 7)) == date(2025, 5, 7)
    assert russian().working_day_on_or_after(date(2025, 5, 8)) == date(2025, 5, 12)


def test_add_working_days_over_may_holidays() -> None:
    # 30 April 2025 is a working Wednesday; then 1-4 May off, 5-7 working, 8-11 off.
    assert russian().add_working_days(date(2025, 4, 30), 0) == date(2025, 4, 30)
    assert russian().add_working_days(date(2025, 4, 30), 1) == date(2025, 5, 5)
    assert russian().add_working_days(date(2025, 4, 30), 4) == date(2025, 5, 12)
    with pytest.raises(ValueError):
        russian().add_working_days(date(2025, 4, 30), -1)


def test_working_days_between_is_half_open() -> None:
    # 1 Nov (working Saturday), 2-4 Nov off, 5-7 Nov working.
    assert russian().working_days_between(date(2025, 11, 1), date(2025, 11, 8)) == 4
    assert russian().working_days_between(date(2025, 11, 8), date(2025, 11, 1)) == 0


@settings(deadline=None)  # timing varies with machine load; correctness does not
@given(st.dates(min_value=date(2016, 1, 1), max_value=date(2029, 12, 31)))
def test_next_and_previous_working_day_are_working_and_adjacent(day: date) -> None:
    calendar = russian()
    following = calendar.next_working_day(day)
    preceding = calendar.previous_working_day(day)
    assert preceding < day < following
    assert calendar.is_working_day(following) and calendar.is_working_day(preceding)
    assert calendar.working_days_between(day + timedelta(days=1), following) == 0
    assert calendar.working_days_between(preceding + timedelta(days=1), day) == 0


def test_days_off_are_computed_once_per_year() -> None:
    calendar = WorkingCalendar.russian(years=[2025])
    assert calendar.days_off(2025) is calendar.days_off(2025)


def test_extra_days_patch_years_without_a_decree() -> None:
    # holidays 0.109 knows no decree for 2028: Saturday 4 November 2028 is not moved to Monday.
    assert russian().is_working_day(date(2028, 11, 6))
    patched = WorkingCalendar.russian(
        extra_days_off=[date(2028, 11, 6)], extra_working_days=[date(2028, 11, 11)]
    )
    assert not patched.is_working_day(date(2028, 11, 6))
    assert patched.is_working_day(date(2028, 11, 11))


def test_a_day_cannot_be_both_off_and_working() -> None:
    with pytest.raises(CalendarError):
        WorkingCalendar.russian(
            extra_days_off=[date(2028, 11, 6)], extra_working_days=[date(2028, 11, 6)]
        )


def test_non_expanding_holidays_refuse_unloaded_years() -> None:
    calendar = WorkingCalendar(holidays.RU(years=2025, expand=False))
    assert calendar.is_working_day(date(2025, 11, 1))
    with pytest.raises(CalendarError, match="2026"):
        calendar.is_working_day(date(2026, 1, 2))


def test_holidays_without_observed_days_are_refused() -> None:
    # observed=False would silently drop 9 March and 11 May 2026.
    with pytest.raises(CalendarError, match="observed"):
        WorkingCalendar(holidays.RU(observed=False))


def test_days_are_moscow_days() -> None:
    assert russian().tz == MOSCOW == ZoneInfo("Europe/Moscow")
