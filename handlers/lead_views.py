"""/queue and /stats: what a lead watches (services/lead_views.py).

Staff commands like the others (handlers/staff.py): anyone not on the staff gets nothing
staff-only (`StaffOnly` lets the command fall through to "I do not know the command", a button to
the stale-button answer). A specialist is told politely that these views are the leads'. The
role is read again from the registry on every command and every page button, so a lead demoted
by a new staff link cannot page on.
"""

from __future__ import annotations

import logging
from datetime import datetime
from html import escape

from aiogram import Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command
from aiogram.filters.callback_data import CallbackData
from aiogram.types import CallbackQuery, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext
from aiogram.utils.keyboard import InlineKeyboardBuilder
from babel.dates import format_date
from sqlalchemy.ext.asyncio import AsyncSession

from handlers import texts
from handlers.staff import StaffOnly
from services import lead_views, staff
from services.db.base import utcnow
from services.db.models import StaffRole
from services.lead_views import LeadStats, PeriodStats, QueueItem, QueuePage
from services.regulation import Regulation
from services.working_calendar import MOSCOW

logger = logging.getLogger(__name__)
router = Router(name=__name__)

# A category's label is cut to this in a /queue line (the catalog's are shorter).
CATEGORY_CHARS = 40


class LeadQueueCallback(CallbackData, prefix="lq"):
    page: int  # 0-based; untrusted: the service clamps it


def _leads_only() -> str:
    return _("These views are for leads only.")


def _is_lead(member: staff.Staff) -> bool:
    return member.role is StaffRole.LEAD


# --- /queue -------------------------------------------------------------------------------------


def _category(regulation: Regulation, item: QueueItem, locale: str) -> str:
    found = regulation.catalog.category(item.request_type, item.category)
    return lead_views.shorten(found.label.get(locale) if found else item.category, CATEGORY_CHARS)


def _deadline(item: QueueItem, now: datetime) -> str:
    due = item.first_reaction_due
    if due is None:
        return _("⏱ No first-reaction deadline.")
    at = due.astimezone(MOSCOW).strftime("%d.%m %H:%M")
    if item.reacted:
        return _("✅ First reaction given (deadline {due} Moscow time).").format(due=at)
    if due <= now:
        return _("🔥 Deadline {due} Moscow time: overdue by {late}.").format(
            due=at, late=texts.time_left(now - due)
        )
    mark = "⏰" if item.at_risk else "⏱"
    return _("{mark} Deadline {due} Moscow time: {left} left.").format(
        mark=mark, due=at, left=texts.time_left(due - now)
    )


def queue_line(item: QueueItem, regulation: Regulation, now: datetime, locale: str) -> str:
    owner = (
        _("👤 {owner}").format(owner=escape(item.owner, quote=False))
        if item.owner
        else _("👤 unassigned")
    )
    return "\n".join(
        [
            "<b>#{number}</b> · {store} · {category}".format(
                number=escape(item.number),
                store=escape(item.store, quote=False) if item.store else _("no store"),
                category=escape(_category(regulation, item, locale), quote=False),
            ),
            f"«{escape(item.subject, quote=False)}» · {owner}",
            _deadline(item, now),
        ]
    )


def queue_text(page: QueuePage, regulation: Regulation, now: datetime, locale: str) -> str:
    if not page.total:
        return _(
            "✨ Nothing needs a lead's eye: every open ticket has an owner and none is near "
            "its first-reaction deadline."
        )
    head = _(
        "<b>Tickets needing a lead's eye</b>: unassigned, or at risk of missing the "
        "first-reaction deadline; the earliest deadline first."
    )
    total = ngettext("{n} ticket in all", "{n} tickets in all", page.total).format(n=page.total)
    if page.pages > 1:
        total += ", " + _("page {page} of {pages}").format(page=page.page + 1, pages=page.pages)
    lines = [head, total + "."]
    for item in page.items:
        lines += ["", queue_line(item, regulation, now, locale)]
    return "\n".join(lines)


def queue_keyboard(page: QueuePage) -> InlineKeyboardMarkup | None:
    if page.pages <= 1:
        return None
    builder = InlineKeyboardBuilder()
    if page.page > 0:
        builder.button(text=_("« Prev"), callback_data=LeadQueueCallback(page=page.page - 1))
    if page.page + 1 < page.pages:
        builder.button(text=_("Next »"), callback_data=LeadQueueCallback(page=page.page + 1))
    builder.adjust(2)
    return builder.as_markup()


