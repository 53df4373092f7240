"""Specialists in Telegram through the real bot and the Bot API emulator (builtin queue, issue 9
points 4 and 8): a specialist records a modification with `/modification <number> <minutes>`, the
merchant is told it was free and how many are left, `/quota` shows the real count, the queue
ticket gets an internal note, and the same update delivered again records nothing more; a lead
restricts a merchant (`/restrict`), whose /new is then refused politely, and lifts it
(`/unrestrict`); a specialist may not restrict; a merchant sending the staff commands gets nothing
staff-only."""

from __future__ import annotations

import asyncio
import time
from typing import cast

import pytest
from sqlalchemy import func, select

from bot.sandbox.telegram_emulator import SimUser, TelegramEmulator
from services import merchants, stores, tickets
from services.db.engine import create_engine, create_sessionmaker
from services.db.models import FilingRestriction, Modification, Role, StaffRole, Ticket
from services.regulation import load_regulation
from services.tickets import Draft
from tests.e2e.bot_in_process import InProcessBot
from tests.e2e.driver import MerchantChat, containing
from tests.e2e.test_staff_e2e import staff_link
from tests.helpers.staff_notes import builtin_notes
from tests.helpers.wizard import merchant

pytestmark = pytest.mark.e2e

REGULATION = load_regulation()
DRAFT = Draft("modification", "template", "Поправить шапку", "Сдвинуть логотип влево.")
UNKNOWN = "Команды /{} нет"


async def test_a_specialist_records_a_modification_and_a_lead_restricts_a_merchant(
    emulator: TelegramEmulator, start_bot, sqlite_url: str
) -> None:
    bot = cast(InProcessBot, await start_bot())
    shop = MerchantChat(emulator, merchant("ru", 5_700_001))
    specialist = MerchantChat(emulator, SimUser(5_700_002, "Иван", "ivan_spec", "ru"))
    lead = MerchantChat(emulator, SimUser(5_700_003, "Ольга", "olga_lead", "ru"))
    for chat, user, role in (
        (specialist, "ivanov", StaffRole.SPECIALIST),
        (lead, "petrova", StaffRole.LEAD),
    ):
        token = await staff_link(sqlite_url, user, role)
        await chat.say(f"/start {token}")
    await shop.say("/start")

    engine = create_engine(bot.env["DATABASE_URL"])
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
                reference="e2e-modification",
                locale="ru",
                queue_name="builtin",
                store_id=store_id,
                plan="site",
            )
        deadline = time.monotonic() + 20
        number = None
        while number is None:
            assert time.monotonic() < deadline, "the ticket was not registered"
            await asyncio.sleep(0.2)
            async with sessionmaker() as session:
                number = (await session.get_one(Ticket, filed.id)).queue_ticket_id

        # A modification of 10 minutes: free, the merchant told, 3 of 4 left.
        since = emulator.mark()
        answer = await specialist.say(f"/modification {number} 10")
        assert "бесплатно" in answer.content and "осталось 3 из 4" in answer.content, answer
        told = await emulator.wait_for_message(
            shop.user, containing("бесплатная доработка", f"#{number}"), since=since, timeout=15
        )
        assert "10 минут работы специалиста" in told.content
        assert "осталось 3 из 4" in told.content, told.content
        assert "осталось 3 из 4" in (await shop.say("/quota")).content
        # Telegram delivering the same update again (a retry) records nothing more: the update
        # is dropped by its id (bot/update_dedupe.py); past the dedupe time, the record's own
        # key (the update's id) records it once (test_modification_records.py, retried).
        [update] = [
            u
            for u in emulator.updates
            if u.message and u.message.text == f"/modification {number} 10"
        ]
        await bot.app.dispatcher.feed_update(bot.app.bot, update)
        assert "осталось 3 из 4" in (await shop.say("/quota")).content
        # Over 15 minutes: the specialist's price is required.
        assert "укажите и цену" in (await specialist.say(f"/modification {number} 40")).content
        # The internal note reaches the queue.
        while not await builtin_notes(sessionmaker, number):
            assert time.monotonic() < deadline + 20, "no internal note in the queue"
            await asyncio.sleep(0.2)
        [(author, note)] = await builtin_notes(sessionmaker, number)
        assert author == "frontdesk" and "10 мин., бесплатная" in note

        # A merchant sending the staff commands gets the generic unknown-command answer.
        for command in (f"modification {number} 5", f"restrict {specialist.user.id} x"):
            name = command.split()[0]
            assert UNKNOWN.format(name) in (await shop.say(f"/{command}")).content
        # A specialist may not restrict.
        refused = await specialist.say(f"/restrict {shop.user.id} грубость")
        assert "только старший" in refused.content

        # The lead restricts: the merchant is told, /new refused politely.
        since = emulator.mark()
        done = await lead.say("/restrict @anna_shop грубость в переписке")
        assert "больше не может подавать обращения" in done.content, done.content
        notice = await emulator.wait_for_message(
            shop.user, containing("Причина: грубость в переписке"), since=since, timeout=15
        )
        assert "ограничила подачу новых обращений" in notice.content
        assert "ограничила подачу" in (await shop.say("/new")).content
        # Lifted: told, and /new opens the wizard again.
        since = emulator.mark()
        assert "снова может" in (await lead.say(f"/unrestrict {shop.user.id}")).content
        await emulator.wait_for_message(
            shop.user, containing("Ограничение снято"), since=since, timeout=15
        )
        wizard = await shop.say("/new", until=lambda m: bool(m.buttons))
        assert "ограничила" not in wizard.content

        async with sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(Modification)) == 1
            log = list(await session.scalars(select(FilingRestriction.restricted)))
        assert log == [True, False]
        told = [m for m in emulator.history(shop.user) if "бесплатная доработка" in m.content]
        assert len(told) == 1
        assert "filing restricted for Telegram user" in bot.log()
    finally:
        await engine.dispose()
