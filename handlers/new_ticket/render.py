"""Texts of the wizard's steps. Rendering only: the rules live in services/."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import timedelta
from html import escape

from aiogram.fsm.state import State
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from handlers import texts
from handlers.new_ticket import keyboards
from handlers.new_ticket.draft import FileNote, WizardData
from handlers.new_ticket.states import NewTicket
from handlers.rich_text import split_telegram_html
from services.catalog import Catalog
from services.files import MAX_FILE_BYTES, MAX_FILES, FileRef, FileRefusal
from services.intake import Choice, Eligibility, Refusal
from services.quota import QuotaStatus
from services.stores import StoreAccess
from services.tickets import (
    SUBJECT_MAX,
    TELEGRAM_TEXT_MAX,
    InvalidRequest,
    join_description,
)
from services.working_calendar import MOSCOW

# What a step may take of Telegram's 4,096 (UTF-16 units, counted on the HTML as sent, so the
# escaping of the merchant's text is counted too); the rest is room for a notice above it.
STEP_BUDGET = 3_600


def locale() -> str:
    return texts.current_locale()


def _q(text: str) -> str:
    return escape(text, quote=False)


def units(text: str) -> int:
    """Length as Telegram counts it, in UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def excerpt(text: str, budget: int) -> str:
    """The beginning of `text`, HTML-escaped, within `budget` UTF-16 units (an ellipsis marks a
    cut). Escaping is counted: "<" takes four units once escaped."""
    escaped = _q(text)
    if units(escaped) <= budget:
        return escaped
    # Cut the plain text, then escape, so no entity is cut in half.
    low, high = 0, len(text)
    while low < high:
        middle = (low + high + 1) // 2
        if units(_q(text[:middle])) + 1 <= budget:
            low = middle
        else:
            high = middle - 1
    return _q(text[:low].rstrip()) + "…"


def fit(text: str, limit: int = TELEGRAM_TEXT_MAX) -> str:
    """A last guard: whatever a step says is cut to what Telegram takes, tags kept whole."""
    if units(text) <= limit:
        return text
    return split_telegram_html(text, limit - 1)[0] + "…"


def fit_alert(text: str, limit: int = 200) -> str:
    """A callback answer (plain text, at most 200 characters)."""
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _path(catalog: Catalog, data: WizardData) -> str:
    loc = locale()
    request_type = catalog.type(data.request_type or "")
    parts = [request_type.label.get(loc)] if request_type else []
    category = catalog.category(data.request_type or "", data.category or "")
    if category:
        parts.append(category.label.get(loc))
    return " → ".join(_q(part) for part in parts)


@dataclass(frozen=True)
class StepView:
    """What a step shows besides the draft: the merchant's stores and the quota."""

    stores: list[StoreAccess] = field(default_factory=list)
    store: StoreAccess | None = None
    quota: QuotaStatus | None = None


