"""How /tickets, a ticket's card and the reply flow read. Wording only."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape

from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from handlers import texts
from handlers.my_tickets.keyboards import number_label
from handlers.rich_text import units
from services.db.models import TicketStatus
from services.my_tickets import TicketLine, TicketPage
from services.working_calendar import MOSCOW

# Telegram takes 4,096 characters a message; the card keeps clear of it.
CARD_LIMIT = 3900
SUBJECT_IN_LIST = 60
ELLIPSIS = "…"


def _q(text: str) -> str:
    return escape(text, quote=False)


def _short(text: str, limit: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + ELLIPSIS


def status_words(status: TicketStatus) -> str:
    return {
        TicketStatus.PENDING: _("being registered"),
        TicketStatus.REGISTERED: _("registered, waiting for a specialist"),
        TicketStatus.OPEN: _("in progress"),
        TicketStatus.WAITING: _("on hold"),
        TicketStatus.RESOLVED: _("resolved"),
        TicketStatus.REJECTED: _("declined"),
    }[status]


def when(moment: datetime) -> str:
    """25.11.2026 14:05 (Moscow time is said once, in the header)."""
    return moment.astimezone(MOSCOW).strftime("%d.%m.%Y %H:%M")


def _deadline_line(line: TicketLine, now: datetime) -> str | None:
    # The first-reaction deadline counts from registration and matters until a specialist
    # takes the ticket.
    if line.status is TicketStatus.REGISTERED and line.first_reaction_due is not None:
        return _("⏱ first reaction: {when}").format(
            when=texts.deadline(now, line.first_reaction_due, texts.current_locale())
        )
    if line.status is TicketStatus.PENDING:
        return _("⏱ deadlines count from registration")
    return None


def _resolution_line(line: TicketLine, now: datetime) -> str | None:
    # Once a specialist works on it, the deadline that matters is the resolution's.
    if line.status in (TicketStatus.OPEN, TicketStatus.WAITING) and line.resolution_due:
        return _("📅 resolution: {when}").format(
            when=texts.deadline(now, line.resolution_due, texts.current_locale())
        )
    return None


def ticket_list(page: TicketPage, now: datetime) -> str:
    if page.total == 0:
        return _("You have no requests yet. Send /new to file one.")
    header = ngettext(
        "<b>Your requests</b> ({n} request, newest first)",
        "<b>Your requests</b> ({n} requests, newest first)",
        page.total,
    ).format(n=page.total)
    lines = [header]
    if page.pages > 1:
        lines.append(_("Page {page} of {pages}").format(page=page.page + 1, pages=page.pages))
    lines.append(_("Times are Moscow time."))
    for line in page.lines:
        lines.append("")
        lines.append(f"<b>{_q(number_label(line))}</b> {_q(_short(line.subject, SUBJECT_IN_LIST))}")
        details = [
            status_words(line.status),
            _("updated {when}").format(when=when(line.updated_at)),
        ]
        deadline = _deadline_line(line, now) or _resolution_line(line, now)
        if deadline:
            details.append(deadline)
        if line.store_name and len(page.stores) > 1:
            details.insert(0, _q(line.store_name))
        lines.append(" · ".join(details))
    lines += ["", _("Press a request to read its conversation, reply or close it.")]
    return "\n".join(lines)


def card_header(line: TicketLine, now: datetime) -> str:
    if line.number:
        title = _("<b>Request #{number}</b> «{subject}»").format(
            number=_q(line.number), subject=_q(line.subject)
        )
    else:
        title = _("<b>Request (number pending)</b> «{subject}»").format(subject=_q(line.subject))
    lines = [title]
    if line.store_name:
        lines.append(_("Store: {store}").format(store=_q(line.store_name)))
    lines.append(_("Status: {status}").format(status=status_words(line.status)))
    lines.append(
        _("Filed {filed}, updated {updated} (Moscow time)").format(
            filed=when(line.created_at), updated=when(line.updated_at)
        )
    )
    deadline = _deadline_line(line, now)
    if deadline:
        lines.append(deadline)
    resolution = _resolution_line(line, now)
    if resolution:
        lines.append(resolution)
    return "\n".join(lines)


@dataclass(frozen=True, slots=True)
class Entry:
    """One message of the conversation, ready to show: its text already Telegram HTML."""

    by_support: bool
    author: str
    created_at: datetime
    html: str
    files: tuple[str, ...] = ()


def _entry_head(entry: Entry) -> str:
    who = _("💬 Support") if entry.by_support else _("👤 You")
    return f"<b>{who}</b>, {when(entry.created_at)}:"


def _entry_block(entry: Entry, room: int) -> str:
    """The entry within `room` characters; cut with "…" if it is longer."""
    head = _entry_head(entry)
    files = "".join("\n" + _("📎 {name}").format(name=_q(name)) for name in entry.files)
    block = f"{head}\n{entry.html}{files}" if entry.html else f"{head}{files}"
    if units(block) <= room:
        return block
    budget = room - units(head) - units(files) - 2
    pieces = texts.split_rich(entry.html, max(budget, 200))
    return f"{head}\n{pieces[0]}{ELLIPSIS}{files}"


def card(
    header: str, entries: list[Entry], start: int, *, limit: int = CARD_LIMIT
) -> tuple[str, int | None]:
    """The card from entry `start` on (entries latest first): as many as fit; the index of the
    next entry not shown, or None when all were."""
    if not entries:
        return header + "\n\n" + _("No messages yet."), None
    title = _("<b>Conversation, latest first:</b>") if start == 0 else _("<b>Earlier messages:</b>")
    text = f"{header}\n\n{title}"
    index = start
    while index < len(entries):
        room = limit - units(text) - 2
        block = _entry_block(entries[index], room) if index == start else None
        if block is None:
            candidate = _entry_block(entries[index], 10**9)
            if units(candidate) > room:
                break
            block = candidate
        text += "\n\n" + block
        index += 1
    return text, index if index < len(entries) else None


def reply_prompt(line: TicketLine) -> str:
    return _(
        "✍️ Replying to request {number} «{subject}». Send your message: text, photos, documents "
        "or an album. To stop, send /cancel."
    ).format(number=_q(number_label(line)), subject=_q(line.subject))


def not_yours() -> str:
    return _("This request is not available. Send /tickets to see your requests.")


def stale_page() -> str:
    return _("This list is out of date. Send /tickets to see it again.")


def reply_cancelled() -> str:
    return _("The reply is cancelled; nothing was added.")


def held_offer(has_open: bool) -> str:
    if has_open:
        return _(
            "This message is not a registered request: support does not see it yet. Add it to "
            "one of your open requests, or file a new request with this text."
        )
    return _(
        "This message is not a registered request: support does not see it yet. File a new "
        "request with this text?"
    )


def held_expired() -> str:
    return _("That message is no longer waiting here. Please send it again.")


def held_dropped() -> str:
    return _("Alright, the message was not sent anywhere.")


def conversation_unavailable() -> str:
    return _("The conversation cannot be read from the support queue right now; try again later.")
