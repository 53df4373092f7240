"""How the regulation's rules read to a merchant: refusals that name what can be chosen, the free
plan's paid modifications, the office hours with working-day deadlines (Russian and English)."""

from __future__ import annotations

import re
from datetime import UTC, datetime, time, timedelta
from functools import cache
from zoneinfo import ZoneInfo

import pytest
from aiogram.utils.i18n import I18n
from babel.messages.pofile import read_po

from bot.config import locales_dir
from handlers import texts
from handlers.new_ticket import keyboards, render
from handlers.new_ticket.draft import WizardData
from services import intake
from services.db.models import Role
from services.intake import Eligibility, Refusal
from services.notices import Registered
from services.quota import status_of
from services.regulation import Regulation, load_regulation
from services.stores import StoreAccess

MSK = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=MSK).astimezone(UTC)  # Wednesday


@cache
def regulation() -> Regulation:
    return load_regulation()


@pytest.fixture(scope="module")
def i18n() -> I18n:
    return I18n(path=locales_dir(), default_locale="ru", domain="messages")


def free_store(role: Role = Role.OWNER) -> StoreAccess:
    return StoreAccess(id=1, domain="free.example.com", name="Free", plan="free", role=role)


def speak(i18n: I18n, locale: str, render_it):  # type: ignore[no-untyped-def]
    with i18n.context(), i18n.use_locale(locale):
        return render_it()


def test_free_plan_type_refusal_names_what_the_merchant_can_choose(i18n: I18n) -> None:
    refused = intake.check_type(regulation(), store=free_store(), type_code="administrative")
    assert refused.refusal is Refusal.TYPE_NOT_COVERED
    ru = speak(i18n, "ru", lambda: render.refusal(refused))
    assert "На тарифе «Бесплатный» поддержка платформы не принимает такие обращения" in ru
    assert "• Технический вопрос → Ошибка в работе платформы" in ru
    assert "• Доработка → любая категория (платно: 500\xa0₽ за каждую)" in ru
    en = speak(i18n, "en", lambda: render.refusal(refused))
    assert "On the «Free» plan, the platform's support does not cover this request" in en
    assert "• Technical question → Platform error" in en
    assert "• Modification → any category (paid: 500\xa0RUB each)" in en
    # The platform's policy, not the regulation's words.
    assert "регламент" not in ru and "regulation" not in en


def test_free_plan_may_choose_modifications_and_platform_errors() -> None:
    for type_code in ("technical", "modification"):
        assert intake.check_type(regulation(), store=free_store(), type_code=type_code).allowed


def test_choices_follow_the_policy_not_a_hard_coded_text(i18n: I18n) -> None:
    """Another category allowed in the policy shows up in the refusal by itself."""
    choices = intake.choices_for(regulation(), "free")
    technical = choices[0]
    store_setup = regulation().catalog.category("technical", "store_setup")
    assert store_setup is not None
    wider = Eligibility(
        Refusal.CATEGORY_NOT_COVERED,
        plan="free",
        choices=(
            intake.Choice(
                type=technical.type,
                categories=(store_setup, *technical.categories),
                whole_type=False,
            ),
        ),
    )
    en = speak(i18n, "en", lambda: render.refusal(wider))
    assert "• Technical question → Store settings, Platform error" in en


def test_monthly_limit_refusal_counts_requests_with_plural_forms(i18n: I18n) -> None:
    refused = Eligibility(
        Refusal.MONTHLY_LIMIT_REACHED,
        plan="free",
        monthly_limit=5,
        renews_at=datetime(2026, 11, 30, 21, 0, tzinfo=UTC),
    )
    ru = speak(i18n, "ru", lambda: render.refusal(refused))
    assert "принимает 5 обращений в месяц" in ru and "с 1 декабря" in ru
    one = Eligibility(Refusal.MONTHLY_LIMIT_REACHED, plan="free", monthly_limit=1)
    assert "принимает 1 обращение в месяц" in speak(i18n, "ru", lambda: render.refusal(one))
    en = speak(i18n, "en", lambda: render.refusal(refused))
    assert "takes 5 requests a month" in en and "from 1 December" in en


