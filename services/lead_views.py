"""What a lead watches (issue 9, point 9): the tickets that need a lead's eye, and the figures of
the day, the week and the month.

``needing_attention`` (``/queue``): tickets in the queue and still open (registered, open or
waiting; a pending one is not in the queue yet, so nobody could take it) that nobody owns, or that
are at risk: no first reaction yet, and the first-reaction deadline passed or within the SLA
watch's warning stage (80 % of the window registration → deadline gone, services/sla_watch.py).
Sorted by the first-reaction deadline, the earliest first; a page at a time.

``lead_stats`` (``/stats``): tickets registered today and this week (Moscow time, the
regulation's clock: "по московскому времени"; a week starts on Monday), the median first
reaction (``first_reaction_at`` − ``registered_at``: the regulation counts from the moment the
request is registered; tickets without a first reaction are left out), the breaches (a first
reaction after the deadline, or none yet in an open ticket whose deadline passed), and the
modifications of this calendar month from the ledger, free and paid (services/modifications.py).

Plain functions over an AsyncSession and an explicit ``now``; the counting is done by the
database, only the median is taken in Python, from the week's reactions.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import ColumnElement, Float, Integer, and_, case, cast, func, literal, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.db.models import Modification, Store, Ticket
from services.quota import ChargeKind, quota_period
from services.sla_watch import WARN_SHARE, WATCHED
from services.working_calendar import MOSCOW

# Ten lines of at most ~330 characters each and a header stay well within Telegram's 4,096.
PAGE_SIZE = 10
# A line of /queue shows at most this much of a free text (longer: cut, with "…").
SUBJECT_CHARS = 60
STORE_CHARS = 40
OWNER_CHARS = 40


@dataclass(frozen=True, slots=True)
class QueueItem:
    """One line of /queue. Codes, not labels: the handler names them in the lead's language."""

    number: str  # the queue's
    store: str | None  # the store's name (its domain if unnamed); None: no store linked
    request_type: str
    category: str
    subject: str  # shortened to SUBJECT_CHARS
    owner: str | None  # the queue user; None: unassigned
    first_reaction_due: datetime | None
    reacted: bool  # the first reaction came (the ticket is listed as unassigned)
    at_risk: bool  # no first reaction, and the deadline passed or is near


@dataclass(frozen=True, slots=True)
class QueuePage:
    items: tuple[QueueItem, ...]
    total: int  # tickets needing attention in all
    page: int  # 0-based, within [0, pages)
    pages: int  # at least 1


@dataclass(frozen=True, slots=True)
class PeriodStats:
    tickets: int  # registered in the queue in the period
    reacted: int  # of them, with a first reaction
    median_first_reaction: timedelta | None  # None: no first reaction yet
    breaches: int


@dataclass(frozen=True, slots=True)
class LeadStats:
    today: PeriodStats
    week: PeriodStats
    free_modifications: int  # this calendar month
    paid_modifications: int
    day_start: datetime  # UTC; 00:00 Moscow time today
    week_start: datetime  # UTC; 00:00 Moscow time on this week's Monday
    month_start: datetime  # UTC; 00:00 Moscow time on the 1st


def shorten(text: str, limit: int) -> str:
    """``text`` on one line, at most ``limit`` characters (cut with "…")."""
    flat = " ".join(text.split())
    return flat if len(flat) <= limit else flat[: limit - 1].rstrip() + "…"


def _epoch(session: AsyncSession, column: Any) -> ColumnElement[Any]:
    """Seconds since 1970 of a UTC datetime column, in this session's SQL dialect."""
    if session.get_bind().dialect.name == "postgresql":
        return func.extract("epoch", column)
    # Whole seconds exactly, plus the milliseconds ("%f" is SS.SSS): julianday()'s float is off
    # by tens of microseconds, enough to miss the 80 % moment itself.
    whole = cast(func.strftime("%s", column), Integer)
    fraction = cast(func.strftime("%f", column), Float) - cast(func.strftime("%S", column), Float)
    return whole + fraction


def _at_risk(session: AsyncSession, now: datetime) -> ColumnElement[bool]:
    """No first reaction, and ``now`` at or past the warning moment of the SLA watch:
    now − registered ≥ WARN_SHARE × (due − registered), which also holds past the deadline."""
    registered = _epoch(session, Ticket.registered_at)
    due = _epoch(session, Ticket.first_reaction_due)
    return and_(
        Ticket.first_reaction_at.is_(None),
        Ticket.first_reaction_due.is_not(None),
        Ticket.registered_at.is_not(None),
        or_(
            Ticket.first_reaction_due <= now,
            literal(now.timestamp()) - registered >= (due - registered) * WARN_SHARE,
        ),
    )


def _unassigned() -> ColumnElement[bool]:
    return or_(Ticket.queue_owner.is_(None), Ticket.queue_owner == "")


