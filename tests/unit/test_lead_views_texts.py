"""What a lead reads in /queue and /stats, in Russian and English: every line of a ticket (number,
store, category label, subject, owner or "unassigned", deadline with the time left or overdue),
counted words in the right plural, user text escaped, and a full page within Telegram's 4,096
characters however long the fields are."""

from __future__ import annotations

import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from functools import cache
from html import unescape

import pytest
from aiogram.utils.i18n import I18n

from bot.config import locales_dir
from handlers.lead_views import queue_keyboard, queue_text, stats_text
from services import lead_views
from services.lead_views import LeadStats, PeriodStats, QueueItem, QueuePage
from services.regulation import Regulation, load_regulation

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # Wednesday, 12:00 Moscow time
H = timedelta(hours=1)


@cache
def regulation() -> Regulation:
    return load_regulation()


@pytest.fixture(scope="module")
def i18n() -> I18n:
    return I18n(path=locales_dir(), default_locale="ru", domain="messages")


def _item(**changes: object) -> QueueItem:
    fields: dict[str, object] = {
        "number": "147",
        "store": "Цветы & Ко",
        "request_type": "technical",
        "category": "system_error",
        "subject": "Оплата <1>",
        "owner": None,
        "first_reaction_due": NOW + 3 * H,
        "reacted": False,
        "at_risk": False,
    }
    return QueueItem(**(fields | changes))  # type: ignore[arg-type]


def _say(i18n: I18n, locale: str, render):  # type: ignore[no-untyped-def]
    with i18n.context(), i18n.use_locale(locale):
        return render()


def _visible(html: str) -> str:
    return unescape(re.sub(r"<[^>]+>", "", html))


def _utf16(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def test_queue_lines_in_russian(i18n: I18n) -> None:
    page = QueuePage(
        items=(
            _item(),
            _item(
                number="148",
                owner="ivanov",
                first_reaction_due=NOW - timedelta(minutes=90),
                at_risk=True,
            ),
            _item(
                number="149",
                store=None,
                owner="petrov",
                first_reaction_due=NOW + 2 * H,
                at_risk=True,
            ),
            _item(number="150", reacted=True, first_reaction_due=NOW - 5 * H),
        ),
        total=25,
        page=0,
        pages=3,
    )
    html = _say(i18n, "ru", lambda: queue_text(page, regulation(), NOW, "ru"))
    assert "всего 25 заявок, страница 1 из 3." in html
    assert (
        "<b>#147</b> · Цветы &amp; Ко · Ошибка в работе платформы\n"
        "«Оплата &lt;1&gt;» · 👤 не назначена\n"
        "⏱ Срок 25.11 15:00 по московскому времени: осталось 3 ч." in html
    )
    assert (
        "«Оплата &lt;1&gt;» · 👤 ivanov\n"
        "🔥 Срок 25.11 10:30 по московскому времени: просрочено на 1 ч 30 мин." in html
    )
    assert "<b>#149</b> · без магазина ·" in html
    assert "⏰ Срок 25.11 14:00 по московскому времени: осталось 2 ч." in html
    assert "✅ Первая реакция дана (срок был 25.11 07:00 по московскому времени)." in html


def test_queue_in_english_names_the_category_in_english_and_pages(i18n: I18n) -> None:
    page = QueuePage(items=(_item(owner="ivanov"),), total=1, page=0, pages=1)
    html = _say(i18n, "en", lambda: queue_text(page, regulation(), NOW, "en"))
    assert "1 ticket in all." in html
    assert "<b>#147</b> · Цветы &amp; Ко · Platform error" in html
    assert "⏱ Deadline 25.11 15:00 Moscow time: 3 h left." in html
    assert _say(i18n, "en", lambda: queue_keyboard(page)) is None
    middle = QueuePage(items=(_item(),), total=25, page=1, pages=3)
    keyboard = _say(i18n, "en", lambda: queue_keyboard(middle))
    assert keyboard is not None
    buttons = [(b.text, b.callback_data) for row in keyboard.inline_keyboard for b in row]
    assert buttons == [("« Prev", "lq:0"), ("Next »", "lq:2")]


def test_empty_queue_says_so(i18n: I18n) -> None:
    empty = QueuePage(items=(), total=0, page=0, pages=1)
    ru = _say(i18n, "ru", lambda: queue_text(empty, regulation(), NOW, "ru"))
    assert ru.startswith("✨ Взгляд старшего не нужен")
    en = _say(i18n, "en", lambda: queue_text(empty, regulation(), NOW, "en"))
    assert en.startswith("✨ Nothing needs a lead's eye")


@pytest.mark.parametrize("locale", ["ru", "en"])
def test_a_full_page_of_the_longest_fields_fits_in_a_message(i18n: I18n, locale: str) -> None:
    longest = _item(
        number="9" * 64,
        store="&" * lead_views.STORE_CHARS,
        category="x" * 64,  # an unknown code shows as it is, shortened
        subject=lead_views.shorten("<" * 500, lead_views.SUBJECT_CHARS),
        owner="w" * lead_views.OWNER_CHARS,
        first_reaction_due=NOW - 1000 * H,
        at_risk=True,
    )
    page = QueuePage(items=(longest,) * lead_views.PAGE_SIZE, total=10_000, page=999, pages=1000)
    html = _say(i18n, locale, lambda: queue_text(page, regulation(), NOW, locale))
    assert html.count("9" * 64) == lead_views.PAGE_SIZE
    assert _utf16(_visible(html)) <= 4096


def _stats() -> LeadStats:
    return LeadStats(
        today=PeriodStats(tickets=4, reacted=1, median_first_reaction=H, breaches=1),
        week=PeriodStats(
            tickets=21, reacted=5, median_first_reaction=timedelta(minutes=95), breaches=2
        ),
        free_modifications=2,
        paid_modifications=1,
        day_start=datetime(2026, 11, 24, 21, 0, tzinfo=UTC),
        week_start=datetime(2026, 11, 22, 21, 0, tzinfo=UTC),
        month_start=datetime(2026, 10, 31, 21, 0, tzinfo=UTC),
    )


def test_stats_in_russian_with_counted_words(i18n: I18n) -> None:
    html = _say(i18n, "ru", lambda: stats_text(_stats(), "ru"))
    assert (
        "<b>Сегодня, 25 ноября</b>\n"
        "📥 4 заявки зарегистрировано; 🔥 1 срок первой реакции пропущен." in html
    )
    assert "⏱ Медиана первой реакции: 1 ч (по 1 заявке с ответом)." in html
    assert "<b>На этой неделе, с понедельника, 23 ноября</b>" in html
    assert "📥 21 заявка зарегистрирована; 🔥 2 срока первой реакции пропущено." in html
    assert "⏱ Медиана первой реакции: 1 ч 35 мин (по 5 заявкам с ответом)." in html
    assert "<b>Доработки за ноябрь 2026</b>\n🛠 2 бесплатные, 1 платная." in html


def test_stats_in_english_and_a_day_without_reactions(i18n: I18n) -> None:
    quiet = replace(
        _stats(),
        today=PeriodStats(0, 0, None, 0),
        free_modifications=0,
        paid_modifications=5,
    )
    html = _say(i18n, "en", lambda: stats_text(quiet, "en"))
    assert (
        "<b>Today, 25 November</b>\n"
        "📥 0 tickets registered; 🔥 0 first-reaction deadlines missed.\n"
        "⏱ No first reaction yet." in html
    )
    assert "⏱ Median first reaction: 1 h 35 min (over 5 tickets answered)." in html
    assert "<b>Modifications in November 2026</b>\n🛠 0 free, 5 paid." in html