def test_owner_only_refusal_names_the_category(i18n: I18n) -> None:
    category = regulation().catalog.category("administrative", "reregistration")
    refused = Eligibility(Refusal.OWNER_ONLY, plan="site", category=category)
    ru = speak(i18n, "ru", lambda: render.refusal(refused))
    assert ru.startswith("⛔ «Переоформление» может запросить только владелец магазина")
    en = speak(i18n, "en", lambda: render.refusal(refused))
    assert en.startswith("⛔ Only the store owner can ask for «Re-registration»")


def test_free_plan_modification_review_shows_the_price_to_confirm(i18n: I18n) -> None:
    quota = status_of("free", 0, NOW, regulation().policies.quota)
    data = WizardData(
        request_type="modification", category="template", subject="Кнопка", description="Зелёная"
    )
    view = render.StepView(store=free_store(), quota=quota)
    ru = speak(i18n, "ru", lambda: render.review(regulation().catalog, data, view))
    assert "На вашем тарифе нет бесплатных доработок: эта будет стоить 500\xa0₽" in ru
    assert "уйдёт 15 минут или меньше" in ru
    assert "закончились" not in ru  # nothing was used up: the plan has none
    button = speak(i18n, "ru", lambda: keyboards.review_keyboard("d", price="500\xa0₽"))
    assert button.inline_keyboard[0][0].text == "✅ Отправить, подтверждаю оплату 500\xa0₽"
    button = speak(i18n, "en", lambda: keyboards.review_keyboard("d", price="500\xa0RUB"))
    assert button.inline_keyboard[0][0].text == "✅ Send, I confirm the payment of 500\xa0RUB"


def registered(**extra) -> Registered:  # type: ignore[no-untyped-def]
    fields = {
        "number": "42",
        "subject": "Возврат",
        "request_type": "administrative",
        "category": "refund",
        "plan": "site",
        "registered_at": NOW,
        "first_reaction_due": datetime(2026, 11, 26, 12, 0, tzinfo=MSK),
    }
    return Registered.model_validate(fields | extra)


def test_working_day_deadlines_say_the_office_hours_and_days_off(i18n: I18n) -> None:
    policy = regulation().policies.sla_policy("site", "administrative", "refund")
    hours = regulation().policies.office_hours(policy)
    assert hours == (time(10, 0), time(19, 0))
    notice = registered(office_hours=hours)
    ru = speak(i18n, "ru", lambda: texts.registered(notice, NOW, "ru"))
    assert "⏱ Первая реакция: завтра, 26 ноября, до 12:00 по московскому времени." in ru
    assert (
        "с понедельника по пятницу, 10:00–19:00 по московскому времени; выходные и нерабочие "
        "дни в срок не засчитываются" in ru
    )
    en = speak(i18n, "en", lambda: texts.registered(notice, NOW, "en"))
    assert "Monday to Friday, 10:00–19:00 Moscow time; days off are not counted" in en
    assert "(Moscow time)" not in en


def test_round_the_clock_deadlines_say_no_office_hours(i18n: I18n) -> None:
    policy = regulation().policies.sla_policy("premium", "technical", "system_error")
    assert regulation().policies.office_hours(policy) is None
    notice = registered(first_reaction_due=NOW + timedelta(hours=3))
    en = speak(i18n, "en", lambda: texts.registered(notice, NOW, "en"))
    assert "⏱ First reaction: within 3 hours." in en  # a duration: no "(Moscow time)"
    assert "Monday to Friday" not in en


COUNTED = re.compile(
    r"\{\w+\}\s+(characters?|minutes?|hours?|days?|requests?|files?|tickets?|modifications?|"
    r"messages?|symbols?)\b",
    re.IGNORECASE,
)


def test_every_counted_word_goes_through_ngettext() -> None:
    """A number followed by a noun must agree with it in Russian (1 символ, 2 символа, 5
    символов): only an ngettext message can. A plain message like "up to {limit} characters"
    is refused here; write it with `texts.characters(n)` or `ngettext`."""
    with (locales_dir() / "messages.pot").open("rb") as file:
        template = read_po(file)
    offending = [
        message.id
        for message in template
        if message.id and isinstance(message.id, str) and COUNTED.search(message.id)
    ]
    assert offending == []