def step(
    catalog: Catalog, data: WizardData, state: State, view: StepView
) -> tuple[str, InlineKeyboardMarkup]:
    loc, draft = locale(), data.draft_id
    if state == NewTicket.choosing_store:
        text = _(
            "<b>New request.</b> Which store is it about? "
            "Please file it for the store where the problem is."
        )
        return text, keyboards.stores_keyboard(view.stores, draft)
    if state == NewTicket.choosing_type:
        lines = [_("<b>New request.</b> What is it about?"), ""]
        if view.store is not None:
            lines = [
                _("<b>New request</b> for {store}. What is it about?").format(
                    store=_q(view.store.domain)
                ),
                "",
            ]
        for request_type in catalog.types:
            line = f"• <b>{_q(request_type.label.get(loc))}</b>"
            if request_type.hint:
                line += " — " + _q(request_type.hint.get(loc))
            lines.append(line)
        keyboard = keyboards.types_keyboard(catalog, loc, draft, back=len(view.stores) > 1)
        return "\n".join(lines), keyboard
    if state == NewTicket.choosing_category:
        text = _("<b>{path}</b>\nChoose the category:").format(path=_path(catalog, data))
        return text, keyboards.categories_keyboard(catalog, data.request_type or "", loc, draft)
    if state == NewTicket.entering_subject:
        text = _(
            "<b>{path}</b>\n\nWrite the <b>subject</b> of your request in one line "
            "(at most {limit})."
        ).format(path=_path(catalog, data), limit=texts.characters(SUBJECT_MAX))
        if data.subject:
            text += "\n\n" + _("Now: {subject}").format(subject=_q(data.subject))
        return text, keyboards.step_keyboard(draft)
    if state == NewTicket.entering_description:
        keyboard = keyboards.description_keyboard(draft, done=data.collecting)
        return _description_prompt(catalog, data), keyboard
    if state == NewTicket.adding_files:
        return files_step(data), keyboards.files_keyboard(draft, attached=len(data.files))
    if state == NewTicket.reviewing:
        price = None
        if view.quota is not None and view.quota.left == 0:
            price = texts.money(view.quota.price_beyond, view.quota.currency, loc)
        return review(catalog, data, view), keyboards.review_keyboard(draft, price=price)
    if state == NewTicket.confirming_restart:
        text = _(
            "You have an unfinished request: <b>{path}</b>.\nContinue it or start over?"
        ).format(path=_path(catalog, data) or _("type not chosen yet"))
        return text, keyboards.restart_keyboard(draft)
    if state == NewTicket.confirming_cancel:
        text = _(
            "Drop the request <b>{path}</b> with your description? It will not be sent."
        ).format(path=_path(catalog, data) or _("type not chosen yet"))
        return text, keyboards.cancel_keyboard(draft)
    raise ValueError(f"no step for {state}")


def _description_prompt(catalog: Catalog, data: WizardData) -> str:
    loc = locale()
    lines = [
        _("<b>{path}</b>").format(path=_path(catalog, data)),
        "",
        _(
            "<b>Describe the problem.</b> "
            "One request, one problem: if there are several unrelated ones, "
            "file them separately, it makes the answer faster."
        ),
        _("A long text may come in several messages: send them all, then press <b>Done</b>."),
    ]
    category = catalog.category(data.request_type or "", data.category or "")
    if category and category.questions:
        lines += ["", _("Please include:")]
        lines += ["• " + _q(question.get(loc)) for question in category.questions]
    if data.collecting and data.description_parts:
        count = len(data.description_parts)
        length = len(join_description(data.parts()))
        lines += [
            "",
            _("📝 Received: {messages}, {characters}.").format(
                messages=ngettext("{count} message", "{count} messages", count).format(count=count),
                characters=texts.characters(length),
            ),
            _("If the description goes on, send the rest; when it is complete, press <b>Done</b>."),
        ]
    elif data.description:
        lines += ["", _("Now: {description}").format(description=excerpt(data.description, 300))]
    return "\n".join(lines)


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _megabytes(size: int) -> str:
    return f"{size / (1024 * 1024):.1f}".rstrip("0").rstrip(".")


def _file_names(files: list[FileRef], limit: int = 40) -> str:
    return ", ".join(_q(_short(ref.filename, limit)) for ref in files)


def files_line(files: list[FileRef]) -> str:
    count = len(files)
    return ngettext("📎 {n} file: {names}", "📎 {n} files: {names}", count).format(
        n=count, names=_file_names(files)
    )


