"""Texts shared by several features: deadlines and ticket notices. Wording only."""

from __future__ import annotations

from datetime import datetime
from html import escape

from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext
from babel.dates import format_date

from services.filing import Delayed, Registered
from services.sla import DeadlinePhrase, PhraseKind, describe_deadline
from services.working_calendar import MOSCOW


def _on_weekday(weekday: int) -> str:
    return (
        _("on Monday"),
        _("on Tuesday"),
        _("on Wednesday"),
        _("on Thursday"),
        _("on Friday"),
        _("on Saturday"),
        _("on Sunday"),
    )[weekday]


def deadline(now: datetime, due: datetime, locale: str) -> str:
    """ "within 3 hours", "tomorrow by 14:00", "on Monday by 19:00", "by 5 December, 10:00"."""
    phrase: DeadlinePhrase = describe_deadline(now, due, MOSCOW)
    time = _("the end of the day") if phrase.end_of_day else phrase.local.strftime("%H:%M")
    if phrase.kind is PhraseKind.OVERDUE:
        return _("overdue since {time}").format(time=phrase.local.strftime("%d.%m %H:%M"))
    if phrase.kind is PhraseKind.WITHIN_HOURS:
        hours = phrase.hours or 1
        return ngettext("within {n} hour", "within {n} hours", hours).format(n=hours)
    if phrase.kind is PhraseKind.TODAY:
        return _("today by {time}").format(time=time)
    if phrase.kind is PhraseKind.TOMORROW:
        return _("tomorrow by {time}").format(time=time)
    if phrase.kind is PhraseKind.WEEKDAY:
        return _("{on_weekday} by {time}").format(on_weekday=_on_weekday(phrase.weekday), time=time)
    day = format_date(phrase.day, format="d MMMM", locale=locale)
    return _("by {day}, {time}").format(day=day, time=time)


def registered(notice: Registered, now: datetime, locale: str) -> str:
    lines = [
        _(
            "✅ Your request «{subject}» is registered in the official support queue under "
            "number <b>#{number}</b>."
        ).format(
            subject=escape(notice.subject, quote=False), number=escape(notice.queue_ticket_id)
        ),
        "",
        _("⏱ First reaction: {when} (Moscow time).").format(
            when=deadline(now, notice.first_reaction_due, locale)
        ),
    ]
    if notice.resolution_due is not None:
        lines.append(
            _("📅 Resolution: {when} (Moscow time).").format(
                when=deadline(now, notice.resolution_due, locale)
            )
        )
    lines += [
        "",
        _(
            "Please do not file it again: a duplicate only delays the answer. "
            "The specialist's answers will come here."
        ),
    ]
    return "\n".join(lines)


def delayed(notice: Delayed) -> str:
    return _(
        "📨 Your request «{subject}» is saved, but the support queue is not answering right now. "
        "I will register it as soon as the queue is back and send you its number; there is no "
        "need to file it again. The response time counts from registration."
    ).format(subject=escape(notice.subject, quote=False))
