"""The regulation as the merchant meets it in Telegram: stores, quota, owner-only and free-plan
limits, the deadline and quota lines of the answer (the real bot, Bot API emulator)."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest
from sqlalchemy import select

from bot.sandbox.telegram_emulator import SimUser, TelegramEmulator
from services import merchants, modifications, stores
from services.db.engine import create_engine, create_sessionmaker
from services.db.models import Role, Ticket, TicketStatus
from services.queue.builtin import BuiltinQueue
from services.queue.console import BuiltinConsole
from services.regulation import load_regulation
from services.working_calendar import MOSCOW
from tests.e2e.driver import MerchantChat, containing
from tests.helpers.wizard import describe

pytestmark = pytest.mark.e2e

QUOTA = load_regulation().policies.quota


async def seed(database_url: str, user: SimUser, linked: list[tuple[str, str, Role, int]]) -> None:
    """Links the merchant to stores (domain, plan, role) with `used` free modifications done."""
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            merchant = await merchants.get_or_register(
                session, telegram_id=user.id, full_name=user.first_name, username=user.username
            )
            for domain, plan, role, used in linked:
                store_id = await stores.add_store(session, domain=domain, name=domain, plan=plan)
                await stores.grant(session, merchant_id=merchant.id, store_id=store_id, role=role)
                for _ in range(used):
                    await modifications.record_modification(
                        session,
                        QUOTA,
                        store_id=store_id,
                        plan=plan,
                        minutes=10,
                        specialist="Иван",
                        done_at=datetime.now(UTC),
                    )
    finally:
        await engine.dispose()


MODIFICATION = {
    "ru": {
        "type": "Доработка",
        "category": "Шаблон магазина",
        "quota": "🛠 Бесплатные доработки в этом месяце: ▰▰▱▱ осталось 2 из 4",
        "first_reaction": "⏱ Первая реакция: завтра, ",
        "registered": "под номером",
        "send": "✅ Отправить",
    },
    "en": {
        "type": "Modification",
        "category": "Store template",
        "quota": "🛠 Free modifications this month: ▰▰▱▱ 2 of 4 left",
        "first_reaction": "⏱ First reaction: tomorrow, ",
        "registered": "under number",
        "send": "✅ Send",
    },
}


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_modification_answer_gives_number_deadline_and_quota(
    emulator: TelegramEmulator, start_bot, sqlite_url: str, language: str
) -> None:
    t = MODIFICATION[language]
    user = SimUser(id=6_100_001, first_name="Olga", language_code=language)
    await seed(sqlite_url, user, [("shop.example.com", "site", Role.OWNER, 2)])
    await start_bot()
    chat = MerchantChat(emulator, user)

    types = await chat.say("/new", until=lambda m: bool(m.buttons))
    assert "shop.example.com" in types.content  # the one linked store is taken without asking
    categories = await chat.press(types, t["type"])
    await chat.press(categories, t["category"])
    await chat.say("Кнопка «Купить» / Buy button")
    review = await describe(chat, "Сделать кнопку зелёной. Make the button green.")
    assert t["quota"] in review.content

    registered = chat.emu.wait_for_message(
        user, containing(t["registered"]), since=emulator.mark(), timeout=20
    )
    await chat.press_for_new(review, t["send"])
    answer = (await registered).content
    assert re.search(r"#\d+", answer)
    assert t["first_reaction"] in answer
    assert t["quota"] in answer


async def test_spent_allowance_asks_to_confirm_500_rub_before_sending(
    emulator: TelegramEmulator, start_bot, sqlite_url: str
) -> None:
    user = SimUser(id=6_100_002, first_name="Олег", language_code="ru")
    await seed(sqlite_url, user, [("spent.example.com", "combo", Role.ADMIN, 4)])
    await start_bot()
    chat = MerchantChat(emulator, user)

    types = await chat.say("/new", until=lambda m: bool(m.buttons))
    categories = await chat.press(types, "Доработка")
    await chat.press(categories, "Шаблон письма")
    await chat.say("Письмо «Заказ оформлен»")
    review = await describe(chat, "Добавить телефон магазина в подпись.")
    assert "▱▱▱▱ осталось 0 из 4" in review.content
    assert "эта будет стоить 500\xa0₽" in review.content
    button = "✅ Отправить, подтверждаю оплату 500\xa0₽"  # no gendered «согласен(на)»
    assert review.buttons[0].text == button

    registered = chat.emu.wait_for_message(
        user, containing("под номером"), since=emulator.mark(), timeout=20
    )
    await chat.press_for_new(review, button)
    assert "осталось 0 из 4" in (await registered).content


async def test_several_stores_free_plan_limits_owner_only_and_quota_lookup(
    emulator: TelegramEmulator, start_bot, sqlite_url: str
) -> None:
    user = SimUser(id=6_100_003, first_name="Ирина", language_code="ru")
    await seed(
        sqlite_url,
        user,
        [
            ("a-premium.example.com", "premium", Role.ADMIN, 3),
            ("b-free.example.com", "free", Role.OWNER, 0),
        ],
    )
    await start_bot()
    chat = MerchantChat(emulator, user)

    # /quota: a bar for each linked store.
    quota = await chat.say("/quota")
    assert "a-premium.example.com" in quota.content
    assert "▰▰▰▰▰▰▰▱▱▱ осталось 7 из 10" in quota.content
    assert "b-free.example.com" in quota.content and "нет бесплатных доработок" in quota.content

    # Several stores: the wizard asks which one first.
    choice = await chat.say("/new", until=lambda m: bool(m.buttons))
    assert "О каком магазине речь" in choice.content
    types = await chat.press(choice, "b-free.example.com (b-free.example.com)")

    # The free plan's limits are the platform's policy: a refused category is explained with
    # what the plan allows, and the merchant picks an allowed one among the same buttons.
    categories = await chat.press(types, "Технический вопрос")
    refused = await chat.press(categories, "Оплата и доставка")
    assert "На тарифе «Бесплатный» поддержка платформы не принимает такие обращения" in (
        refused.content
    )
    assert "• Технический вопрос → Ошибка в работе платформы" in refused.content
    assert "• Доработка → любая категория (платно: 500\xa0₽ за каждую)" in refused.content
    subject_prompt = await chat.press(refused, "Ошибка в работе платформы")
    assert "Напишите <b>тему</b>" in (subject_prompt.raw_text or "")

    # Owner-only requests: refused to an admin of the premium store.
    await chat.say("/cancel")
    choice = await chat.say("/new", until=lambda m: bool(m.buttons))
    types = await chat.press(choice, "a-premium.example.com (a-premium.example.com)")
    categories = await chat.press(types, "Административный вопрос")
    refused = await chat.press(categories, "Удаление контента магазина")
    assert "может запросить только владелец магазина" in refused.content
    assert emulator.failed_calls == []


FREE_PLAN = {
    "ru": {
        "administrative": "Административный вопрос",
        "refused": "не принимает такие обращения",
        "choose": "На этом тарифе можно выбрать:",
        "modification_choice": "• Доработка → любая категория (платно: 500\xa0₽ за каждую)",
        "regulation": "регламент",
        "modification": "Доработка",
        "template": "Шаблон магазина",
        "price": "На вашем тарифе нет бесплатных доработок: эта будет стоить 500\xa0₽",
        "button": "✅ Отправить, подтверждаю оплату 500\xa0₽",
        "registered": "под номером",
        "quota": "нет бесплатных доработок",
    },
    "en": {
        "administrative": "Administrative question",
        "refused": "does not cover this request",
        "choose": "On this plan you can choose:",
        "modification_choice": "• Modification → any category (paid: 500\xa0RUB each)",
        "regulation": "regulation",
        "modification": "Modification",
        "template": "Store template",
        "price": "Your plan includes no free modifications: this one costs 500\xa0RUB",
        "button": "✅ Send, I confirm the payment of 500\xa0RUB",
        "registered": "under number",
        "quota": "no free modifications",
    },
}


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_free_plan_refuses_a_type_naming_the_choices_and_orders_a_paid_modification(
    emulator: TelegramEmulator, start_bot, sqlite_url: str, language: str
) -> None:
    t = FREE_PLAN[language]
    user = SimUser(id=6_100_004, first_name="Пётр", language_code=language)
    await seed(sqlite_url, user, [("free.example.com", "free", Role.OWNER, 0)])
    await start_bot()
    chat = MerchantChat(emulator, user)

    types = await chat.say("/new", until=lambda m: bool(m.buttons))
    # A type the free plan does not cover is refused at once, on the types' own buttons.
    refused = await chat.press(types, t["administrative"])
    assert t["refused"] in refused.content
    assert t["choose"] in refused.content
    assert t["modification_choice"] in refused.content
    assert t["regulation"] not in refused.content  # the platform's policy, not the regulation
    # "Если тариф не предусматривает бесплатных доработок ... на платной основе."
    categories = await chat.press(refused, t["modification"])
    await chat.press(categories, t["template"])
    await chat.say("Кнопка «Купить» / Buy button")
    review = await describe(chat, "Сделать кнопку зелёной. Make the button green.")
    assert t["price"] in review.content
    assert review.buttons[0].text == t["button"]

    registered = chat.emu.wait_for_message(
        user, containing(t["registered"]), since=emulator.mark(), timeout=20
    )
    await chat.press_for_new(review, t["button"])
    assert t["quota"] in (await registered).content
    assert emulator.failed_calls == []


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_reregistration_is_owner_only_like_deletion_and_transfer(
    emulator: TelegramEmulator, start_bot, sqlite_url: str, language: str
) -> None:
    administrative, reregistration, refusal = {
        "ru": (
            "Административный вопрос",
            "Переоформление",
            "«Переоформление» может запросить только владелец магазина",
        ),
        "en": (
            "Administrative question",
            "Re-registration",
            "Only the store owner can ask for «Re-registration»",
        ),
    }[language]
    user = SimUser(id=6_100_005, first_name="Admin", language_code=language)
    await seed(sqlite_url, user, [("shop.example.com", "site", Role.ADMIN, 0)])
    await start_bot()
    chat = MerchantChat(emulator, user)

    types = await chat.say("/new", until=lambda m: bool(m.buttons))
    categories = await chat.press(types, administrative)
    refused = await chat.press(categories, reregistration)
    assert refusal in refused.content


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_administrative_deadline_says_office_hours_and_days_off(
    emulator: TelegramEmulator, start_bot, sqlite_url: str, language: str
) -> None:
    t = {
        "ru": ("Административный вопрос", "Возврат денежных средств", "под номером"),
        "en": ("Administrative question", "Refund", "under number"),
    }[language]
    office = {
        "ru": "с понедельника по пятницу, 10:00–19:00 по московскому времени; выходные и "
        "нерабочие дни в срок не засчитываются",
        "en": "Monday to Friday, 10:00–19:00 Moscow time; days off are not counted",
    }[language]
    user = SimUser(id=6_100_006, first_name="Vera", language_code=language)
    await seed(sqlite_url, user, [("shop.example.com", "site", Role.OWNER, 0)])
    await start_bot()
    chat = MerchantChat(emulator, user)

    types = await chat.say("/new", until=lambda m: bool(m.buttons))
    categories = await chat.press(types, t[0])
    await chat.press(categories, t[1])
    await chat.say("Refund 1000")
    review = await describe(chat, "Invoice 17, paid twice on 1 November.")
    registered = chat.emu.wait_for_message(
        user, containing(t[2]), since=emulator.mark(), timeout=20
    )
    await chat.press_for_new(review, review.buttons[0].text)
    answer = (await registered).content
    assert office in answer
    assert "(Moscow time)" not in answer and "(по московскому времени)" not in answer


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_tickets_list_shows_the_resolution_deadline_once_a_specialist_works_on_it(
    emulator: TelegramEmulator, start_bot, sqlite_url: str, language: str
) -> None:
    """A refund («возврат … до 10 рабочих дней»): its resolution deadline, named when it was
    registered, is the one /tickets shows once the request is in progress."""
    t = {
        "ru": {
            "type": "Административный вопрос",
            "category": "Возврат денежных средств",
            "registered": "под номером",
            "promised": re.compile(r"📅 Решение: (.+?)\.(?:\n|$)"),
            "list": "Ваши обращения",
            "line": "в работе · обновлено {updated} · 📅 решение: {when}",
            "reply": "↩️ Ответить",
        },
        "en": {
            "type": "Administrative question",
            "category": "Refund",
            "registered": "under number",
            "promised": re.compile(r"📅 Resolution: (.+?)\.(?:\n|$)"),
            "list": "Your requests",
            "line": "in progress · updated {updated} · 📅 resolution: {when}",
            "reply": "↩️ Reply",
        },
    }[language]
    user = SimUser(id=6_100_007, first_name="Vera", language_code=language)
    await seed(sqlite_url, user, [("shop.example.com", "site", Role.OWNER, 0)])
    await start_bot(env={"SYNC_INTERVAL_SECONDS": "0.5"})
    chat = MerchantChat(emulator, user, timeout=20)

    types = await chat.say("/new", until=lambda m: bool(m.buttons))
    categories = await chat.press(types, t["type"])
    await chat.press(categories, t["category"])
    await chat.say("Refund 1000")
    review = await describe(chat, "Invoice 17, paid twice on 1 November.")
    registered = chat.emu.wait_for_message(
        user, containing(t["registered"]), since=emulator.mark(), timeout=20
    )
    await chat.press_for_new(review, review.buttons[0].text)
    answer = (await registered).content
    promised = t["promised"].search(answer)
    number = re.search(r"#(\d+)", answer)
    assert promised and number, answer

    engine = create_engine(sqlite_url)
    try:
        sessionmaker = create_sessionmaker(engine)
        await BuiltinConsole(BuiltinQueue(sessionmaker), "root").set_status(
            number.group(1), TicketStatus.OPEN
        )
        changed = await emulator.wait_for_message(
            user, containing("🛠", f"#{number.group(1)}"), timeout=20
        )
        assert t["reply"] in str(changed.button_rows)  # a status notice carries Reply too
        listing = await chat.say("/tickets", until=containing(t["list"]))
        async with sessionmaker() as session:
            ticket = (await session.scalars(select(Ticket))).one()
    finally:
        await engine.dispose()
    updated = ticket.updated_at.astimezone(MOSCOW).strftime("%d.%m.%Y %H:%M")
    assert t["line"].format(updated=updated, when=promised.group(1)) in listing.content, (
        listing.content
    )


HELP = {
    "ru": [
        "/new",
        "/tickets",
        "/stores",
        "/quota",
        "/language",
        "/cancel",
        "не консультирует по вёрстке, не относящейся к функциям платформы",
        "SEO, рекламе, юридическим вопросам",
        "сторонних сервисов",
        "При повышенной нагрузке сроки могут быть увеличены",
        "с понедельника по пятницу, 10:00–19:00 по московскому времени",
        "«Административный вопрос»",
    ],
    "en": [
        "/new",
        "/tickets",
        "/stores",
        "/quota",
        "/language",
        "/cancel",
        "layout unrelated to the platform's features",
        "SEO, advertising, legal",
        "third-party services",
        "Under high load, deadlines may be longer",
        "Monday to Friday, 10:00–19:00 Moscow time",
        "«Administrative question»",
    ],
}


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_help_says_commands_what_support_does_not_do_and_that_deadlines_may_stretch(
    emulator: TelegramEmulator, start_bot, language: str
) -> None:
    await start_bot()
    chat = MerchantChat(emulator, SimUser(id=6_100_007, first_name="Ann", language_code=language))
    answer = await chat.say("/help")
    for fragment in HELP[language]:
        assert fragment in answer.content, fragment
    assert len(answer.content) < 4096