def file_note(note: FileNote) -> str:
    name = _q(_short(note.name, 60))
    if note.reason is FileRefusal.TOO_BIG:
        return _(
            "⛔ «{name}» is {size} MB and is not attached: a file can be up to {limit} MB "
            "(Telegram lets a bot download no more). Please send a smaller file, or put a link "
            "to it in the description."
        ).format(name=name, size=_megabytes(note.size or 0), limit=_megabytes(MAX_FILE_BYTES))
    if note.reason is FileRefusal.TOO_MANY:
        return ngettext(
            "⛔ «{name}» is not attached: a request takes up to {limit} file.",
            "⛔ «{name}» is not attached: a request takes up to {limit} files.",
            MAX_FILES,
        ).format(name=name, limit=MAX_FILES)
    if note.reason is FileRefusal.DUPLICATE:
        return _("ℹ️ «{name}» is attached already.").format(name=name)
    what = {
        "sticker": _("A sticker"),
        "voice": _("A voice message"),
        "video_note": _("A video message"),
        "video": _("A video"),
        "animation": _("A GIF"),
        "audio": _("An audio file"),
        "location": _("A location"),
        "venue": _("A place"),
        "contact": _("A contact"),
        "poll": _("A poll"),
    }.get(note.name, _("This kind of message"))
    if note.name in ("video", "animation", "audio"):
        return _(
            "⛔ {what} cannot be attached as it is: please send it as a file (📎 → File), "
            "up to {limit} MB."
        ).format(what=what, limit=_megabytes(MAX_FILE_BYTES))
    return _(
        "⛔ {what} cannot be attached: a request takes photos and documents (files) only."
    ).format(what=what)


def files_step(data: WizardData) -> str:
    lines = [
        _("<b>Files</b> (if they help)"),
        "",
        ngettext(
            "Send screenshots or documents: photos, files or an album, at most {count} file "
            "of up to {size} MB each. A caption is added to the description.",
            "Send screenshots or documents: photos, files or an album, at most {count} files "
            "of up to {size} MB each. A caption is added to the description.",
            MAX_FILES,
        ).format(count=MAX_FILES, size=_megabytes(MAX_FILE_BYTES)),
    ]
    if data.files:
        lines += ["", files_line(data.files)]
    if data.file_notes:
        lines += ["", *(file_note(note) for note in data.file_notes)]
    lines += [
        "",
        _("Press <b>Done</b> when all files are here.")
        if data.files
        else _("No files needed? Press <b>Skip</b>."),
    ]
    return "\n".join(lines)


def review(catalog: Catalog, data: WizardData, view: StepView) -> str:
    lines = [_("<b>Please check your request</b>"), ""]
    if view.store is not None:
        lines.append(_("Store: {store}").format(store=_q(view.store.domain)))
    lines += [
        _("Category: {path}").format(path=_path(catalog, data)),
        _("Subject: {subject}").format(subject=_q(data.subject or "")),
        "",
        "{description}",
        "",
    ]
    if data.files:
        lines += [files_line(data.files), ""]
    quota = view.quota
    if quota is not None:
        price = texts.money(quota.price_beyond, quota.currency, locale())
        if quota.left == 0:
            if quota.allowance == 0:
                # "Если тариф не предусматривает бесплатных доработок ... на платной основе."
                warning = _(
                    "⚠️ Your plan includes no free modifications: this one costs {price} "
                    "(if a specialist needs {minutes} or less; longer work is quoted "
                    "separately). Press the button below to confirm the payment and send."
                )
            else:
                lines.append(texts.quota_line(quota))
                warning = _(
                    "⚠️ This month's free modifications are used up: this one costs {price} "
                    "(if a specialist needs {minutes} or less; longer work is quoted "
                    "separately). Press the button below to confirm the payment and send."
                )
            lines.append(
                warning.format(price=price, minutes=texts.minutes(quota.free_minutes_limit))
            )
            return _with_description(lines, data.description or "")
        lines.append(texts.quota_line(quota))
        lines.append(
            _(
                "A modification is free if a specialist needs {minutes} or less; "
                "longer work is paid on every plan."
            ).format(minutes=texts.minutes(quota.free_minutes_limit))
        )
    lines.append(_("Press <b>Send</b> to file it into the official support queue."))
    return _with_description(lines, data.description or "")


def _with_description(lines: list[str], description: str) -> str:
    """The review with as much of the description as fits Telegram's message: the whole of it
    when it fits, else its beginning and its real length (the whole of it is filed)."""
    at = lines.index("{description}")
    rest = units("\n".join(lines[:at] + lines[at + 1 :]))
    budget = STEP_BUDGET - rest
    shown = excerpt(description, budget)
    if shown != _q(description):
        note = _("(the beginning; the whole description, {characters}, will be filed)").format(
            characters=texts.characters(len(description))
        )
        shown = excerpt(description, budget - units(note) - 1) + "\n" + note
    lines[at] = shown
    return "\n".join(lines)


