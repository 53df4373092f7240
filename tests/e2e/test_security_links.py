"""Security of linking, through the real bot: a reused or expired link, the platform API without
or with a wrong key, another store's id in /stores' unlink button or in the wizard's store
choice. Each is refused, says nothing about anyone else's store, changes nothing, and is
logged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from bot.sandbox.telegram_emulator import SimUser, TelegramEmulator
from handlers.new_ticket.keyboards import Action, WizardCallback
from handlers.stores import StoreAction, StoresCallback
from services import merchants, stores
from services.db.engine import create_engine, create_sessionmaker
from services.db.models import Store
from tests.e2e.driver import MerchantChat
from tests.helpers.links import API_ENV, API_KEY, call_api, expire, request_link, store

pytestmark = pytest.mark.e2e


async def _linked_stores(database_url: str, telegram_id: int) -> list[str]:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            profile = await merchants.get_or_register(
                session, telegram_id=telegram_id, full_name="x", username=None
            )
            return [s.domain for s in await stores.stores_of(session, profile.id)]
    finally:
        await engine.dispose()


async def test_reused_and_expired_links_link_nobody_reveal_nothing_and_are_logged(
    emulator: TelegramEmulator, start_bot, sqlite_url: str
) -> None:
    bot = await start_bot(env=API_ENV)
    owner = MerchantChat(emulator, SimUser(id=5_100_001, first_name="Анна", language_code="en"))
    thief = MerchantChat(emulator, SimUser(id=5_100_002, first_name="Eve", language_code="en"))
    token = await request_link(bot.base_url, store("701", "premium", "owner", name="Secret Shop"))
    await owner.say(f"/start {token}")

    reused = await thief.say(f"/start {token}")
    late = await request_link(bot.base_url, store("702", "premium", "owner", name="Hidden Shop"))
    await expire(sqlite_url, late, datetime.now(UTC) - timedelta(minutes=1))
    expired = await thief.say(f"/start {late}")

    for answer, name, domain in (
        (reused, "Secret Shop", "shop-701"),
        (expired, "Hidden Shop", "shop-702"),
    ):
        assert name not in answer.content and domain not in answer.content
        assert "anna@example.com" not in answer.content
    assert await _linked_stores(sqlite_url, thief.user.id) == []
    log = bot.log()
    assert "link token refused (used)" in log and "link token refused (expired)" in log
    assert token not in log and late not in log  # the tokens themselves are never logged


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Api-Key": "not-the-key-0123456789"}, {"Authorization": "Bearer " + API_KEY + "x"}],
    ids=["no key", "wrong key", "wrong bearer"],
)
async def test_platform_api_without_the_right_key_is_refused_and_logged(
    emulator: TelegramEmulator, start_bot, sqlite_url: str, headers: dict[str, str]
) -> None:
    bot = await start_bot(env=API_ENV)
    calls = [
        ("POST", "/api/links", store("801", "premium", "owner")),
        ("PUT", "/api/stores/801", {"plan": "free"}),
        ("DELETE", "/api/stores/801/members/anna@example.com", None),
    ]
    for method, path, payload in calls:
        status, body = await call_api(bot.base_url, method, path, json=payload, headers=headers)
        assert (status, body) == (401, {"error": "unauthorized"})
    engine = create_engine(sqlite_url)
    try:
        async with create_sessionmaker(engine)() as session:
            assert await session.get(Store, 1) is None  # no store was written
    finally:
        await engine.dispose()
    log = bot.log()
    assert log.count("without a valid key: refused") == 3
    assert "not-the-key" not in log and API_KEY not in log


async def test_platform_api_is_off_without_a_configured_key(
    emulator: TelegramEmulator, start_bot
) -> None:
    bot = await start_bot()
    status, body = await call_api(
        bot.base_url, "POST", "/api/links", json=store("1", "free", "owner")
    )
    assert status == 404 and "PLATFORM_API_KEY" in body["error"]


async def test_another_stores_id_in_the_unlink_button_is_refused_and_logged(
    emulator: TelegramEmulator, start_bot, sqlite_url: str
) -> None:
    bot = await start_bot(env=API_ENV)
    anna = MerchantChat(emulator, SimUser(id=5_100_011, first_name="Анна", language_code="ru"))
    boris = MerchantChat(emulator, SimUser(id=5_100_012, first_name="Борис", language_code="ru"))
    await anna.say(f"/start {await request_link(bot.base_url, store('901', 'site', 'owner'))}")
    boris_link = store("902", "premium", "owner", email="boris@example.com", name="Борис и Ко")
    await boris.say(f"/start {await request_link(bot.base_url, boris_link)}")

    listing = await anna.say("/stores")
    own = listing.buttons[0].callback_data
    assert own is not None
    anna_store = StoresCallback.unpack(own).store
    boris_store = anna_store + 1
    for action in (StoreAction.UNLINK, StoreAction.CONFIRM):
        forged = StoresCallback(action=action, store=boris_store).pack()
        alert = await anna.press_stale(listing, forged)
        assert alert is not None and "не привязан к вашему аккаунту" in alert
        assert "Борис" not in alert and "shop-902" not in alert
    assert await _linked_stores(sqlite_url, boris.user.id) == ["shop-902.example.com"]
    assert "shop-902" not in emulator.message(anna.user, listing.message_id).content
    assert bot.log().count(f"pressed unlink of store {boris_store}, which is not linked") == 2

    # Her own store: asked first, then unlinked.
    confirm = await anna.press(listing, "Отвязать shop-901.example.com")
    assert "Отвязать магазин" in confirm.content
    done = await anna.press(confirm, "Да, отвязать")
    assert "отвязан" in done.content
    assert await _linked_stores(sqlite_url, anna.user.id) == []
    assert await _linked_stores(sqlite_url, boris.user.id) == ["shop-902.example.com"]


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_another_stores_id_in_the_wizards_store_choice_is_refused_and_logged(
    emulator: TelegramEmulator, start_bot, language: str
) -> None:
    refused = {
        "ru": "Этот магазин не привязан к вашему аккаунту. Отправьте /stores, чтобы увидеть свои.",
        "en": "This store is not linked to your account. Send /stores to see yours.",
    }[language]
    bot = await start_bot(env=API_ENV)
    anna = MerchantChat(emulator, SimUser(id=5_100_021, first_name="Анна", language_code=language))
    boris = MerchantChat(emulator, SimUser(id=5_100_022, first_name="Борис", language_code="ru"))
    for store_id in ("911", "912"):
        await anna.say(
            f"/start {await request_link(bot.base_url, store(store_id, 'site', 'owner'))}"
        )
    boris_link = store("913", "premium", "owner", email="boris@example.com", name="Борис и Ко")
    await boris.say(f"/start {await request_link(bot.base_url, boris_link)}")

    choice = await anna.say("/new", until=lambda m: bool(m.buttons))
    shown = [(b.text, b.callback_data) for b in choice.buttons]
    own = WizardCallback.unpack(choice.buttons[0].callback_data or "")
    assert own.action is Action.STORE
    boris_store = "3"  # the third store written: the platform's 913
    for code in (boris_store, "not-a-store"):
        forged = WizardCallback(draft=own.draft, action=Action.STORE, code=code).pack()
        assert await anna.press_stale(choice, forged) == refused
    # Nothing of Boris's store shown, nothing "finished": the choice keeps its buttons.
    now = emulator.message(anna.user, choice.message_id)
    assert [(b.text, b.callback_data) for b in now.buttons] == shown
    assert "shop-913" not in now.content
    assert all("Борис" not in m.content for m in emulator.history(anna.user))
    log = bot.log()
    warnings = [line for line in log.splitlines() if "in the wizard, which is not linked" in line]
    assert len(warnings) == 2 and all("WARNING" in line for line in warnings), warnings
    assert f"chose store '{boris_store}'" in log
    # Her own store still works.
    types = await anna.press(choice, choice.buttons[0].text)
    assert "Технический вопрос" in str(types.button_rows) or "Technical question" in str(
        types.button_rows
    )
