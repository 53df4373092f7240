"""Texts shared by several features: deadlines and ticket notices. Wording only."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from datetime import time as dt_time
from html import escape

from aiogram.utils.i18n import get_i18n, ngettext
from aiogram.utils.i18n import gettext as _
from babel.dates import format_date
from babel.numbers import format_currency, format_decimal

from handlers.rich_text import html_to_telegram, plain_to_telegram, split_telegram_html, text_of
from services.db.models import TicketStatus
from services.notices import (
    Assigned,
    Deleted,
    FilingRestricted,
    Merged,
    ModificationRecorded,
    Moved,
    PaidTerms,
    Registered,
    Reply,
    SlaWarning,
    StatusChanged,
    TicketCard,
    Unassigned,
)
from services.queue.base import BodyFormat
from services.quota import QuotaStatus
from services.sla import DeadlinePhrase, PhraseKind, describe_deadline
from services.working_calendar import MOSCOW

# Up to this far ahead a deadline reads as a duration ("within 3 hours").
WITHIN_HOURS = timedelta(hours=6)


def _on_weekday(weekday: int, day: str) -> str:
    return (
        _("on Monday, {day}"),
        _("on Tuesday, {day}"),
        _("on Wednesday, {day}"),
        _("on Thursday, {day}"),
        _("on Friday, {day}"),
        _("on Saturday, {day}"),
        _("on Sunday, {day}"),
    )[weekday].format(day=day)


def day_month(moment: date, locale: str) -> str:
    """ "11 December", «11 декабря»."""
    return format_date(moment, format="d MMMM", locale=locale)


def deadline(
    now: datetime, due: datetime, locale: str, *, within_hours_limit: timedelta = WITHIN_HOURS
) -> str:
    """A deadline as a merchant reads it. A duration carries no zone ("within 3 hours"); a time
    of day carries Moscow time ("tomorrow, 26 November, by 14:00 Moscow time"); a relative day
    always carries its date; the end of a day reads "by the end of 11 December"."""
    phrase: DeadlinePhrase = describe_deadline(
        now, due, MOSCOW, within_hours_limit=within_hours_limit
    )
    time = phrase.local.strftime("%H:%M")
    if phrase.kind is PhraseKind.OVERDUE:
        return _("overdue since {day}, {time} Moscow time").format(
            day=day_month(phrase.local.date(), locale), time=time
        )
    if phrase.kind is PhraseKind.WITHIN_HOURS:
        hours = phrase.hours or 1
        return ngettext("within {n} hour", "within {n} hours", hours).format(n=hours)
    day = day_month(phrase.day, locale)
    if phrase.kind is PhraseKind.DATE:
        if phrase.end_of_day:
            return _("by the end of {day}").format(day=day)
        return _("on {day} by {time} Moscow time").format(day=day, time=time)
    if phrase.kind is PhraseKind.TODAY:
        when = _("today, {day}").format(day=day)
    elif phrase.kind is PhraseKind.TOMORROW:
        when = _("tomorrow, {day}").format(day=day)
    else:
        when = _on_weekday(phrase.weekday, day)
    if phrase.end_of_day:
        return _("{when}, by the end of the day").format(when=when)
    return _("{when}, by {time} Moscow time").format(when=when, time=time)


def office_hours(opens: dt_time, closes: dt_time) -> str:
    """Said wherever a deadline counts working days only (the regulation: administrative
    requests «в рабочие дни (понедельник - пятница с 10:00 до 19:00 по московскому времени)»,
    «время ожидания обращения в выходные и нерабочие дни не учитывается»)."""
    return _(
        "🗓 Such requests are handled on working days, Monday to Friday, {opens}–{closes} "
        "Moscow time; days off are not counted in the deadline."
    ).format(opens=opens.strftime("%H:%M"), closes=closes.strftime("%H:%M"))


# --- counted words ------------------------------------------------------------------------------


def characters(n: int) -> str:
    """ "12,345 characters" / «12 345 символов»."""
    return ngettext("{n} character", "{n} characters", n).format(
        n=format_decimal(n, locale=current_locale())
    )


def minutes(n: int) -> str:
    return ngettext("{n} minute", "{n} minutes", n).format(n=n)


def time_left(left: timedelta) -> str:
    """ "2 h 15 min" / «2 ч 15 мин», whole minutes rounded up (never "0 min" before the end)."""
    total = max(1, -(-int(left.total_seconds()) // 60))
    hours, mins = divmod(total, 60)
    parts = []
    if hours:
        parts.append(_("{n} h").format(n=hours))
    if mins:
        parts.append(_("{n} min").format(n=mins))
    return " ".join(parts)


def requests(n: int) -> str:
    return ngettext("{n} request", "{n} requests", n).format(n=n)


def money(amount: int, currency: str, locale: str) -> str:
    return format_currency(
        amount, currency, format="#,##0\xa0¤", locale=locale, currency_digits=False
    )


def quota_bar(left: int, allowance: int) -> str:
    """▰▰▱▱: what is left of the month's free modifications."""
    return "▰" * left + "▱" * (allowance - left)


