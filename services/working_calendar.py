"""The Russian working calendar: which days count as working days, in Moscow time.

The regulation counts administrative deadlines in working days: "Время ожидания обращения в
выходные и нерабочие дни не учитывается". A day off is a Saturday or a Sunday, a public holiday,
or a day off moved by a government decree (e.g. 2025-11-03, moved from the working Saturday
2025-11-01); a working Saturday or Sunday is a weekend day a decree made a working day.

The facts come from the `holidays` package (`holidays.RU`), which encodes the decrees year by year:

* public holidays and the days off moved to by a decree are keys of the holidays object
  (``date(2025, 5, 2) in holidays.RU()``);
* the weekend days made working are in its ``weekend_workdays`` set (``date(2025, 11, 1)``), filled
  while a year is populated;
* days off moved from a holiday that falls on a weekend (2026-03-09 for Sunday 8 March) are
  "observed" holidays: they exist only with ``observed=True``, the default.

So a year is decided by ``holidays.is_working_day``; this module computes each year once into a
frozen set of days off, so later look-ups neither mutate the holidays object nor repeat its work.
Years the package has no decree for (after 2027 in holidays 0.109) have public holidays but no
transfers; ``extra_days_off`` / ``extra_working_days`` patch a year until the package catches up.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from zoneinfo import ZoneInfo

import holidays as holidays_package
from holidays import HolidayBase

MOSCOW = ZoneInfo("Europe/Moscow")

# A calendar with no working day in this many days is broken, not slow: stop instead of looping.
_SEARCH_LIMIT_DAYS = 366 * 2


class CalendarError(Exception):
    """The working calendar cannot answer for a date (a year not loaded, no working day)."""


class WorkingCalendar:
    """Working days of one country, computed once per year; `tz` is the zone of its days.

    ``WorkingCalendar.russian()`` is the production calendar. Build a custom one from any
    ``holidays`` object (``WorkingCalendar(holidays.RU(years=2025))``); with ``expand=False`` the
    object answers only for the years it was built with, and other years raise `CalendarError`
    instead of silently counting every weekday as working.
    """

    def __init__(
        self,
        holidays: HolidayBase,
        *,
        tz: ZoneInfo = MOSCOW,
        extra_days_off: Iterable[date] = (),
        extra_working_days: Iterable[date] = (),
    ) -> None:
        if not getattr(holidays, "observed", True):
            # Without observed days 2026-03-09 and 2026-05-11 would be working days.
            raise CalendarError(
                "the holidays object was built with observed=False: it lacks the days off "
                "moved from holidays that fall on a weekend"
            )
        self.tz = tz
        self._holidays = holidays
        self._extra_days_off = frozenset(extra_days_off)
        self._extra_working_days = frozenset(extra_working_days)
        both = self._extra_days_off & self._extra_working_days
        if both:
            listed = ", ".join(sorted(day.isoformat() for day in both))
            raise CalendarError(f"days both off and working: {listed}")
        self._days_off_by_year: dict[int, frozenset[date]] = {}

    @classmethod
    def russian(
        cls,
        years: Iterable[int] | None = None,
        *,
        extra_days_off: Iterable[date] = (),
        extra_working_days: Iterable[date] = (),
    ) -> WorkingCalendar:
        """The Russian production calendar in Moscow time; `years` only preloads them."""
        calendar = cls(
            holidays_package.country_holidays("RU"),
            tz=MOSCOW,
            extra_days_off=extra_days_off,
            extra_working_days=extra_working_days,
        )
        for year in years or ():
            calendar.days_off(year)
        return calendar

    def days_off(self, year: int) -> frozenset[date]:
        """Every non-working day of `year`: weekends, holidays and moved days off."""
        cached = self._days_off_by_year.get(year)
        if cached is None:
            cached = self._compute_days_off(year)
            self._days_off_by_year[year] = cached
        return cached

    def is_working_day(self, day: date) -> bool:
        return day not in self.days_off(day.year)

    def next_working_day(self, day: date) -> date:
        """The first working day strictly after `day`."""
        return self.working_day_on_or_after(day + timedelta(days=1))

    def previous_working_day(self, day: date) -> date:
        """The last working day strictly before `day`."""
        candidate = day - timedelta(days=1)
        for _ in range(_SEARCH_LIMIT_DAYS):
            if self.is_working_day(candidate):
                return candidate
            candidate -= timedelta(days=1)
        raise CalendarError(f"no working day in the {_SEARCH_LIMIT_DAYS} days before {day}")

    def working_day_on_or_after(self, day: date) -> date:
        """`day` itself if it is a working day, else the next working day."""
        candidate = day
        for _ in range(_SEARCH_LIMIT_DAYS):
            if self.is_working_day(candidate):
                return candidate
            candidate += timedelta(days=1)
        raise CalendarError(f"no working day in the {_SEARCH_LIMIT_DAYS} days from {day}")

    def add_working_days(self, day: date, count: int) -> date:
        """The `count`-th working day after `day` (``count=0``: `day` or the next working day)."""
        if count < 0:
            raise ValueError("count must not be negative")
        result = self.working_day_on_or_after(day)
        for _ in range(count):
            result = self.next_working_day(result)
        return result

    def working_days_between(self, start: date, end: date) -> int:
        """How many working days lie in the half-open range [start, end)."""
        if end <= start:
            return 0
        return sum(
            1
            for offset in range((end - start).days)
            if self.is_working_day(start + timedelta(days=offset))
        )

    def _compute_days_off(self, year: int) -> frozenset[date]:
        self._ensure_loaded(year)
        first = date(year, 1, 1)
        days = (date(year + 1, 1, 1) - first).days
        days_off = {
            day
            for day in (first + timedelta(days=offset) for offset in range(days))
            if not self._holidays.is_working_day(day)
        }
        days_off |= {day for day in self._extra_days_off if day.year == year}
        days_off -= self._extra_working_days
        return frozenset(days_off)

    def _ensure_loaded(self, year: int) -> None:
        # A decree of one year may make a weekend day of a neighbouring year a working day, and
        # `weekend_workdays` only learns it when that year is populated: load both neighbours.
        if self._holidays.expand:
            for neighbour in (year - 1, year, year + 1):
                if neighbour not in self._holidays.years:
                    # Membership is the public way to make an expanding object populate a year.
                    _ = date(neighbour, 1, 1) in self._holidays
        if year not in self._holidays.years:
            raise CalendarError(
                f"the holidays object has no data for {year} (built with expand=False)"
            )
