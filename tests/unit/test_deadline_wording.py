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
        # A duration carries no zone.
        (NOW + timedelta(hours=3), "в течение 3 часов", "within 3 hours"),
        (NOW + timedelta(hours=1), "в течение 1 часа", "within 1 hour"),
        # A time of day carries Moscow time; a relative day always carries its date.
        (
            datetime(2026, 11, 25, 19, 0, tzinfo=MSK),
            "сегодня, 25 ноября, до 19:00 по московскому времени",
            "today, 25 November, by 19:00 Moscow time",
        ),
        (
            datetime(2026, 11, 26, 12, 0, tzinfo=MSK),
            "завтра, 26 ноября, до 12:00 по московскому времени",
            "tomorrow, 26 November, by 12:00 Moscow time",
        ),
        (
            datetime(2026, 11, 30, 10, 0, tzinfo=MSK),
            "в понедельник, 30 ноября, до 10:00 по московскому времени",
            "on Monday, 30 November, by 10:00 Moscow time",
        ),
        (
            datetime(2026, 12, 1, 10, 0, tzinfo=MSK),
            "во вторник, 1 декабря, до 10:00 по московскому времени",
            "on Tuesday, 1 December, by 10:00 Moscow time",
        ),
        (
            datetime(2026, 11, 28, 0, 0, tzinfo=MSK),
            "в пятницу, 27 ноября, до конца дня",
            "on Friday, 27 November, by the end of the day",
        ),
        (
            datetime(2026, 11, 27, 0, 0, tzinfo=MSK),
            "завтра, 26 ноября, до конца дня",
            "tomorrow, 26 November, by the end of the day",
        ),
        (
            datetime(2026, 12, 9, 15, 0, tzinfo=MSK),
            "9 декабря до 15:00 по московскому времени",
            "on 9 December by 15:00 Moscow time",
        ),
        # Not «до 11 декабря, конца дня» nor "by 11 December, the end of the day".
        (
            datetime(2026, 12, 12, 0, 0, tzinfo=MSK),
            "до конца дня 11 декабря",
            "by the end of 11 December",
        ),
        (
            NOW - timedelta(hours=2),
            "просрочено с 25 ноября, 10:00 по московскому времени",
            "overdue since 25 November, 10:00 Moscow time",
        ),
    ],
)
def test_deadline_phrases(i18n: I18n, due: datetime, ru: str, en: str) -> None:
    assert say(i18n, "ru", due) == ru
    assert say(i18n, "en", due) == en


def test_no_moscow_time_after_a_duration_and_the_date_with_every_relative_day(
    i18n: I18n,
) -> None:
    for minutes in range(1, 60 * 24 * 10, 37):
        due = NOW + timedelta(minutes=minutes)
        for locale in ("ru", "en"):
            phrase = say(i18n, locale, due)
            zone = "по московскому времени" if locale == "ru" else "Moscow time"
            duration = phrase.startswith(("в течение", "within"))
            assert duration == (
                zone not in phrase and "конца дня" not in phrase and "end of" not in phrase
            ), phrase
            if not duration:
                day = due.astimezone(MSK) - timedelta(minutes=1)  # the end of a day: the day before
                assert str(day.day) in phrase, phrase


PLURALS = {
    "characters": {
        1: "1 символ",
        2: "2 символа",
        5: "5 символов",
        11: "11 символов",
        21: "21 символ",
    },
    "requests": {
        1: "1 обращение",
        2: "2 обращения",
        5: "5 обращений",
        11: "11 обращений",
        21: "21 обращение",
    },
    "minutes": {1: "1 минута", 2: "2 минуты", 5: "5 минут", 11: "11 минут", 21: "21 минута"},
}


@pytest.mark.parametrize("word", sorted(PLURALS))
def test_counted_words_take_the_russian_plural_forms(i18n: I18n, word: str) -> None:
    for n, expected in PLURALS[word].items():
        with i18n.context(), i18n.use_locale("ru"):
            assert getattr(texts, word)(n) == expected
        with i18n.context(), i18n.use_locale("en"):
            assert getattr(texts, word)(n).startswith(f"{n} ")
    with i18n.context(), i18n.use_locale("en"):
        assert texts.characters(1) == "1 character" and texts.characters(21) == "21 characters"


@pytest.mark.parametrize(
    ("hours", "ru", "en"),
    [
        (1, "в течение 1 часа", "within 1 hour"),
        (2, "в течение 2 часов", "within 2 hours"),
        (5, "в течение 5 часов", "within 5 hours"),
        (11, "в течение 11 часов", "within 11 hours"),
        (21, "в течение 21 часа", "within 21 hours"),
    ],
)
def test_hours_take_the_russian_plural_forms(i18n: I18n, hours: int, ru: str, en: str) -> None:
    due = NOW + timedelta(hours=hours)
    with i18n.context(), i18n.use_locale("ru"):
        assert texts.deadline(NOW, due, "ru", within_hours_limit=timedelta(hours=24)) == ru
    with i18n.context(), i18n.use_locale("en"):
        assert texts.deadline(NOW, due, "en", within_hours_limit=timedelta(hours=24)) == en


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
