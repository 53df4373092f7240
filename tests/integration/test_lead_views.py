"""A lead's views (issue 9, point 9) on SQLite and PostgreSQL with a controllable `now`:
/queue lists the open tickets nobody owns or at risk of missing their first-reaction deadline
(passed, or 80 % of the window gone, as the SLA watch warns), sorted by deadline, page by page;
/stats counts the tickets registered today and this week (Moscow time, weeks from Monday), the
median first reaction, the breaches, and this month's free and paid modifications, leaving last
month out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from itertools import count

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import lead_views
from services.db.models import Merchant, Modification, Store, Ticket, TicketStatus
from services.quota import quota_period

# Wednesday 25 November 2026, 12:00 Moscow time (09:00 UTC).
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
H = timedelta(hours=1)
_numbers = count(100)


async def _setup(session: AsyncSession) -> tuple[int, int]:
    merchant = Merchant(telegram_id=7_000_000_900, full_name="Анна")
    store = Store(domain="lavka.example.com", name="Лавка", plan="site")
    session.add_all([merchant, store])
    await session.flush()
    return merchant.id, store.id


def _ticket(
    ids: tuple[int, int],
    *,
    registered: datetime | None,
    due: datetime | None,
    owner: str | None = None,
    reacted: datetime | None = None,
    status: TicketStatus = TicketStatus.OPEN,
    subject: str = "Корзина не работает",
    store: bool = True,
) -> Ticket:
    number = next(_numbers)
    merchant_id, store_id = ids
    return Ticket(
        reference=f"ref-{number}",
        merchant_id=merchant_id,
        store_id=store_id if store else None,
        queue_name="builtin",
        queue_ticket_id=str(number) if registered is not None else None,
        status=status,
        request_type="technical",
        category="system_error",
        subject=subject,
        body="…",
        created_at=registered or NOW,
        registered_at=registered,
        first_reaction_due=due,
        queue_owner=owner,
        first_reaction_at=reacted,
    )


async def _add(sessionmaker: async_sessionmaker[AsyncSession], *rows: object) -> None:
    async with sessionmaker() as session:
        session.add_all(rows)
        await session.commit()


async def _scenario(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> tuple[dict[str, Ticket], int]:
    async with sessionmaker() as session:
        ids = await _setup(session)
        await session.commit()
    t = {
        # Unassigned, a fresh 24-hour window: listed (nobody owns it), not at risk.
        "fresh_unassigned": _ticket(ids, registered=NOW - 2 * H, due=NOW + 22 * H),
        # Owned, 20 of 24 hours gone (past 80 %), no reaction: at risk.
        "near": _ticket(ids, registered=NOW - 20 * H, due=NOW + 4 * H, owner="ivanov"),
        # Owned, deadline an hour ago, no reaction: at risk, a breach.
        "overdue": _ticket(ids, registered=NOW - 5 * H, due=NOW - H, owner="ivanov"),
        # Owned and answered: not listed.
        "answered": _ticket(
            ids, registered=NOW - 3 * H, due=NOW + 21 * H, owner="ivanov", reacted=NOW - 2 * H
        ),
        # Owned, 1 of 3 hours gone: not listed.
        "owned_early": _ticket(ids, registered=NOW - H, due=NOW + 2 * H, owner="petrov"),
        # Unassigned, answered after its deadline (yesterday): listed, a breach.
        "late_unassigned": _ticket(
            ids, registered=NOW - 30 * H, due=NOW - 6 * H, reacted=NOW - 5 * H
        ),
        # Resolved, unassigned, answered in 30 minutes on Monday: not listed, counted this week.
        "resolved": _ticket(
            ids,
            registered=NOW - 50 * H,
            due=NOW - 26 * H,
            reacted=NOW - 49.5 * H,
            status=TicketStatus.RESOLVED,
        ),
        # Not in the queue yet: not listed, not counted.
        "pending": _ticket(ids, registered=None, due=None, status=TicketStatus.PENDING),
        # Waiting since last week, unassigned, never answered: listed first, not this week's.
        "last_week": _ticket(
            ids,
            registered=datetime(2026, 11, 20, 9, 0, tzinfo=UTC),
            due=datetime(2026, 11, 21, 9, 0, tzinfo=UTC),
            status=TicketStatus.WAITING,
            store=False,
        ),
        # Last month, answered late: counted nowhere this week.
        "last_month": _ticket(
            ids,
            registered=datetime(2026, 10, 30, 9, 0, tzinfo=UTC),
            due=datetime(2026, 10, 30, 12, 0, tzinfo=UTC),
            reacted=datetime(2026, 10, 31, 9, 0, tzinfo=UTC),
            owner="ivanov",
            status=TicketStatus.RESOLVED,
        ),
    }
    await _add(sessionmaker, *t.values())
    return t, ids[1]


def _modification(store_id: int, done_at: datetime, charge: str) -> Modification:
    return Modification(
        store_id=store_id,
        minutes=10,
        specialist="ivanov",
        done_at=done_at,
        period_start=quota_period(done_at)[0],
        charge=charge,
        amount=0 if charge == "free" else 500,
    )


async def test_queue_lists_unassigned_and_at_risk_open_tickets_by_deadline(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    t, _store_id = await _scenario(sessionmaker)
    async with sessionmaker() as session:
        page = await lead_views.needing_attention(session, NOW)
    numbers = [item.number for item in page.items]
    expected = ["last_week", "late_unassigned", "overdue", "near", "fresh_unassigned"]
    assert numbers == [t[name].queue_ticket_id for name in expected]
    assert (page.total, page.page, page.pages) == (5, 0, 1)
    by_number = {item.number: item for item in page.items}
    last_week = by_number[str(t["last_week"].queue_ticket_id)]
    assert last_week.store is None and last_week.owner is None and last_week.at_risk
    near = by_number[str(t["near"].queue_ticket_id)]
    assert near.owner == "ivanov" and near.at_risk and not near.reacted
    assert near.store == "Лавка" and near.category == "system_error"
    assert near.first_reaction_due == NOW + 4 * H
    late = by_number[str(t["late_unassigned"].queue_ticket_id)]
    assert late.reacted and not late.at_risk and late.owner is None
    fresh = by_number[str(t["fresh_unassigned"].queue_ticket_id)]
    assert not fresh.at_risk and not fresh.reacted


async def test_queue_at_risk_begins_at_80_percent_of_the_window(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        ids = await _setup(session)
        await session.commit()
    owned = _ticket(ids, registered=NOW - 8 * H, due=NOW + 2 * H, owner="ivanov")  # 80 % now
    await _add(sessionmaker, owned)
    async with sessionmaker() as session:
        assert (await lead_views.needing_attention(session, NOW - timedelta(minutes=1))).total == 0
        at_80 = await lead_views.needing_attention(session, NOW)
    assert [item.number for item in at_80.items] == [owned.queue_ticket_id]
    assert at_80.items[0].at_risk


async def test_queue_pages_in_deadline_order_and_clamps_a_stale_page(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        ids = await _setup(session)
        await session.commit()
    rows = [
        _ticket(ids, registered=NOW - H, due=NOW + (25 - i) * H, subject="Очень " * 30)
        for i in range(25)
    ]
    await _add(sessionmaker, *rows)
    expected = [r.queue_ticket_id for r in sorted(rows, key=lambda r: r.first_reaction_due)]
    seen = []
    async with sessionmaker() as session:
        for page in range(3):
            got = await lead_views.needing_attention(session, NOW, page=page)
            assert (got.total, got.page, got.pages) == (25, page, 3)
            seen += [item.number for item in got.items]
            assert all(len(item.subject) <= lead_views.SUBJECT_CHARS for item in got.items)
        stale = await lead_views.needing_attention(session, NOW, page=99)
        negative = await lead_views.needing_attention(session, NOW, page=-3)
    assert seen == expected
    assert stale.page == 2 and len(stale.items) == 5
    assert negative.page == 0 and negative.items[0].number == expected[0]


async def test_queue_is_empty_when_everything_is_owned_and_on_time(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        ids = await _setup(session)
        await session.commit()
    await _add(sessionmaker, _ticket(ids, registered=NOW - H, due=NOW + 23 * H, owner="ivanov"))
    async with sessionmaker() as session:
        page = await lead_views.needing_attention(session, NOW)
    assert (page.items, page.total, page.pages) == ((), 0, 1)


async def test_stats_count_today_this_week_median_breaches_and_this_months_modifications(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    _t, store_id = await _scenario(sessionmaker)
    await _add(
        sessionmaker,
        _modification(store_id, NOW - 24 * H, "free"),
        _modification(store_id, datetime(2026, 11, 1, 8, 0, tzinfo=UTC), "free"),
        _modification(store_id, NOW - H, "paid"),
        # 31 October, 23:00 Moscow time: last month's, not counted.
        _modification(store_id, datetime(2026, 10, 31, 20, 0, tzinfo=UTC), "free"),
    )
    async with sessionmaker() as session:
        stats = await lead_views.lead_stats(session, NOW)
    # Today (from 00:00 Moscow, 21:00 UTC the day before): fresh, overdue, answered, owned_early.
    assert stats.today == lead_views.PeriodStats(
        tickets=4, reacted=1, median_first_reaction=H, breaches=1
    )
    # This week (from Monday 00:00 Moscow): also near, late_unassigned, resolved; answered in
    # 1 h, 25 h and 30 min: the median is 1 h. Breaches: overdue and late_unassigned.
    assert stats.week == lead_views.PeriodStats(
        tickets=7, reacted=3, median_first_reaction=H, breaches=2
    )
    assert (stats.free_modifications, stats.paid_modifications) == (2, 1)
    assert stats.day_start == datetime(2026, 11, 24, 21, 0, tzinfo=UTC)
    assert stats.week_start == datetime(2026, 11, 22, 21, 0, tzinfo=UTC)
    assert stats.month_start == datetime(2026, 10, 31, 21, 0, tzinfo=UTC)


async def test_stats_median_of_an_even_count_and_nothing_yet(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        empty = await lead_views.lead_stats(session, NOW)
        ids = await _setup(session)
        await session.commit()
    assert empty.today == lead_views.PeriodStats(0, 0, None, 0)
    assert empty.week == lead_views.PeriodStats(0, 0, None, 0)
    assert (empty.free_modifications, empty.paid_modifications) == (0, 0)
    await _add(
        sessionmaker,
        _ticket(ids, registered=NOW - 3 * H, due=NOW + H, reacted=NOW - 2 * H, owner="a"),
        _ticket(ids, registered=NOW - 3 * H, due=NOW + H, reacted=NOW - H, owner="a"),
        # A future registration (the clock is the test's): not counted.
        _ticket(ids, registered=NOW + H, due=NOW + 5 * H, owner="a"),
    )
    async with sessionmaker() as session:
        stats = await lead_views.lead_stats(session, NOW)
    assert stats.today == lead_views.PeriodStats(2, 2, timedelta(minutes=90), 0)


@pytest.mark.parametrize(
    ("now", "day", "monday"),
    [
        # Monday 00:30 Moscow time is Sunday 21:30 UTC: the week has just begun.
        (datetime(2026, 11, 22, 21, 30, tzinfo=UTC), (2026, 11, 22), (2026, 11, 22)),
        # Sunday 23:59 Moscow time: still the week that began on Monday the 16th.
        (datetime(2026, 11, 22, 20, 59, tzinfo=UTC), (2026, 11, 21), (2026, 11, 15)),
    ],
)
def test_days_and_weeks_follow_moscow_time(
    now: datetime, day: tuple[int, int, int], monday: tuple[int, int, int]
) -> None:
    day_start, week_start, _month = lead_views.period_starts(now)
    assert day_start == datetime(*day, 21, 0, tzinfo=UTC)
    assert week_start == datetime(*monday, 21, 0, tzinfo=UTC)
