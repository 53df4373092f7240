"""Staff through the real bot and the Bot API emulator: a staff link (`frontdesk staff link`)
opened with `/start <token>` links a specialist, whose chat alone gets the staff command menu and
/whoami; a merchant sending the staff command or a forged staff button gets nothing staff-only;
a removed member loses both."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from bot.sandbox.telegram_emulator import SimUser, TelegramEmulator
from handlers.staff import StaffAct, StaffCallback
from services import links, staff
from services.db.engine import create_engine, create_sessionmaker
from services.db.models import StaffRole
from tests.e2e.driver import MerchantChat
from tests.helpers.wizard import merchant

pytestmark = pytest.mark.e2e

TEXTS = {
    "ru": {
        "linked": "привязан к пользователю очереди ivanov с ролью специалиста",
        "card": "Пользователь очереди: ivanov\nРоль: специалист",
        "up_to_date": "Актуально.",
        "unknown_command": "Команды /whoami нет",
        "used": "Эта ссылка уже использована",
        "stale": "Эта кнопка устарела",
    },
    "en": {
        "linked": "linked to the queue user ivanov as a specialist",
        "card": "Queue user: ivanov\nRole: specialist",
        "up_to_date": "Up to date.",
        "unknown_command": "I do not know the command /whoami",
        "used": "This link has already been used",
        "stale": "This button is out of date",
    },
}


async def _on_db(database_url: str, action):  # type: ignore[no-untyped-def]
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            return await action(session)
    finally:
        await engine.dispose()


async def staff_link(database_url: str, user: str, role: StaffRole) -> str:
    """What `frontdesk staff link USER --role ROLE` does; returns the token."""
    issued = await _on_db(
        database_url,
        lambda s: staff.issue_link(s, user, role, ttl=timedelta(minutes=15), now=datetime.now(UTC)),
    )
    return str(issued.token)


def _commands(emulator: TelegramEmulator, user: SimUser) -> list[str]:
    return [c.command for c in emulator.visible_commands(user)]


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_staff_link_gives_whoami_and_the_staff_menu_to_that_chat_only(
    emulator: TelegramEmulator, start_bot, sqlite_url: str, language: str
) -> None:
    t = TEXTS[language]
    bot = await start_bot()
    specialist = MerchantChat(emulator, merchant(language, 5_600_001))
    shopper = MerchantChat(emulator, merchant(language, 5_600_002))
    token = await staff_link(sqlite_url, "ivanov", StaffRole.SPECIALIST)

    linked = await specialist.say(f"/start {token}")
    assert t["linked"] in linked.content, linked.content
    assert "whoami" in _commands(emulator, specialist.user)
    assert "new" in _commands(emulator, specialist.user)  # the merchants' commands stay
    card = await specialist.say("/whoami")
    assert t["card"] in card.content, card.content
    refreshed = await specialist.press_stale(card, StaffCallback(action=StaffAct.REFRESH).pack())
    assert refreshed == t["up_to_date"]
    # The link is spent: someone else opening it gets the merchants' "already used".
    assert t["used"] in (await shopper.say(f"/start {token}")).content

    # A merchant: no staff command in the menu, the command unknown, a forged button stale.
    await shopper.say("/start")
    assert "whoami" not in _commands(emulator, shopper.user)
    unknown = await shopper.say("/whoami")
    assert t["unknown_command"] in unknown.content
    forged = StaffCallback(action=StaffAct.REFRESH).pack()
    alert = await shopper.press_stale(unknown, forged)
    assert alert is not None and alert.startswith(t["stale"]), alert
    await asyncio.sleep(0.3)
    assert not [m for m in emulator.history(shopper.user) if t["card"] in m.content]
    warnings = [
        line for line in bot.log().splitlines() if "WARNING" in line and "is not staff" in line
    ]
    assert len(warnings) == 2, bot.log()

    # `frontdesk staff remove ivanov`: refused from then on; the next try clears the menu.
    await _on_db(sqlite_url, lambda s: staff.remove(s, "ivanov", now=datetime.now(UTC)))
    assert t["unknown_command"] in (await specialist.say("/whoami")).content
    assert "whoami" not in _commands(emulator, specialist.user)
    assert emulator.failed_calls == []


async def test_an_expired_staff_link_is_refused_like_a_store_link(
    emulator: TelegramEmulator, start_bot, sqlite_url: str
) -> None:
    await start_bot()
    chat = MerchantChat(emulator, merchant("en", 5_600_003))
    token = await staff_link(sqlite_url, "petrova", StaffRole.LEAD)
    await _expire_staff(sqlite_url, token)
    assert "This link has expired" in (await chat.say(f"/start {token}")).content
    assert "whoami" not in _commands(emulator, chat.user)
    assert "I do not know the command" in (await chat.say("/whoami")).content


async def _expire_staff(database_url: str, token: str) -> None:
    from sqlalchemy import update

    from services.db.models import StaffLinkToken

    async def act(session):  # type: ignore[no-untyped-def]
        await session.execute(
            update(StaffLinkToken)
            .where(StaffLinkToken.token_hash == links.hash_token(token))
            .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        await session.commit()

    await _on_db(database_url, act)
