"""Deadlines as the merchant reads them, in Russian and English (Moscow time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from aiogram.utils.i18n import I18n

from bot.config import locales_dir
from handlers import texts
from services.quota import QuotaStatus

MSK = ZoneInfo("Europe/Moscow")
NOW = datetime(2026, 11, 25, 12, 0, tzinfo=MSK).astimezone(UTC)  # Wednesday


@pytest.fixture(scope="module")
def i18n() -> I18n:
    return I18n(path=locales_dir(), default_locale="ru", domain="messages")


def say(i18n: I18n, locale: str, due: datetime) -> str:
    with i18n.context(), i18n.use_locale(locale):
        return texts.deadline(NOW, due.astimezone(UTC), locale)


@pytest.mark.parametrize(
    ("due", "ru", "en"),
    [
        (NOW + timedelta(hours=3), "в течение 3 часов", "within 3 hours"),
        (NOW + timedelta(hours=1), "в течение 1 часа", "within 1 hour"),
        (datetime(2026, 11, 25, 19, 0, tzinfo=MSK), "сегодня до 19:00", "today by 19:00"),
        (datetime(2026, 11, 26, 12, 0, tzinfo=MSK), "завтра до 12:00", "tomorrow by 12:00"),
        (datetime(2026, 11, 30, 10, 0, tzinfo=MSK), "в понедельник до 10:00", "on Monday by 10:00"),
        (
            datetime(2026, 11, 28, 0, 0, tzinfo=MSK),
            "в пятницу до конца дня",
            "on Friday by the end of the day",
        ),
        (datetime(2026, 12, 9, 15, 0, tzinfo=MSK), "до 9 декабря, 15:00", "by 9 December, 15:00"),
        (NOW - timedelta(hours=2), "просрочено с 25.11 10:00", "overdue since 25.11 10:00"),
    ],
)
def test_deadline_phrases(i18n: I18n, due: datetime, ru: str, en: str) -> None:
    assert say(i18n, "ru", due) == ru
    assert say(i18n, "en", due) == en


def test_quota_line_shows_what_is_left_as_a_bar(i18n: I18n) -> None:
    status = QuotaStatus(
        plan="site",
        allowance=4,
        used=2,
        left=2,
        resets_at=datetime(2026, 11, 30, 21, 0, tzinfo=UTC),
        price_beyond=500,
    )
    with i18n.context(), i18n.use_locale("ru"):
        assert texts.quota_line(status) == (
            "🛠 Бесплатные доработки в этом месяце: ▰▰▱▱ осталось 2 из 4 (обновятся 1 декабря)."
        )
    with i18n.context(), i18n.use_locale("en"):
        assert texts.quota_line(status) == (
            "🛠 Free modifications this month: ▰▰▱▱ 2 of 4 left (renewed on 1 December)."
        )
        assert texts.money(500, "RUB", "en") == "500\xa0RUB"
    assert texts.money(500, "RUB", "ru") == "500\xa0₽"
