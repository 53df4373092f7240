"""Issue 9's whole specialist flow through the real bot, the Bot API emulator and the real Request
Tracker: the merchant's Registered notice names the deadline RT shows as Due (to the minute); a
ticket assigned in RT (REST2, as a specialist does in its web interface) reaches that specialist
in Telegram within one sync interval; Reply from the card is correspondence in RT's history by the
specialist and reaches the merchant; a modification recorded from the card changes the merchant's
/quota and is an internal comment in RT; Resolve from the card resolves the ticket in RT and tells
the merchant. (The same flows on the builtin queue: test_staff_actions_e2e.py,
test_assignments_e2e.py, test_modification_restrictions_e2e.py.)"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import cast

import aiohttp
import pytest

from bot.sandbox.telegram_emulator import SimUser, TelegramEmulator
from services import merchants, stores, tickets
from services.db.engine import create_engine, create_sessionmaker
from services.db.models import Role, StaffRole, Ticket
from services.queue.rt import RequestTrackerQueue
from services.regulation import load_regulation
from services.tickets import Draft
from services.working_calendar import MOSCOW
from tests.e2e.bot_in_process import InProcessBot
from tests.e2e.driver import MerchantChat, containing
from tests.e2e.test_staff_e2e import staff_link
from tests.helpers.wizard import merchant
from tests.integration.rt_fixture import SPECIALIST, RtServer, RtSpecialist, rt_server

__all__ = ["rt_server"]  # the session fixture, imported to be found here

pytestmark = [pytest.mark.e2e, pytest.mark.rt]

REGULATION = load_regulation()
DRAFT = Draft("modification", "template", "Поправить шапку", "Сдвинуть логотип влево.")


@pytest.fixture
async def rt_admin(rt_server: RtServer) -> AsyncIterator[RtSpecialist]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield RtSpecialist(session, rt_server)


def _rt_time(value: str) -> datetime:
    return datetime.strptime(value, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)


async def test_assigned_in_rt_the_specialist_replies_records_and_resolves_from_telegram(
    emulator: TelegramEmulator, start_bot, rt_server: RtServer, rt_admin: RtSpecialist
) -> None:
    bot = cast(
        InProcessBot,
        await start_bot(
            env={
                "QUEUE": "rt",
                "RT_URL": rt_server.base_url,
                "RT_TOKEN": rt_server.token,
                "SYNC_INTERVAL_SECONDS": "1",
            }
        ),
    )
    database_url = bot.env["DATABASE_URL"]
    ivan = MerchantChat(emulator, SimUser(5_900_001, "Иван", "ivan_rt", "ru"))
    token = await staff_link(database_url, SPECIALIST.name, StaffRole.SPECIALIST)
    await ivan.say(f"/start {token}")
    shop = MerchantChat(emulator, merchant("ru", 5_900_002))
    await shop.say("/start")

    engine = create_engine(database_url)
    rt = RequestTrackerQueue(rt_server.base_url, token=rt_server.token)
    try:
        sessionmaker = create_sessionmaker(engine)
        async with sessionmaker() as session:
            profile = await merchants.get_or_register(
                session, telegram_id=shop.user.id, full_name="Анна", username="anna_rt"
            )
            store_id = await stores.add_store(
                session, domain="rt-lavka.example.com", name="Лавка", plan="site"
            )
            await stores.grant(session, merchant_id=profile.id, store_id=store_id, role=Role.OWNER)
            await session.commit()
            filed = await tickets.submit(
                session,
                REGULATION.catalog,
                profile,
                DRAFT,
                reference=f"e2e-rt-flow-{time.time_ns()}",
                locale="ru",
                queue_name="rt",
                store_id=store_id,
                plan="site",
            )
        bot.app.filing.wake()
        registered = await emulator.wait_for_message(
            shop.user, containing("под номером"), timeout=30
        )
        async with sessionmaker() as session:
            ticket = await session.get_one(Ticket, filed.id)
            number, due = ticket.queue_ticket_id, ticket.first_reaction_due
        assert number is not None and due is not None
        # RT's Due is the deadline the merchant was told, to the minute.
        assert f"#{number}" in registered.content
        assert due.astimezone(MOSCOW).strftime("%H:%M") in registered.content
        rt_ticket = await rt_admin.call("GET", f"ticket/{number}")
        assert _rt_time(rt_ticket["Due"]).replace(second=0) == due.replace(second=0, microsecond=0)

        # Assigned in RT as a specialist's web interface would: the card within a sync interval.
        since = emulator.mark()
        await rt_admin.set_owner(number, SPECIALIST.name)
        card = await emulator.wait_for_message(
            ivan.user, containing(f"📌 Вам назначена заявка #{number}:"), since=since, timeout=20
        )

        # Reply from the card: correspondence in RT by the specialist, and the merchant has it.
        await ivan.press_for_new(card, "💬 Ответить")
        since = emulator.mark()
        await ivan.say("Логотип сдвинули, проверьте, пожалуйста.")
        reply = await emulator.wait_for_message(
            shop.user, containing("💬 Ответ поддержки", f"#{number}"), since=since, timeout=30
        )
        assert "Логотип сдвинули" in reply.content
        history = await rt_admin.call(
            "GET", f"ticket/{number}/history?fields=Type,Creator&per_page=100"
        )
        assert "Correspond" in [item["Type"] for item in history["items"]]
        [entry] = [e for e in await rt.conversation(number) if e.by_support]
        assert entry.author == SPECIALIST.real_name and "Логотип сдвинули" in entry.body

        # A modification recorded from the card: free, the merchant told, /quota counts it.
        prompt = await ivan.press_for_new(card, "⏱ Записать доработку")
        assert f"#{number}" in prompt.content
        since = emulator.mark()
        await ivan.say("10")
        told = await emulator.wait_for_message(
            shop.user, containing("бесплатная доработка", f"#{number}"), since=since, timeout=20
        )
        assert "осталось 3 из 4" in told.content
        assert "осталось 3 из 4" in (await shop.say("/quota")).content

        # Resolve from the card: resolved in RT, and the merchant told.
        confirm = await ivan.press_for_new(card, "✅ Решить")
        since = emulator.mark()
        await ivan.press(confirm, "Да, решить")
        await emulator.wait_for_message(
            shop.user, containing(f"✅ Обращение #{number}", "решено"), since=since, timeout=30
        )
        deadline = time.monotonic() + 20
        while (await rt_admin.call("GET", f"ticket/{number}"))["Status"] != "resolved":
            assert time.monotonic() < deadline, "RT never showed the ticket resolved"
            await asyncio.sleep(0.3)
        # Frontdesk's own doings never come back from the sync as support's: told once each.
        for _ in range(2):
            await bot.app.sync_worker.run_once()  # type: ignore[union-attr]
        told = [m.content for m in emulator.bot_messages(shop.user)]
        assert len([text for text in told if "💬 Ответ поддержки" in text]) == 1
        assert len([text for text in told if "решено" in text]) == 1
        assert emulator.failed_calls == []
    finally:
        await rt.close()
        await engine.dispose()