def plan_name(plan: str) -> str:
    """A plan's name as the merchant knows it (the plan codes of policies.toml)."""
    names = {"free": _("Free"), "site": _("Site"), "combo": _("Combo"), "premium": _("Premium")}
    return names.get(plan, plan)


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


def modification_recorded(notice: ModificationRecorded) -> str:
    """A specialist recorded a modification on the merchant's ticket: free or paid, and the
    quota left."""
    locale = current_locale()
    work = minutes(notice.minutes)
    subject = escape(notice.subject, quote=False)
    number = escape(notice.number)
    if notice.free:
        head = _(
            "🛠 A free modification was recorded on your request «{subject}» (#{number}): "
            "{minutes} of a specialist's work."
        ).format(subject=subject, number=number, minutes=work)
    elif notice.amount is not None:
        head = _(
            "🛠 A paid modification was recorded on your request «{subject}» (#{number}): "
            "{minutes} of a specialist's work, {price}."
        ).format(
            subject=subject,
            number=number,
            minutes=work,
            price=money(notice.amount, notice.currency, locale),
        )
    else:
        head = _(
            "🛠 A paid modification was recorded on your request «{subject}» (#{number}): "
            "{minutes} of a specialist's work."
        ).format(subject=subject, number=number, minutes=work)
    return "\n".join([head, quota_line(notice.quota)])


def filing_restricted() -> str:
    """/new and Send to a user a lead restricted (services/restrictions.py)."""
    return _(
        "Sorry, filing new requests from this account is restricted by support. Your earlier "
        "requests stay as they are. If you think this is a mistake, please write to support "
        "by e-mail."
    )


def restricted_notice(notice: FilingRestricted) -> str:
    return _(
        "Support has restricted filing new requests from this account. Reason: {reason}. "
        "Your earlier requests stay as they are; if you think this is a mistake, please write "
        "to support by e-mail."
    ).format(reason=escape(notice.reason, quote=False))


def restored_notice() -> str:
    return _("You may file requests again: the restriction is lifted. Thank you for waiting.")


def registered(notice: Registered, now: datetime, locale: str) -> str:
    lines = [
        _(
            "✅ Your request «{subject}» is registered in the official support queue under "
            "number <b>#{number}</b>."
        ).format(subject=escape(notice.subject, quote=False), number=escape(notice.number)),
        "",
        _("⏱ First reaction: {when}.").format(
            when=deadline(now, notice.first_reaction_due, locale)
        ),
    ]
    if notice.quota is not None:
        lines.append(quota_line(notice.quota))
    if notice.resolution_due is not None:
        lines.append(
            _("📅 Resolution: {when}.").format(when=deadline(now, notice.resolution_due, locale))
        )
    if notice.office_hours is not None:
        lines.append(office_hours(*notice.office_hours))
    if notice.paid is not None:
        lines.append(paid_line(notice.paid, locale))
    if notice.files:
        lines.append(
            ngettext(
                "📎 {n} file is attached to the request.",
                "📎 {n} files are attached to the request.",
                notice.files,
            ).format(n=notice.files)
        )
    for name in notice.missing_files:
        lines.append(
            _(
                "⚠️ The file «{name}» could not be read from Telegram and is not attached: "
                "please send it again in a reply to the specialist."
            ).format(name=escape(name, quote=False))
        )
    lines += [
        "",
        _(
            "Please do not file it again: a duplicate only delays the answer. "
            "The specialist's answers will come here."
        ),
    ]
    return "\n".join(lines)


def assigned(notice: Assigned, now: datetime, locale: str) -> str:
    """For a specialist: a ticket the queue assigned to them."""
    card = notice.card
    title = _("📌 Ticket <b>#{number}</b> is assigned to you: «{subject}».").format(
        number=escape(card.number), subject=escape(card.subject, quote=False)
    )
    return ticket_card(title, card, now, locale)


def unassigned(notice: Unassigned, now: datetime, locale: str) -> str:
    """For a lead: a new ticket nobody owns yet."""
    card = notice.card
    title = _("🆕 New ticket <b>#{number}</b>, not assigned yet: «{subject}».").format(
        number=escape(card.number), subject=escape(card.subject, quote=False)
    )
    return ticket_card(title, card, now, locale)


