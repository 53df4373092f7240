"""How much time an SLA clock counts between two instants: the inverse of
`services.sla.add_duration`, written here independently of it (day by day from the working
calendar) so that the property tests check the production code against something else."""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

from services.sla import DEFAULT_BUSINESS_HOURS, BusinessHours, Clock
from services.working_calendar import WorkingCalendar


def counted_interval(
    clock: Clock, day: date, calendar: WorkingCalendar, hours: BusinessHours
) -> tuple[datetime, datetime] | None:
    """The UTC range [opens, closes) the clock counts on the local `day`; None on a day off."""
    if not calendar.is_working_day(day):
        return None
    if clock is Clock.WORKING_DAYS:
        opens = datetime.combine(day, time.min, tzinfo=calendar.tz)
        closes = datetime.combine(day + timedelta(days=1), time.min, tzinfo=calendar.tz)
    else:
        opens = datetime.combine(day, hours.opens, tzinfo=calendar.tz)
        closes = datetime.combine(day, hours.closes, tzinfo=calendar.tz)
    return opens.astimezone(UTC), closes.astimezone(UTC)


def counted_between(
    clock: Clock,
    start: datetime,
    end: datetime,
    calendar: WorkingCalendar,
    hours: BusinessHours = DEFAULT_BUSINESS_HOURS,
) -> timedelta:
    """Time counted in [start, end); zero when end <= start."""
    if end <= start:
        return timedelta(0)
    if clock is Clock.CONTINUOUS:
        return end - start
    total = timedelta(0)
    day = start.astimezone(calendar.tz).date()
    while day <= end.astimezone(calendar.tz).date():
        interval = counted_interval(clock, day, calendar, hours)
        if interval is not None:
            overlap = min(end, interval[1]) - max(start, interval[0])
            total += max(overlap, timedelta(0))
        day += timedelta(days=1)
    return total
