"""Which queue transactions become events for the merchant, and how statuses map."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import TypeVar

import pytest
from aiogram.utils.i18n import I18n

from bot.config import locales_dir
from handlers import texts
from handlers.texts import MESSAGE_LIMIT, split_escaped
from services.db.models import TicketStatus
from services.notices import Deleted, Merged, Moved, Reply, StatusChanged
from services.queue.base import (
    BodyFormat,
    DeletedEvent,
    MergedEvent,
    MovedEvent,
    OwnerEvent,
    ReplyEvent,
    StatusEvent,
)
from services.queue.rt import frontdesk_status, rt_status
from services.sync import EventKind, SyncEvent, event_kind

T = TypeVar("T")

AT = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
BASE = ("1205", "147", AT, "ivan")


@pytest.mark.parametrize(
    ("event", "kind"),
    [
        (ReplyEvent(*BASE, by_support=True), EventKind.REPLY),
        (ReplyEvent(*BASE, by_support=False), EventKind.NOT_SUPPORT),
        (StatusEvent(*BASE, old=None, new=TicketStatus.OPEN), EventKind.STATUS),
        (OwnerEvent(*BASE, old=None, new="ivan"), EventKind.OWNER),
        (MovedEvent(*BASE, queue="General"), EventKind.MOVED),
        (MergedEvent(*BASE, into="150"), EventKind.MERGED),
        (DeletedEvent(*BASE), EventKind.DELETED),
    ],
)
def test_what_an_event_is_recorded_as(event: ReplyEvent, kind: EventKind) -> None:
    assert event_kind(event) is kind


def test_event_key_names_queue_ticket_and_event() -> None:
    assert SyncEvent("rt", ReplyEvent(*BASE, by_support=True)).key == "rt:147:1205"


@pytest.mark.parametrize(
    ("rt", "status"),
    [
        ("new", TicketStatus.REGISTERED),
        ("open", TicketStatus.OPEN),
        ("stalled", TicketStatus.WAITING),
        ("resolved", TicketStatus.RESOLVED),
        ("Resolved", TicketStatus.RESOLVED),
        ("rejected", TicketStatus.REJECTED),
        ("deleted", None),  # a deletion is an event of its own, not a status
        ("awaiting-vendor", None),  # a custom lifecycle's status leaves ours as it was
        (None, None),
    ],
)
def test_rt_statuses_map_to_frontdesks(rt: str | None, status: TicketStatus | None) -> None:
    assert frontdesk_status(rt) is status
    if status is not None:
        assert frontdesk_status(rt_status(status)) is status


def test_long_reply_is_cut_between_lines_and_escaped() -> None:
    line = "Шаг <1> & ещё: " + "x" * 60 + "\n"
    text = line * 200  # about 15,000 characters before escaping
    pieces = split_escaped(text, first_budget=3000)
    assert len(pieces) > 3
    assert len(pieces[0].encode("utf-16-le")) // 2 <= 3000
    assert all(len(p.encode("utf-16-le")) // 2 <= MESSAGE_LIMIT for p in pieces)
    assert all("<1>" not in p and "&lt;1&gt;" in p for p in pieces)
    joined = "\n".join(pieces)
    assert joined.count("&lt;1&gt;") == 200


def test_one_huge_line_is_cut_anywhere_but_never_inside_an_entity() -> None:
    pieces = split_escaped("&" * 10_000, first_budget=MESSAGE_LIMIT)
    assert "".join(pieces) == "&amp;" * 10_000
    assert all(p.count("&") == p.count("&amp;") for p in pieces)


def test_short_text_is_one_piece() -> None:
    assert split_escaped("Готово <b>", first_budget=100) == ["Готово &lt;b&gt;"]


# --- what the merchant reads, in Russian and English ----------------------------------------------


@pytest.fixture(scope="module")
def i18n() -> I18n:
    return I18n(path=locales_dir(), default_locale="ru", domain="messages")


REF = {"number": "147", "subject": "Оплата <1>"}


def _say(i18n: I18n, locale: str, render: Callable[[], T]) -> T:
    with i18n.context(), i18n.use_locale(locale):
        return render()


OPEN, NEW, HOLD, DONE, NO = (
    TicketStatus.OPEN,
    TicketStatus.REGISTERED,
    TicketStatus.WAITING,
    TicketStatus.RESOLVED,
    TicketStatus.REJECTED,
)


@pytest.mark.parametrize(
    ("old", "new", "ru", "en"),
    [
        (NEW, OPEN, "🛠 Обращение {t} взято в работу.", "🛠 Request {t} is being worked on."),
        (
            OPEN,
            HOLD,
            "⏸ Работа над обращением {t} приостановлена.",
            "⏸ Work on request {t} is on hold.",
        ),
        (OPEN, DONE, "✅ Обращение {t} решено.", "✅ Request {t} is resolved."),
        (
            OPEN,
            NO,
            "❌ Служба поддержки отклонила обращение {t}.",
            "❌ Request {t} was declined by support.",
        ),
        (DONE, OPEN, "🔄 Обращение {t} снова открыто.", "🔄 Request {t} is open again."),
        (
            OPEN,
            None,
            "ℹ️ Статус обращения {t}: &lt;vendor&gt;.",
            "ℹ️ Request {t} is now: &lt;vendor&gt;.",
        ),
    ],
)
def test_status_change_wording(
    i18n: I18n, old: TicketStatus, new: TicketStatus | None, ru: str, en: str
) -> None:
    notice = StatusChanged(**REF, old=old, new=new, label="<vendor>" if new is None else new.value)
    ticket = "<b>#147</b> «Оплата &lt;1&gt;»"  # the subject is the merchant's text: escaped
    for locale, expected in (("ru", ru), ("en", en)):
        said = _say(i18n, locale, lambda: texts.status_changed(notice))
        assert said.splitlines()[0] == expected.format(t=ticket)


def test_resolution_tells_what_to_do_if_the_problem_is_still_there(i18n: I18n) -> None:
    notice = StatusChanged(
        **REF, old=TicketStatus.OPEN, new=TicketStatus.RESOLVED, label="resolved"
    )
    assert _say(i18n, "ru", lambda: texts.status_changed(notice)).endswith(
        "создайте новое обращение командой /new и укажите номер #147."
    )
    assert _say(i18n, "en", lambda: texts.status_changed(notice)).endswith(
        "file a new request with /new and mention number #147."
    )


def test_reply_wording_escapes_the_specialists_text(i18n: I18n) -> None:
    notice = Reply(**REF, author="ivan", body="Исправлено: <b> & </b>\n\nПроверьте.", sent_at=AT)
    assert _say(i18n, "ru", lambda: texts.queue_reply(notice)) == [
        "💬 Ответ поддержки по обращению <b>#147</b> «Оплата &lt;1&gt;»:\n\n"
        "Исправлено: &lt;b&gt; &amp; &lt;/b&gt;\n\nПроверьте."
    ]
    assert _say(i18n, "en", lambda: texts.queue_reply(notice))[0].startswith(
        "💬 Support replied on request <b>#147</b> «Оплата &lt;1&gt;»:\n\n"
    )


def test_long_reply_takes_several_messages_with_the_header_on_the_first(i18n: I18n) -> None:
    notice = Reply(**REF, author="ivan", body=("Строка ответа.\n" * 800).strip(), sent_at=AT)
    messages = _say(i18n, "ru", lambda: texts.queue_reply(notice))
    assert len(messages) == 4
    assert messages[0].startswith("💬 Ответ поддержки") and "💬" not in "".join(messages[1:])
    assert all(len(m.encode("utf-16-le")) // 2 <= MESSAGE_LIMIT for m in messages)
    assert sum(m.count("Строка ответа.") for m in messages) == 800


def test_too_large_file_is_named(i18n: I18n) -> None:
    assert _say(i18n, "ru", lambda: texts.attachment_too_large("дамп.sql", 73_400_000)) == (
        "📎 Файл «дамп.sql» (73 МБ) больше, чем позволяет Telegram, и не был отправлен."
    )


def test_html_reply_is_rendered_with_its_link(i18n: I18n) -> None:
    html = '<p>Проверьте: <a href="https://example.com/mail">настройки писем</a>.</p>'
    notice = Reply(**REF, author="ivan", body=html, sent_at=AT, body_format=BodyFormat.HTML)
    [message] = _say(i18n, "ru", lambda: texts.queue_reply(notice))
    assert message.endswith(
        '\n\nПроверьте: <a href="https://example.com/mail">настройки писем</a>.'
    )


def test_where_the_ticket_went_is_told(i18n: I18n) -> None:
    merged = _say(i18n, "en", lambda: texts.ticket_merged(Merged(**REF, into="150")))
    assert "merged into request <b>#150</b>" in merged and "<b>#147</b>" in merged
    moved = _say(i18n, "en", lambda: texts.ticket_moved(Moved(**REF, queue="Billing <2>")))
    assert "«Billing &lt;2&gt;»" in moved
    assert "another team" in _say(i18n, "en", lambda: texts.ticket_moved(Moved(**REF, queue=None)))
    assert "removed" in _say(i18n, "en", lambda: texts.ticket_deleted(Deleted(**REF)))
