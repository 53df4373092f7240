"""A lead's /queue and /stats through the real bot and the Bot API emulator (builtin queue, issue
9 point 9), with the views' clock held at Wednesday 25 November 2026, 12:00 Moscow time: a
merchant's request registered by the filing worker and 30 more tickets in the database; /queue
lists the 25 unassigned or at-risk ones by deadline, ten a page with Prev/Next (all of them
would not fit in 4,096 characters), and says how many; /stats gives the day's and the week's
tickets, median first reaction and breaches, and the month's free and paid modifications. A
specialist is told these views are the leads'; a merchant gets nothing staff-only."""

from __future__ import annotations

import asyncio
import re
import time
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import update

from bot.sandbox.telegram_emulator import SimUser, TelegramEmulator
from handlers.lead_views import LeadQueueCallback
from services import merchants, modifications, stores, tickets
from services.db.engine import create_engine, create_sessionmaker
from services.db.models import Role, StaffRole, Ticket, TicketStatus
from services.regulation import load_regulation
from services.tickets import Draft
from tests.e2e.driver import MerchantChat, containing
from tests.e2e.test_staff_e2e import staff_link
from tests.helpers.wizard import merchant

pytestmark = pytest.mark.e2e

REGULATION = load_regulation()
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # Wednesday, 12:00 Moscow time
H = timedelta(hours=1)
M = timedelta(minutes=1)
DRAFT = Draft("technical", "system_error", "Ошибка 500 в корзине", "Шаги: открыть корзину.")
QUEUE_HEAD = "Заявки, которым нужен взгляд старшего"
STATS_HEAD = "Показатели поддержки"
LEADS_ONLY = "Эти сводки доступны только старшим."


def _row(
    merchant_id: int,
    store_id: int,
    number: int,
    *,
    registered: datetime,
    due: datetime,
    owner: str | None = None,
    reacted: datetime | None = None,
    status: TicketStatus = TicketStatus.OPEN,
    subject: str = "",
) -> Ticket:
    return Ticket(
        reference=f"e2e-lead-{number}",
        merchant_id=merchant_id,
        store_id=store_id,
        queue_name="builtin",
        queue_ticket_id=str(number),
        status=status,
        request_type="technical",
        category="system_error",
        subject=subject or f"Заявка {number}: не проходит оплата картой при оформлении заказа",
        body="…",
        created_at=registered,
        registered_at=registered,
        first_reaction_due=due,
        queue_owner=owner,
        first_reaction_at=reacted,
        plan="site",
    )


def _numbers(text: str) -> list[str]:
    return re.findall(r"^#(\d+) · ", text, flags=re.MULTILINE)


