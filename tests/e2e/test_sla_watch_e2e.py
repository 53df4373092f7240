"""The SLA watch end to end (builtin queue): a lead linked with a staff link, a merchant's request
registered, its first-reaction window 80 % gone (the ticket's times moved back, as a clock moved
forward would) and then passed: the lead's chat gets one warning each time, in the lead's
Telegram language."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from bot.sandbox.telegram_emulator import TelegramEmulator
from services.db.engine import create_engine, create_sessionmaker
from services.db.models import StaffRole, Ticket
from tests.e2e.driver import MerchantChat
from tests.e2e.test_staff_e2e import staff_link
from tests.helpers.wizard import TEXTS, describe, merchant, send_and_get_number, walk_to_description

pytestmark = pytest.mark.e2e


async def test_the_lead_is_warned_at_80_percent_and_at_the_breach_once_each(
    emulator: TelegramEmulator, start_bot, sqlite_url: str
) -> None:
    await start_bot(env={"SLA_WATCH_INTERVAL_SECONDS": "0.2"})
    lead = MerchantChat(emulator, merchant("en", 5_700_001))
    token = await staff_link(sqlite_url, "petrova", StaffRole.LEAD)
    await lead.say(f"/start {token}")
    chat = MerchantChat(emulator, merchant("ru", 5_700_002))
    t = TEXTS["ru"]
    await chat.say("/start")
    await walk_to_description(chat, t)
    number = await send_and_get_number(chat, await describe(chat, t["description"]), t)

    engine = create_engine(sqlite_url)
    try:
        sessionmaker = create_sessionmaker(engine)

        async def move_back(share: float) -> None:
            """The window is 10 hours; now is `share` of it after registration."""
            now = datetime.now(UTC)
            registered = now - timedelta(hours=10) * share
            async with sessionmaker() as session:
                await session.execute(
                    update(Ticket).values(
                        registered_at=registered,
                        first_reaction_due=registered + timedelta(hours=10),
                    )
                )
                await session.commit()

        await move_back(0.85)
        near = await emulator.wait_for_message(
            lead.user, lambda m: "no first reaction yet" in m.content, timeout=10
        )
        assert f"#{number}" in near.content and "left until its deadline" in near.content
        await move_back(1.01)
        breach = await emulator.wait_for_message(
            lead.user, lambda m: "deadline" in m.content, timeout=10
        )
        assert "overdue by" in breach.content and f"#{number}" in breach.content
        await asyncio.sleep(1)  # rounds go on: nothing more
        async with sessionmaker() as session:
            assert (await session.scalar(select(Ticket.sla_stage))) == 2
        later = [m for m in emulator.bot_messages(lead.user) if "first reaction" in m.content]
        assert len(later) == 2
    finally:
        await engine.dispose()