async def needing_attention(
    session: AsyncSession, now: datetime, *, page: int = 0, page_size: int = PAGE_SIZE
) -> QueuePage:
    """The ``page`` (0-based; clamped, so a stale button shows the last page) of the open tickets
    that are unassigned or at risk, by first-reaction deadline (tickets without one last)."""
    at_risk = _at_risk(session, now)
    wanted = and_(
        Ticket.status.in_(WATCHED),
        Ticket.queue_ticket_id.is_not(None),
        or_(_unassigned(), at_risk),
    )
    total = int(await session.scalar(select(func.count()).select_from(Ticket).where(wanted)) or 0)
    pages = max(1, -(-total // page_size))
    page = min(max(page, 0), pages - 1)
    rows = (
        await session.execute(
            select(
                Ticket.queue_ticket_id,
                Store.name,
                Store.domain,
                Ticket.request_type,
                Ticket.category,
                Ticket.subject,
                Ticket.queue_owner,
                Ticket.first_reaction_due,
                Ticket.first_reaction_at.is_not(None),
                case((at_risk, True), else_=False),
            )
            .outerjoin(Store, Store.id == Ticket.store_id)
            .where(wanted)
            .order_by(Ticket.first_reaction_due.is_(None), Ticket.first_reaction_due, Ticket.id)
            .offset(page * page_size)
            .limit(page_size)
        )
    ).all()
    items = tuple(
        QueueItem(
            number=str(number),
            store=shorten(name or domain, STORE_CHARS) if (name or domain) else None,
            request_type=request_type,
            category=category,
            subject=shorten(subject, SUBJECT_CHARS),
            owner=shorten(owner, OWNER_CHARS) if owner else None,
            first_reaction_due=due,
            reacted=bool(reacted),
            at_risk=bool(risky),
        )
        for (
            number,
            name,
            domain,
            request_type,
            category,
            subject,
            owner,
            due,
            reacted,
            risky,
        ) in rows
    )
    return QueuePage(items=items, total=total, page=page, pages=pages)


def period_starts(now: datetime, tz: ZoneInfo = MOSCOW) -> tuple[datetime, datetime, datetime]:
    """00:00 in ``tz`` today, on this week's Monday and on the 1st of the month, as UTC."""
    local = now.astimezone(tz)
    today = datetime.combine(local.date(), time.min, tzinfo=tz)
    monday = today - timedelta(days=local.weekday())
    month_start, _end = quota_period(now, tz)
    # combine/subtract on the local date, then convert: a day is 24 h in Moscow (no DST since
    # 2014), and the zone's rules are applied by astimezone either way.
    return today.astimezone(UTC), monday.astimezone(UTC), month_start


def _breached(now: datetime) -> ColumnElement[bool]:
    """The first reaction came after the deadline, or none came in an open ticket whose
    deadline passed (a ticket its requester closed unanswered is no breach)."""
    return or_(
        and_(
            Ticket.first_reaction_at.is_not(None),
            Ticket.first_reaction_at > Ticket.first_reaction_due,
        ),
        and_(
            Ticket.first_reaction_at.is_(None),
            Ticket.first_reaction_due <= now,
            Ticket.status.in_(WATCHED),
        ),
    )


def _median(durations: list[timedelta]) -> timedelta | None:
    if not durations:
        return None
    seconds = statistics.median(d.total_seconds() for d in durations)
    return timedelta(seconds=round(seconds))


async def lead_stats(session: AsyncSession, now: datetime, tz: ZoneInfo = MOSCOW) -> LeadStats:
    day_start, week_start, month_start = period_starts(now, tz)
    in_week = and_(
        Ticket.registered_at.is_not(None),
        Ticket.registered_at >= week_start,
        Ticket.registered_at <= now,
    )
    today = Ticket.registered_at >= day_start
    breached = _breached(now)

    def _count(*conditions: ColumnElement[bool]) -> Any:
        return func.coalesce(func.sum(case((and_(*conditions), 1), else_=0)), 0)

    counts = (
        await session.execute(
            select(
                func.count(),
                _count(today),
                _count(breached),
                _count(breached, today),
            )
            .select_from(Ticket)
            .where(in_week)
        )
    ).one()
    week_tickets, day_tickets, week_breaches, day_breaches = (int(n) for n in counts)

    # The week's reactions, bounded by the week's tickets: the median is taken here, the same
    # way on both databases (SQLite has no percentile function).
    reactions = (
        await session.execute(
            select(Ticket.registered_at, Ticket.first_reaction_at).where(
                in_week, Ticket.first_reaction_at.is_not(None)
            )
        )
    ).all()
    week_durations: list[timedelta] = []
    day_durations: list[timedelta] = []
    for registered_at, reacted_at in reactions:
        if registered_at is None or reacted_at is None:
            continue  # not selected; for the type checker
        duration = max(reacted_at - registered_at, timedelta(0))
        week_durations.append(duration)
        if registered_at >= day_start:
            day_durations.append(duration)

    charges = dict(
        (
            await session.execute(
                select(Modification.charge, func.count())
                .where(Modification.period_start == month_start, Modification.done_at <= now)
                .group_by(Modification.charge)
            )
        ).all()
    )
    return LeadStats(
        today=PeriodStats(
            tickets=day_tickets,
            reacted=len(day_durations),
            median_first_reaction=_median(day_durations),
            breaches=day_breaches,
        ),
        week=PeriodStats(
            tickets=week_tickets,
            reacted=len(week_durations),
            median_first_reaction=_median(week_durations),
            breaches=week_breaches,
        ),
        free_modifications=int(charges.get(ChargeKind.FREE.value, 0)),
        paid_modifications=int(charges.get(ChargeKind.PAID.value, 0)),
        day_start=day_start,
        week_start=week_start,
        month_start=month_start,
    )