def ticket_card(title: str, card: TicketCard, now: datetime, locale: str) -> str:
    """A ticket as a specialist triages it, under ``title``."""
    lines = [title, ""]
    if card.store_domain is not None:
        lines.append(
            _("🏪 Store: {name} ({domain}), plan {plan}.").format(
                name=escape(card.store_name or card.store_domain, quote=False),
                domain=escape(card.store_domain, quote=False),
                plan=plan_name(card.plan) if card.plan else "—",
            )
        )
    else:
        lines.append(_("🏪 No store is linked to the request."))
    lines.append(
        _("🗂 {request_type} → {category}.").format(
            request_type=escape(card.request_type, quote=False),
            category=escape(card.category, quote=False),
        )
    )
    if card.files:
        lines.append(ngettext("📎 {n} file.", "📎 {n} files.", card.files).format(n=card.files))
    if card.first_reaction_due is not None:
        # A specialist plans by the clock: the time itself, and what is left of it now.
        due = card.first_reaction_due
        when = deadline(now, due, locale, within_hours_limit=timedelta(0))
        if due > now:
            lines.append(
                _("⏱ First reaction due {when} ({left} left).").format(
                    when=when, left=time_left(due - now)
                )
            )
        else:
            lines.append(_("⏱ First reaction: {when}.").format(when=when))
    if card.url:
        lines.append(
            # The same words as the SLA warning's link: one phrase for one thing.
            _('<a href="{url}">Open the request in the queue</a>').format(url=escape(card.url))
        )
    if card.excerpt:
        lines += ["", f"<blockquote>{escape(card.excerpt, quote=False)}</blockquote>"]
    return "\n".join(lines)


def paid_line(paid: PaidTerms, locale: str) -> str:
    """The merchant's agreement to pay, as the registration notice repeats it."""
    return _("💳 You agreed to pay {price} for this modification ({when}, Moscow time).").format(
        price=money(paid.amount, paid.currency, locale),
        when=paid.at.astimezone(MOSCOW).strftime("%d.%m.%Y %H:%M"),
    )


def accepted() -> str:
    return _(
        "📨 Your request is accepted and is being registered in the official support queue. "
        "I will send its number in a moment."
    )


def delayed(subject: str) -> str:
    return _(
        "📨 Your request «{subject}» is saved, but the support queue is not answering right now. "
        "I will register it as soon as the queue is back and send you its number; there is no "
        "need to file it again. The response time counts from registration."
    ).format(subject=escape(subject, quote=False))


def refused(subject: str) -> str:
    return _(
        "⚠️ Your request «{subject}» is saved, but the support queue refused to register it "
        "because of a problem on our side. Support has been alerted and will register it as soon "
        "as it is fixed; I will send you its number then. There is no need to file it again."
    ).format(subject=escape(subject, quote=False))


# --- what specialists did in the queue (services/sync.py) -----------------------------------------

# Telegram takes 4096 characters a message (counted in UTF-16 code units); keep clear of it.
MESSAGE_LIMIT = 4000