async def test_a_lead_pages_the_queue_by_deadline_and_reads_the_figures(
    emulator: TelegramEmulator, start_bot, sqlite_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("handlers.lead_views.utcnow", lambda: NOW)
    await start_bot()
    lead = MerchantChat(emulator, SimUser(5_800_001, "Ольга", "olga_lead", "ru"))
    specialist = MerchantChat(emulator, SimUser(5_800_002, "Иван", "ivan_spec", "ru"))
    shop = MerchantChat(emulator, merchant("ru", 5_800_003))
    for chat, user, role in (
        (lead, "petrova", StaffRole.LEAD),
        (specialist, "ivanov", StaffRole.SPECIALIST),
    ):
        await chat.say(f"/start {await staff_link(sqlite_url, user, role)}")
    await shop.say("/start")
    commands = [c.command for c in emulator.visible_commands(lead.user)]
    assert "queue" in commands and "stats" in commands
    assert "queue" not in [c.command for c in emulator.visible_commands(shop.user)]

    engine = create_engine(sqlite_url)
    try:
        sessionmaker = create_sessionmaker(engine)
        async with sessionmaker() as session:
            profile = await merchants.get_or_register(
                session, telegram_id=shop.user.id, full_name="Анна", username="anna_shop"
            )
            store_id = await stores.add_store(
                session, domain="lavka.example.com", name="Лавка", plan="site"
            )
            await stores.grant(session, merchant_id=profile.id, store_id=store_id, role=Role.OWNER)
            await session.commit()
            filed = await tickets.submit(
                session,
                REGULATION.catalog,
                profile,
                DRAFT,
                reference="e2e-lead-views",
                locale="ru",
                queue_name="builtin",
                store_id=store_id,
                plan="site",
            )
        # The filing worker registers it in the builtin queue; then its times are moved to the
        # views' clock: registered an hour before, nobody owns it.
        deadline = time.monotonic() + 20
        real = None
        while real is None:
            assert time.monotonic() < deadline, "the ticket was not registered"
            await asyncio.sleep(0.2)
            async with sessionmaker() as session:
                real = (await session.get_one(Ticket, filed.id)).queue_ticket_id
        async with sessionmaker() as session:
            await session.execute(
                update(Ticket)
                .where(Ticket.id == filed.id)
                .values(registered_at=NOW - H, first_reaction_due=NOW + 23 * H + 30 * M)
            )
            await session.commit()

        mid, sid = profile.id, store_id
        rows = [
            # 20 unassigned, registered 10-50 minutes ago, deadlines 1-20 hours ahead, shuffled.
            *(
                _row(
                    mid,
                    sid,
                    500 + i,
                    registered=NOW - (i % 5 + 1) * 10 * M,
                    due=NOW + (i * 17 % 20 + 1) * H,
                )
                for i in range(20)
            ),
            # Owned, no first reaction: two overdue, one with 91 % of its window gone (today),
            # one overdue since this morning, registered yesterday.
            _row(mid, sid, 600, registered=NOW - 5 * H, due=NOW - H, owner="ivanov"),
            _row(mid, sid, 601, registered=NOW - 10 * H, due=NOW - 30 * M, owner="ivanov"),
            _row(mid, sid, 602, registered=NOW - 9 * H, due=NOW + 50 * M, owner="ivanov"),
            _row(mid, sid, 603, registered=NOW - 30 * H, due=NOW - 6 * H, owner="ivanov"),
            # Not listed: owned and answered in 20 min, 40 min and 4 h (after its deadline).
            _row(
                mid,
                sid,
                700,
                registered=NOW - 3 * H,
                due=NOW + 21 * H,
                owner="ivanov",
                reacted=NOW - 3 * H + 20 * M,
            ),
            _row(
                mid,
                sid,
                701,
                registered=NOW - 2 * H,
                due=NOW + H,
                owner="ivanov",
                reacted=NOW - 2 * H + 40 * M,
            ),
            _row(
                mid,
                sid,
                702,
                registered=NOW - 8 * H,
                due=NOW - 5 * H,
                owner="ivanov",
                reacted=NOW - 4 * H,
            ),
            # Resolved on Monday within 10 minutes: this week's, not listed.
            _row(
                mid,
                sid,
                703,
                registered=datetime(2026, 11, 23, 8, 0, tzinfo=UTC),
                due=datetime(2026, 11, 24, 8, 0, tzinfo=UTC),
                status=TicketStatus.RESOLVED,
                reacted=datetime(2026, 11, 23, 8, 10, tzinfo=UTC),
            ),
            # Last week's and last month's: counted nowhere.
            _row(
                mid,
                sid,
                704,
                registered=datetime(2026, 11, 20, 8, 0, tzinfo=UTC),
                due=datetime(2026, 11, 21, 8, 0, tzinfo=UTC),
                status=TicketStatus.RESOLVED,
                reacted=datetime(2026, 11, 22, 8, 0, tzinfo=UTC),
            ),
            _row(
                mid,
                sid,
                705,
                registered=datetime(2026, 10, 28, 8, 0, tzinfo=UTC),
                due=datetime(2026, 10, 29, 8, 0, tzinfo=UTC),
                status=TicketStatus.RESOLVED,
                reacted=datetime(2026, 10, 30, 8, 0, tzinfo=UTC),
            ),
        ]
        async with sessionmaker() as session:
            session.add_all(rows)
            policy = REGULATION.policies.quota
            for done_at, minutes, price in (
                (NOW - 24 * H, 10, None),  # free
                (NOW - 3 * H, 5, None),  # free
                (NOW - 2 * H, 40, 1500),  # over 15 minutes: paid at the quote
                (datetime(2026, 10, 15, 9, 0, tzinfo=UTC), 10, None),  # October's
            ):
                await modifications.add_modification(
                    session,
                    policy,
                    store_id=sid,
                    plan="site",
                    minutes=minutes,
                    specialist="ivanov",
                    done_at=done_at,
                    price=price,
                )
            await session.commit()
    finally:
        await engine.dispose()

    by_deadline = sorted(
        [(r.first_reaction_due, r.queue_ticket_id) for r in rows[:24]]
        + [(NOW + 23 * H + 30 * M, real)]
    )
    expected = [str(number) for _due, number in by_deadline]
    assert expected[:4] == ["603", "600", "601", "602"]

    # /queue: the first page of ten, the total, and Next.
    first = await lead.say("/queue", until=containing(QUEUE_HEAD))
    assert "всего 25 заявок, страница 1 из 3." in first.content
    assert _numbers(first.content) == expected[:10]
    assert "#603 · Лавка · Ошибка в работе платформы\n" in first.content
    assert (
        "👤 ivanov\n🔥 Срок 25.11 06:00 по московскому времени: просрочено на 6 ч." in first.content
    )
    assert "⏰ Срок 25.11 12:50 по московскому времени: осталось 50 мин." in first.content
    assert [b.text for b in first.buttons] == ["Далее »"]
    pages = [first.content]
    second = await lead.press(first, "Далее »")
    assert "страница 2 из 3" in second.content
    assert _numbers(second.content) == expected[10:20]
    assert [b.text for b in second.buttons] == ["« Назад", "Далее »"]
    pages.append(second.content)
    third = await lead.press(second, "Далее »")
    assert _numbers(third.content) == expected[20:]
    assert f"#{real} · Лавка · " in third.content and "👤 не назначена" in third.content
    assert [b.text for b in third.buttons] == ["« Назад"]
    pages.append(third.content)
    back = await lead.press(third, "« Назад")
    assert _numbers(back.content) == expected[10:20]
    # Each page within a message; the whole list would not be.
    assert all(len(page) <= 4096 for page in pages)
    assert sum(len(page) for page in pages) > 4096

    # /stats: today (27 registered: the request, the 20, 600-602, 700-702), this week (+603,
    # 703), the month's modifications.
    stats = await lead.say("/stats", until=containing(STATS_HEAD))
    assert (
        "Сегодня, 25 ноября\n"
        "📥 27 заявок зарегистрировано; 🔥 3 срока первой реакции пропущено.\n"
        "⏱ Медиана первой реакции: 40 мин (по 3 заявкам с ответом)." in stats.content
    ), stats.content
    assert (
        "На этой неделе, с понедельника, 23 ноября\n"
        "📥 29 заявок зарегистрировано; 🔥 4 срока первой реакции пропущено.\n"
        "⏱ Медиана первой реакции: 30 мин (по 4 заявкам с ответом)." in stats.content
    ), stats.content
    assert "Доработки за ноябрь 2026\n🛠 2 бесплатные, 1 платная." in stats.content

    # A specialist: told politely, for the command and for a lead's page button. (`until`: the
    # SLA watch, on the real clock, may warn the specialist meanwhile.)
    for command in ("/stats", "/queue"):
        answer = await specialist.say(command, until=containing(LEADS_ONLY))
        assert answer.content == LEADS_ONLY
    refused = await specialist.press_stale(answer, LeadQueueCallback(page=1).pack())
    assert refused == LEADS_ONLY

    # A merchant: the commands are unknown, a forged button is stale; nothing staff-only.
    for command in ("queue", "stats"):
        unknown = await shop.say(f"/{command}", until=containing(f"Команды /{command} нет"))
    stale = await shop.press_stale(unknown, LeadQueueCallback(page=0).pack())
    assert stale is not None and stale.startswith("Эта кнопка устарела"), stale
    await asyncio.sleep(0.3)
    seen = [m.content for m in emulator.history(shop.user)]
    assert not [c for c in seen if QUEUE_HEAD in c or STATS_HEAD in c or "#603" in c]
    assert emulator.failed_calls == []
