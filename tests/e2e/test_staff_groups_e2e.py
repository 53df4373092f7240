"""New tickets routed to a staff group (STAFF_GROUPS) through the real bot and the Bot API
emulator, on the builtin queue with a configured link to the ticket (QUEUE_TICKET_URL): the
group gets the ticket's card with the link, the leads do not; once the queue assigns it, the
specialist's card links it too. A group that removed the bot breaks nothing: the next new
ticket goes to the leads."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime

import aiohttp
import pytest
from aiogram.types import Chat, Message, Update

from bot.sandbox.telegram_emulator import ChatMessage, TelegramEmulator
from services.db.engine import create_engine, create_sessionmaker
from services.db.models import StaffRole
from services.queue.builtin import BuiltinQueue
from services.queue.console import BuiltinConsole
from tests.e2e.driver import MerchantChat, containing
from tests.e2e.test_staff_e2e import staff_link
from tests.helpers.wizard import TEXTS, describe, merchant, send_and_get_number, walk_to_description
from tests.integration.rt_fixture import RtServer, RtSpecialist, rt_server

__all__ = ["rt_server"]  # the session fixture, imported to be found here

pytestmark = pytest.mark.e2e

GROUP = -100_123_456
ENV = {
    "SYNC_INTERVAL_SECONDS": "1",
    # The wizard's walk files a platform error (technical / system_error).
    "STAFF_GROUPS": json.dumps({"system_error": GROUP}),
    "QUEUE_TICKET_URL": "https://desk.example/tickets/{id}",
}


def _links(message: ChatMessage) -> list[str]:
    return [e.url for e in message.entities if e.type == "text_link" and e.url]


async def _file(emulator: TelegramEmulator, user_id: int) -> str:
    t = TEXTS["ru"]
    shopper = MerchantChat(emulator, merchant("ru", user_id))
    await shopper.say("/start")
    await walk_to_description(shopper, t)
    return await send_and_get_number(shopper, await describe(shopper, t["description"]), t)


async def _link_staff(
    emulator: TelegramEmulator, database_url: str, specialist_user: str = "ivanov"
) -> tuple[MerchantChat, ...]:
    lead = MerchantChat(emulator, merchant("ru", 5_800_001))
    specialist = MerchantChat(emulator, merchant("ru", 5_800_002))
    for chat, user, role in (
        (lead, "petrova", StaffRole.LEAD),
        (specialist, specialist_user, StaffRole.SPECIALIST),
    ):
        await chat.say(f"/start {await staff_link(database_url, user, role)}")
    return lead, specialist


async def test_routed_ticket_reaches_its_group_with_the_link_and_not_the_leads(
    emulator: TelegramEmulator, start_bot, sqlite_url: str
) -> None:
    emulator.add_group(GROUP, "Ошибки платформы")
    await start_bot(env=ENV)
    lead, specialist = await _link_staff(emulator, sqlite_url)

    number = await _file(emulator, 5_800_003)
    card = await emulator.wait_for_message(
        GROUP, containing(f"🆕 Новая заявка #{number},"), timeout=20
    )
    assert TEXTS["ru"]["subject"] in card.content
    assert "Открыть обращение в очереди" in card.content
    assert _links(card) == [f"https://desk.example/tickets/{number}"]

    since = emulator.mark()
    engine = create_engine(sqlite_url)
    try:
        console = BuiltinConsole(BuiltinQueue(create_sessionmaker(engine)), "petrova")
        await console.set_owner(number, "ivanov")
    finally:
        await engine.dispose()
    assigned = await emulator.wait_for_message(
        specialist.user, containing(f"📌 Вам назначена заявка #{number}:"), since=since, timeout=20
    )
    assert _links(assigned) == [f"https://desk.example/tickets/{number}"]

    await asyncio.sleep(1.5)  # another sync round: nothing more, and nothing for the lead
    assert len([m for m in emulator.bot_messages(GROUP) if "🆕" in m.content]) == 1
    assert not [m for m in emulator.bot_messages(lead.user.id) if "🆕" in m.content]
    assert emulator.failed_calls == []


async def test_a_group_that_removed_the_bot_breaks_nothing_and_the_leads_take_over(
    emulator: TelegramEmulator, start_bot, sqlite_url: str
) -> None:
    emulator.add_group(GROUP, "Ошибки платформы")
    kicked = "Forbidden: bot was kicked from the supergroup chat"
    emulator.inject_error("sendMessage", 403, kicked, chat=GROUP)
    await start_bot(env=ENV)
    lead, _ = await _link_staff(emulator, sqlite_url)

    first = await _file(emulator, 5_800_004)  # its merchant is answered as ever
    await emulator.wait_until(
        lambda: any(c.status == 403 for c in emulator.failed_calls), timeout=20
    )
    second = await _file(emulator, 5_800_005)
    card = await emulator.wait_for_message(
        lead.user, containing(f"🆕 Новая заявка #{second},"), timeout=20
    )
    assert _links(card) == [f"https://desk.example/tickets/{second}"]
    await asyncio.sleep(1)
    # The group was tried once, for the first ticket, then left alone.
    assert [c.status for c in emulator.failed_calls] == [403]
    assert not emulator.bot_messages(GROUP)
    assert not [m for m in emulator.bot_messages(lead.user.id) if f"#{first}," in m.content]

    # The bot is added back: Telegram's service message in the group. The held announcement
    # goes out, and the next new ticket is the group's again.
    emulator.inject_update(
        Update(
            update_id=emulator.new_update_id(),
            message=Message(
                message_id=1,
                date=datetime.now(UTC),
                chat=Chat(id=GROUP, type="supergroup", title="Ошибки платформы"),
                from_user=lead.user.to_user(),
                new_chat_members=[emulator.bot_user],
            ),
        )
    )
    held = await emulator.wait_for_message(
        GROUP, containing(f"🆕 Новая заявка #{first},"), timeout=20
    )
    assert _links(held) == [f"https://desk.example/tickets/{first}"]
    third = await _file(emulator, 5_800_006)
    await emulator.wait_for_message(GROUP, containing(f"🆕 Новая заявка #{third},"), timeout=20)
    assert [m for m in emulator.bot_messages(lead.user.id) if "🆕" in m.content] == [card]
    assert len(emulator.bot_messages(GROUP)) == 2  # the bot says nothing else in the group


@pytest.mark.rt
async def test_on_request_tracker_the_cards_link_the_ticket_in_rt(
    emulator: TelegramEmulator, start_bot, sqlite_url: str, rt_server: RtServer
) -> None:
    emulator.add_group(GROUP, "Ошибки платформы")
    env = {k: v for k, v in ENV.items() if k != "QUEUE_TICKET_URL"}
    await start_bot(
        env={**env, "QUEUE": "rt", "RT_URL": rt_server.base_url, "RT_TOKEN": rt_server.token}
    )
    lead, specialist = await _link_staff(emulator, sqlite_url, rt_server.admin_user)

    number = await _file(emulator, 5_800_007)
    page = f"{rt_server.base_url.rstrip('/')}/Ticket/Display.html?id={number}"
    card = await emulator.wait_for_message(
        GROUP, containing(f"🆕 Новая заявка #{number},"), timeout=30
    )
    assert _links(card) == [page]

    since = emulator.mark()
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as http:
        await RtSpecialist(http, rt_server).set_owner(number, rt_server.admin_user)
    assigned = await emulator.wait_for_message(
        specialist.user, containing(f"📌 Вам назначена заявка #{number}:"), since=since, timeout=30
    )
    assert _links(assigned) == [page]
    assert not [m for m in emulator.bot_messages(lead.user.id) if "🆕" in m.content]