def _choice(choice: Choice) -> str:
    loc = locale()
    if choice.whole_type:
        categories = _("any category")
    else:
        categories = ", ".join(_q(category.label.get(loc)) for category in choice.categories)
    line = f"• {_q(choice.type.label.get(loc))} → {categories}"
    if choice.price is not None:
        line += _(" (paid: {price} each)").format(
            price=texts.money(choice.price, choice.currency, loc)
        )
    return line


def refusal(eligibility: Eligibility) -> str:
    """Why a choice is refused, and what the merchant can choose instead. The free plan's limits
    are the operator's policy (policies.toml), worded as the platform's, never as the
    regulation's; the choices are computed from that policy and the catalog."""
    loc = locale()
    category = eligibility.category
    if eligibility.refusal is Refusal.NOT_LINKED:
        return _(
            "⛔ This request needs a linked store: it touches a store's account. Link yours in "
            "your store's admin panel: <b>Help → Telegram</b>. Until then, you can file "
            "technical questions and platform errors."
        )
    if eligibility.refusal is Refusal.OWNER_ONLY:
        return _(
            "⛔ Only the store owner can ask for «{category}»: the support regulation accepts "
            "requests to delete store content or to transfer the rights to the store or its "
            "domain in writing and from the owner alone. Please ask the owner to file it, or "
            "choose another category."
        ).format(category=_q(category.label.get(loc)) if category else "")
    plan = texts.plan_name(eligibility.plan or "")
    if eligibility.refusal is Refusal.MONTHLY_LIMIT_REACHED:
        limit = eligibility.monthly_limit or 0
        text = _(
            "⛔ On the «{plan}» plan, the platform's support takes {requests} a month, and this "
            "month's are used."
        ).format(plan=plan, requests=texts.requests(limit))
        if eligibility.renews_at is not None:
            renews = eligibility.renews_at.astimezone(MOSCOW).date()
            text += " " + _("New requests can be filed from {day}.").format(
                day=texts.day_month(renews, loc)
            )
        return text + " " + _("Paid plans have no such limit.")
    lines = [
        _("⛔ On the «{plan}» plan, the platform's support does not cover this request.").format(
            plan=plan
        )
    ]
    if eligibility.choices:
        lines += ["", _("On this plan you can choose:")]
        lines += [_choice(choice) for choice in eligibility.choices]
    lines += ["", _("Paid plans cover every request.")]
    return "\n".join(lines)


def too_many_tickets(wait: timedelta) -> str:
    minutes = max(1, math.ceil(wait.total_seconds() / 60))
    return ngettext(
        "You have filed many requests this hour. Your draft is kept: please send it in {n} minute.",
        "You have filed many requests this hour. Your draft is kept: please send it in {n} "
        "minutes.",
        minutes,
    ).format(n=minutes)


def invalid(error: InvalidRequest) -> str:
    length = texts.characters(error.length or 0)
    messages = {
        "subject_empty": _("The subject is empty. Please write it in one line."),
        "subject_too_long": _(
            "The subject is {length} long; the support queue keeps up to {limit}. "
            "Please make it shorter: details belong in the description."
        ),
        "subject_too_wide": _(
            "The subject is {length} long, but its emoji or special symbols take more room "
            "than the support queue keeps for a subject. Please shorten it or write it "
            "without them: details belong in the description."
        ),
        "description_empty": _("The description is empty. Please describe the problem."),
        "description_too_long": _(
            "The description is {length} long; the limit is {limit}. "
            "Please shorten it, or file separate problems as separate requests."
        ),
        "unknown_category": _("This category is no longer offered. Please choose another one."),
    }
    if error.reason == "too_many_files":
        return ngettext(
            "A request takes up to {limit} file; please remove some.",
            "A request takes up to {limit} files; please remove some.",
            error.limit or 0,
        ).format(limit=error.limit)
    return messages[error.reason].format(limit=texts.characters(error.limit or 0), length=length)
