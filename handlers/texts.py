"""Texts shared by several features: deadlines and ticket notices. Wording only."""

from __future__ import annotations

from datetime import datetime
from html import escape

from aiogram.utils.i18n import get_i18n, ngettext
from aiogram.utils.i18n import gettext as _
from babel.dates import format_date
from babel.numbers import format_currency

from services.filing import Delayed, Registered
from services.quota import QuotaStatus
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


def money(amount: int, currency: str, locale: str) -> str:
    return format_currency(
        amount, currency, format="#,##0\xa0¤", locale=locale, currency_digits=False
    )


def quota_bar(left: int, allowance: int) -> str:
    """▰▰▱▱: what is left of the month's free modifications."""
    return "▰" * left + "▱" * (allowance - left)


def current_locale() -> str:
    return get_i18n().current_locale


def quota_line(quota: QuotaStatus) -> str:
    locale = current_locale()
    if quota.allowance == 0:
        return _("🛠 Your plan has no free modifications: each costs {price}.").format(
            price=money(quota.price_beyond, quota.currency, locale)
        )
    resets = format_date(quota.resets_at.astimezone(MOSCOW).date(), format="d MMMM", locale=locale)
    return _(
        "🛠 Free modifications this month: {bar} {left} of {allowance} left (renewed on {day})."
    ).format(
        bar=quota_bar(quota.left, quota.allowance),
        left=quota.left,
        allowance=quota.allowance,
        day=resets,
    )


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
    if notice.quota is not None:
        lines.append(quota_line(notice.quota))
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