def _units(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def split_escaped(text: str, first_budget: int, budget: int = MESSAGE_LIMIT) -> list[str]:
    """`text` HTML-escaped and cut into pieces that fit: the first within `first_budget`, the
    rest within `budget`. Cuts fall between lines where possible, never inside an entity."""
    pieces = split_telegram_html(plain_to_telegram(text), budget, first_limit=first_budget)
    return [piece.strip("\n") for piece in pieces if piece.strip()] or [""]


def split_rich(html: str, first_budget: int, budget: int = MESSAGE_LIMIT) -> list[str]:
    """Telegram HTML cut into pieces that fit (handlers/rich_text.py); blank pieces dropped."""
    pieces = split_telegram_html(html, budget, first_limit=first_budget)
    return [piece for piece in pieces if text_of(piece).strip()] or [""]


def _ticket(notice: Reply | StatusChanged | Moved | Merged | Deleted) -> dict[str, str]:
    return {"number": escape(notice.number), "subject": escape(notice.subject, quote=False)}


def queue_reply(notice: Reply) -> list[str]:
    """A specialist's reply: a header and the text, over as many messages as it takes."""
    header = _("💬 Support replied on request <b>#{number}</b> «{subject}»:").format(
        **_ticket(notice)
    )
    first_budget = MESSAGE_LIMIT - _units(header) - 2
    if notice.body_format is BodyFormat.HTML:
        body = html_to_telegram(notice.body)
        if not text_of(body).strip():
            return [header]
        pieces = split_rich(body, first_budget)
    else:
        if not notice.body.strip():
            return [header]
        pieces = split_escaped(notice.body.strip(), first_budget)
    return [header + "\n\n" + pieces[0], *pieces[1:]]


def attachment_too_large(filename: str, size: int) -> str:
    return _(
        "📎 The file «{name}» ({size} MB) is larger than Telegram allows and was not sent."
    ).format(name=escape(filename, quote=False), size=f"{size / 1_000_000:.0f}")


_INACTIVE = (TicketStatus.RESOLVED, TicketStatus.REJECTED)


def status_changed(notice: StatusChanged) -> str:
    values = _ticket(notice)
    new, old = notice.new, notice.old
    if new is TicketStatus.RESOLVED:
        return "\n\n".join(
            (
                _("✅ Request <b>#{number}</b> «{subject}» is resolved.").format(**values),
                _(
                    "If the problem is still there, file a new request with /new and mention "
                    "number #{number}."
                ).format(**values),
            )
        )
    if new is TicketStatus.REJECTED:
        return _("❌ Request <b>#{number}</b> «{subject}» was declined by support.").format(
            **values
        )
    if old in _INACTIVE and new in (TicketStatus.REGISTERED, TicketStatus.OPEN):
        return _("🔄 Request <b>#{number}</b> «{subject}» is open again.").format(**values)
    if new is TicketStatus.OPEN:
        return _("🛠 Request <b>#{number}</b> «{subject}» is being worked on.").format(**values)
    if new is TicketStatus.WAITING:
        return _("⏸ Work on request <b>#{number}</b> «{subject}» is on hold.").format(**values)
    return _("ℹ️ Request <b>#{number}</b> «{subject}» is now: {status}.").format(
        **values, status=escape(notice.label or (new.value if new else "?"), quote=False)
    )


def ticket_moved(notice: Moved) -> str:
    """The ticket went to another queue: support's answers may no longer come here."""
    values = _ticket(notice)
    if notice.queue:
        return _(
            "📦 Request <b>#{number}</b> «{subject}» was handed over to another team "
            "(queue «{queue}»). Their answers may no longer come here; if you need to add "
            "something, file a new request with /new and mention number #{number}."
        ).format(**values, queue=escape(notice.queue, quote=False))
    return _(
        "📦 Request <b>#{number}</b> «{subject}» was handed over to another team. Their "
        "answers may no longer come here; if you need to add something, file a new request "
        "with /new and mention number #{number}."
    ).format(**values)


def ticket_merged(notice: Merged) -> str:
    """The ticket was merged: it goes on under the surviving number."""
    return _(
        "🔗 Request <b>#{number}</b> «{subject}» was merged into request <b>#{into}</b>: "
        "it goes on there, and the answers will come here as before."
    ).format(**_ticket(notice), into=escape(notice.into))


def ticket_deleted(notice: Deleted) -> str:
    return _(
        "🗑 Request <b>#{number}</b> «{subject}» was removed from the support queue. If the "
        "problem is still there, file a new request with /new."
    ).format(**_ticket(notice))


# --- to staff -----------------------------------------------------------------------------------


def _span(delta: timedelta) -> str:
    """ "2 hours 5 minutes", rounded up to the minute (at least one)."""
    total = max(1, -(-int(delta.total_seconds()) // 60))
    hours, mins = divmod(total, 60)
    parts = []
    if hours:
        parts.append(ngettext("{n} hour", "{n} hours", hours).format(n=hours))
    if mins or not hours:
        parts.append(minutes(mins))
    return " ".join(parts)


def sla_warning(notice: SlaWarning, now: datetime) -> str:
    """To the ticket's specialist or the leads: the first-reaction deadline is near or passed."""
    values = {
        "number": escape(notice.number),
        "subject": escape(notice.subject, quote=False),
        "due": notice.due.astimezone(MOSCOW).strftime("%d.%m.%Y %H:%M"),
    }
    if notice.breached:
        head = _(
            "🔥 Request <b>#{number}</b> «{subject}» has had no first reaction, and its "
            "deadline ({due} Moscow time) has passed: overdue by {span}."
        ).format(**values, span=_span(now - notice.due))
    else:
        head = _(
            "⏰ Request <b>#{number}</b> «{subject}» has had no first reaction yet: "
            "{span} left until its deadline, {due} Moscow time."
        ).format(**values, span=_span(notice.due - now))
    lines = [head]
    if notice.store:
        lines.append(_("Store: {store}").format(store=escape(notice.store, quote=False)))
    if notice.url:
        lines.append(
            _('<a href="{url}">Open the request in the queue</a>').format(url=escape(notice.url))
        )
    return "\n".join(lines)
