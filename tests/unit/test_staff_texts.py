"""What a specialist reads when the queue assigns them a ticket, in Russian and English."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiogram.utils.i18n import I18n

from bot.config import locales_dir
from handlers.notices import TextPart, render
from services.notices import Assigned, Body, TicketCard, Unassigned, excerpt

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)  # 12:00 Moscow time


@pytest.fixture(scope="module")
def i18n() -> I18n:
    return I18n(path=locales_dir(), default_locale="ru", domain="messages")


def _card(**changes: object) -> TicketCard:
    fields: dict[str, object] = {
        "number": "147",
        "subject": "Оплата <1>",
        "excerpt": "Шаги: открыть корзину & оплатить.",
        "store_name": "Цветы & Ко",
        "store_domain": "flowers.example",
        "plan": "premium",
        "request_type": "Техническая проблема",
        "category": "Ошибка системы",
        "files": 2,
        "first_reaction_due": NOW + timedelta(hours=3),
    }
    return TicketCard.model_validate(fields | changes)


def _say(i18n: I18n, locale: str, notice: Body) -> str:
    with i18n.context(), i18n.use_locale(locale):
        parts = render(notice, [], now=NOW)
    assert len(parts) == 1 and isinstance(parts[0], TextPart)
    # No merchant's Reply button on a staff notice: the specialist's actions instead.
    keyboard = parts[0].keyboard
    assert keyboard is not None
    data = [b.callback_data or "" for row in keyboard.inline_keyboard for b in row]
    assert data and all(d.startswith("sa:") for d in data)
    return parts[0].html


def test_assignment_names_store_request_files_and_first_reaction_in_russian(i18n: I18n) -> None:
    html = _say(i18n, "ru", Assigned(card=_card()))
    assert "Вам назначена заявка <b>#147</b>: «Оплата &lt;1&gt;»." in html
    assert "🏪 Магазин: Цветы &amp; Ко (flowers.example), тариф Премиум." in html
    assert "🗂 Техническая проблема → Ошибка системы." in html
    assert "📎 2 файла." in html
    assert (
        "⏱ Первая реакция: сегодня, 25 ноября, до 15:00 по московскому времени (осталось 3 ч)."
        in html
    )
    assert "<blockquote>Шаги: открыть корзину &amp; оплатить.</blockquote>" in html


def test_assignment_in_english_without_store_files_or_deadline(i18n: I18n) -> None:
    html = _say(
        i18n,
        "en",
        Assigned(card=_card(store_name=None, store_domain=None, files=0, first_reaction_due=None)),
    )
    assert "📌 Ticket <b>#147</b> is assigned to you: «Оплата &lt;1&gt;»." in html
    assert "🏪 No store is linked to the request." in html
    assert "📎" not in html and "⏱" not in html


@pytest.mark.parametrize(
    ("due", "ru", "en"),
    [
        (
            NOW + timedelta(hours=2, minutes=14, seconds=30),
            "(осталось 2 ч 15 мин)",
            "(2 h 15 min left)",
        ),
        (NOW + timedelta(seconds=20), "(осталось 1 мин)", "(1 min left)"),
        (NOW - timedelta(minutes=5), "⏱ Первая реакция: просрочено", "⏱ First reaction: overdue"),
    ],
)
def test_first_reaction_deadline_with_the_time_left(
    i18n: I18n, due: datetime, ru: str, en: str
) -> None:
    notice = Assigned(card=_card(first_reaction_due=due))
    assert ru in _say(i18n, "ru", notice)
    assert en in _say(i18n, "en", notice)


def test_new_ticket_for_the_leads_says_nobody_has_it(i18n: I18n) -> None:
    ru = _say(i18n, "ru", Unassigned(card=_card()))
    en = _say(i18n, "en", Unassigned(card=_card()))
    assert "🆕 Новая заявка <b>#147</b>, пока никому не назначена: «Оплата &lt;1&gt;»." in ru
    assert "🆕 New ticket <b>#147</b>, not assigned yet: «Оплата &lt;1&gt;»." in en
    assert "🗂 Техническая проблема → Ошибка системы." in ru


def test_excerpt_is_cut_at_a_word() -> None:
    assert excerpt("один  два\nтри") == "один два три"
    assert excerpt("слово " * 100, limit=20) == "слово слово слово…"


def test_card_links_the_ticket_in_the_queue_escaped(i18n: I18n) -> None:
    url = 'https://rt.example/Ticket/Display.html?id=147&x="<y>"'
    ru = _say(i18n, "ru", Unassigned(card=_card(url=url)))
    en = _say(i18n, "en", Assigned(card=_card(url=url)))
    href = "https://rt.example/Ticket/Display.html?id=147&amp;x=&quot;&lt;y&gt;&quot;"
    assert f'<a href="{href}">Открыть обращение в очереди</a>' in ru
    assert f'<a href="{href}">Open the request in the queue</a>' in en


def test_card_without_a_queue_link_has_no_link_line(i18n: I18n) -> None:
    for notice in (Assigned(card=_card()), Unassigned(card=_card(url=None))):
        assert "<a " not in _say(i18n, "ru", notice)


def test_card_stored_before_it_carried_a_link_still_reads() -> None:
    stored = _card().model_dump(mode="json")
    del stored["url"]
    assert TicketCard.model_validate(stored).url is None