@router.message(Command("queue"), StaffOnly())
async def show_queue(
    message: Message, session: AsyncSession, staff_member: staff.Staff, regulation: Regulation
) -> None:
    if not _is_lead(staff_member):
        await message.answer(_leads_only())
        return
    now = utcnow()
    page = await lead_views.needing_attention(session, now)
    await message.answer(
        queue_text(page, regulation, now, texts.current_locale()),
        reply_markup=queue_keyboard(page),
    )


@router.callback_query(LeadQueueCallback.filter(), StaffOnly())
async def page_queue(
    query: CallbackQuery,
    callback_data: LeadQueueCallback,
    session: AsyncSession,
    staff_member: staff.Staff,
    regulation: Regulation,
) -> None:
    if not _is_lead(staff_member):
        logger.warning("staff %s is not a lead: /queue page refused", staff_member.queue_user)
        await query.answer(_leads_only(), show_alert=True)
        return
    now = utcnow()
    page = await lead_views.needing_attention(session, now, page=callback_data.page)
    await query.answer()
    if not isinstance(query.message, Message):
        return  # too old for the bot to edit: the lead sends /queue again
    try:
        await query.message.edit_text(
            queue_text(page, regulation, now, texts.current_locale()),
            reply_markup=queue_keyboard(page),
        )
    except TelegramBadRequest as error:
        # The same page pressed again: "message is not modified" is no error.
        if "message is not modified" not in error.message:
            raise


# --- /stats -------------------------------------------------------------------------------------


def _period(title: str, stats: PeriodStats) -> list[str]:
    tickets = ngettext("{n} ticket registered", "{n} tickets registered", stats.tickets).format(
        n=stats.tickets
    )
    breaches = ngettext(
        "{n} first-reaction deadline missed",
        "{n} first-reaction deadlines missed",
        stats.breaches,
    ).format(n=stats.breaches)
    if stats.median_first_reaction is None:
        median = _("⏱ No first reaction yet.")
    else:
        median = ngettext(
            "⏱ Median first reaction: {time} (over {n} ticket answered).",
            "⏱ Median first reaction: {time} (over {n} tickets answered).",
            stats.reacted,
        ).format(time=_duration(stats.median_first_reaction.total_seconds()), n=stats.reacted)
    return [title, f"📥 {tickets}; 🔥 {breaches}.", median]


def _duration(seconds: float) -> str:
    """ "1 h 5 min"; under a minute reads "less than a minute"."""
    if seconds < 60:
        return _("less than a minute")
    whole = int(seconds // 60)
    hours, mins = divmod(whole, 60)
    parts = []
    if hours:
        parts.append(_("{n} h").format(n=hours))
    if mins:
        parts.append(_("{n} min").format(n=mins))
    return " ".join(parts)


def stats_text(stats: LeadStats, locale: str) -> str:
    day = texts.day_month(stats.day_start.astimezone(MOSCOW).date(), locale)
    monday = texts.day_month(stats.week_start.astimezone(MOSCOW).date(), locale)
    month = format_date(stats.month_start.astimezone(MOSCOW).date(), "LLLL yyyy", locale=locale)
    free, paid = stats.free_modifications, stats.paid_modifications
    lines = [_("📊 <b>Support figures</b> (Moscow time)"), ""]
    lines += _period(_("<b>Today, {day}</b>").format(day=day), stats.today)
    lines.append("")
    lines += _period(_("<b>This week, since Monday, {day}</b>").format(day=monday), stats.week)
    lines += [
        "",
        _("<b>Modifications in {month}</b>").format(month=month),
        _("🛠 {free}, {paid}.").format(
            free=ngettext("{n} free", "{n} free", free).format(n=free),
            paid=ngettext("{n} paid", "{n} paid", paid).format(n=paid),
        ),
    ]
    return "\n".join(lines)


@router.message(Command("stats"), StaffOnly())
async def show_stats(message: Message, session: AsyncSession, staff_member: staff.Staff) -> None:
    if not _is_lead(staff_member):
        await message.answer(_leads_only())
        return
    stats = await lead_views.lead_stats(session, utcnow())
    await message.answer(stats_text(stats, texts.current_locale()))
