"""What the merchant reads about their own messages on a ticket, in Russian and English, and
what the specialist reads of them in the queue."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import pytest
from aiogram.utils.i18n import I18n

from bot.config import locales_dir
from handlers import reply_texts
from handlers.notices import TextPart, render
from services.db.models import ReplyKind, TicketStatus
from services.notices import ReplyAdded, ReplyDelayed, ReplyRefused
from services.replies import (
    CORRECTION_HEADER,
    AcceptedReply,
    EmptyReply,
    NotReopenable,
    NotYourTicket,
    TicketClosed,
    TooManyFiles,
    actions,
    compose,
)

T = TypeVar("T")
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def i18n() -> I18n:
    return I18n(path=locales_dir(), default_locale="ru", domain="messages")


def _say(i18n: I18n, locale: str, render_: Callable[[], T]) -> T:
    with i18n.context(), i18n.use_locale(locale):
        return render_()


def _added(action: ReplyKind, files: int = 0) -> ReplyAdded:
    return ReplyAdded(number="147", subject="Оплата <1>", action=action, files=files)


@pytest.mark.parametrize(
    ("notice", "ru", "en"),
    [
        (
            _added(ReplyKind.REPLY),
            "✅ Добавлено к обращению <b>#147</b> «Оплата &lt;1&gt;».",
            "✅ Added to request <b>#147</b> «Оплата &lt;1&gt;».",
        ),
        (_added(ReplyKind.REPLY, 1), "С 1 файлом.", "With 1 file."),
        (_added(ReplyKind.REPLY, 3), "С 3 файлами.", "With 3 files."),
        (_added(ReplyKind.CORRECTION), "исправление добавлено", "correction is added"),
        (_added(ReplyKind.CLOSE), "закрыто", "is closed"),
        (_added(ReplyKind.REOPEN), "открыто снова", "is reopened"),
        (
            ReplyDelayed(number="147", subject="s", action=ReplyKind.REPLY),
            "сейчас не отвечает",
            "not answering right now",
        ),
        (
            ReplyRefused(number="147", subject="s", action=ReplyKind.REPLY),
            "Поддержка уже предупреждена",
            "Support has been alerted",
        ),
    ],
)
def test_confirmations_read_in_both_languages(
    i18n: I18n, notice: ReplyAdded | ReplyDelayed | ReplyRefused, ru: str, en: str
) -> None:
    for locale, expected in (("ru", ru), ("en", en)):
        [part] = _say(i18n, locale, lambda: render(notice, (), now=NOW))
        assert isinstance(part, TextPart)
        assert expected in part.html


def test_the_handlers_answer_says_whether_the_ticket_is_registered_yet(i18n: I18n) -> None:
    waiting = AcceptedReply(1, 2, ReplyKind.REPLY, None, "Тема", duplicate=False, done=False)
    sent = AcceptedReply(1, 2, ReplyKind.REPLY, "147", "Тема", duplicate=False, done=False)
    assert "ещё регистрируется" in _say(i18n, "ru", lambda: reply_texts.received(waiting))
    assert "#147" in _say(i18n, "en", lambda: reply_texts.received(sent))


@pytest.mark.parametrize(
    ("error", "ru", "en"),
    [
        (NotYourTicket(5), "Не нашёл такого обращения", "I could not find that request"),
        (TicketClosed(5, TicketStatus.RESOLVED), "уже решено", "already resolved"),
        (TicketClosed(5, TicketStatus.REJECTED), "обращение отклонено", "request is rejected"),
        (NotReopenable(5, TicketStatus.REJECTED), "Отклонённое", "A rejected request"),
        (NotReopenable(5, TicketStatus.OPEN), "не закрыто", "not closed"),
        (EmptyReply("x"), "Нечего добавить", "nothing to add"),
        (TooManyFiles(11), "не больше 10 файлов", "at most 10 files"),
    ],
)
def test_refusals_read_in_both_languages(i18n: I18n, error: Exception, ru: str, en: str) -> None:
    assert ru in _say(i18n, "ru", lambda: reply_texts.not_accepted(error))  # type: ignore[arg-type]
    assert en in _say(i18n, "en", lambda: reply_texts.not_accepted(error))  # type: ignore[arg-type]


def test_a_correction_says_so_to_the_specialist_and_names_unreadable_files() -> None:
    body = compose(ReplyKind.CORRECTION, "Ошибка 502", ["huge.zip"])
    assert body.startswith(CORRECTION_HEADER)
    assert "Ошибка 502" in body and "huge.zip" in body
    assert compose(ReplyKind.REPLY, "Текст") == "Текст"


def test_what_a_merchant_may_do_by_status() -> None:
    assert actions(TicketStatus.PENDING) == {ReplyKind.REPLY, ReplyKind.CORRECTION, ReplyKind.CLOSE}
    assert actions(TicketStatus.WAITING) == actions(TicketStatus.OPEN)
    assert actions(TicketStatus.RESOLVED) == {ReplyKind.REOPEN}
    assert actions(TicketStatus.REJECTED) == frozenset()
