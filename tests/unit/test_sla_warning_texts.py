"""What a specialist (or a lead) reads when a ticket nears or passes its first-reaction deadline
(services/sla_watch.py), in Russian and English; and where the queue's web interface shows it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from aiogram.utils.i18n import I18n

from bot.config import locales_dir
from handlers.notices import TextPart, render
from services.notices import SlaWarning
from services.queue.builtin import BuiltinQueue
from services.queue.rt import RequestTrackerQueue

DUE = datetime(2026, 11, 26, 11, 5, tzinfo=UTC)  # 14:05 in Moscow


@pytest.fixture(scope="module")
def i18n() -> I18n:
    return I18n(path=locales_dir(), default_locale="ru", domain="messages")


def _text(i18n: I18n, locale: str, notice: SlaWarning, now: datetime) -> str:
    with i18n.context(), i18n.use_locale(locale):
        parts = render(notice, [], now=now)
    assert len(parts) == 1 and isinstance(parts[0], TextPart)
    # The merchant's Reply button is not the staff's: the specialist's actions instead.
    keyboard = parts[0].keyboard
    assert keyboard is not None
    assert all(
        (b.callback_data or "").startswith("sa:") for r in keyboard.inline_keyboard for b in r
    )
    return parts[0].html


def _warning(breached: bool, url: str | None = "https://rt.example/Ticket/Display.html?id=42"):  # type: ignore[no-untyped-def]
    return SlaWarning(
        number="42",
        subject="Оплата <1>",
        store="Anna's shop (shop.example.com)",
        due=DUE,
        breached=breached,
        url=url,
    )


def test_warning_at_80_percent_says_the_deadline_and_the_time_left(i18n: I18n) -> None:
    now = DUE - timedelta(hours=2, minutes=4, seconds=30)
    ru = _text(i18n, "ru", _warning(False), now)
    en = _text(i18n, "en", _warning(False), now)
    assert "<b>#42</b> «Оплата &lt;1&gt;»" in ru and "<b>#42</b> «Оплата &lt;1&gt;»" in en
    assert "26.11.2026 14:05" in ru and "26.11.2026 14:05" in en
    assert "осталось: 2 часа 5 минут" in ru
    assert "2 hours 5 minutes left" in en
    assert "Магазин: Anna's shop (shop.example.com)" in ru
    assert "Store: Anna's shop (shop.example.com)" in en
    assert '<a href="https://rt.example/Ticket/Display.html?id=42">' in en


def test_warning_at_breach_says_how_long_overdue(i18n: I18n) -> None:
    now = DUE + timedelta(minutes=1)
    assert "Просрочка: 1 минута" in _text(i18n, "ru", _warning(True, url=None), now)
    en = _text(i18n, "en", _warning(True, url=None), now)
    assert "overdue by 1 minute" in en and "href" not in en


def test_the_ticket_link_is_the_queue_adapters_business() -> None:
    rt = RequestTrackerQueue("https://rt.example/", token="t", account="frontdesk")
    assert rt.ticket_url("42") == "https://rt.example/Ticket/Display.html?id=42"
    assert BuiltinQueue.ticket_url(None, "42") is None  # type: ignore[arg-type]
