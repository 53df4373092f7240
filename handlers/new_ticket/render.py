"""Texts of the wizard's steps. Rendering only: the rules live in services/."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from aiogram.fsm.state import State
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from handlers import texts
from handlers.new_ticket import keyboards
from handlers.new_ticket.draft import FileNote, WizardData
from handlers.new_ticket.states import NewTicket
from services.catalog import Catalog
from services.files import MAX_FILE_BYTES, MAX_FILES, FileRef, FileRefusal
from services.intake import Eligibility, Refusal
from services.quota import QuotaStatus
from services.stores import StoreAccess
from services.tickets import DESCRIPTION_MAX, SUBJECT_MAX, InvalidRequest


def locale() -> str:
    return texts.current_locale()


def _q(text: str) -> str:
    return escape(text, quote=False)


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
            "(up to {limit} characters)."
        ).format(path=_path(catalog, data), limit=SUBJECT_MAX)
        if data.subject:
            text += "\n\n" + _("Now: {subject}").format(subject=_q(data.subject))
        return text, keyboards.step_keyboard(draft)
    if state == NewTicket.entering_description:
        return _description_prompt(catalog, data), keyboards.step_keyboard(draft)
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
    raise ValueError(f"no step for {state}")


def _description_prompt(catalog: Catalog, data: WizardData) -> str:
    loc = locale()
    lines = [
        _("<b>{path}</b>").format(path=_path(catalog, data)),
        "",
        _(
            "<b>Describe the problem</b> (up to {limit} characters). "
            "One request, one problem: if there are several unrelated ones, "
            "file them separately, it makes the answer faster."
        ).format(limit=DESCRIPTION_MAX),
    ]
    category = catalog.category(data.request_type or "", data.category or "")
    if category and category.questions:
        lines += ["", _("Please include:")]
        lines += ["• " + _q(question.get(loc)) for question in category.questions]
    if data.description:
        lines += ["", _("Now: {description}").format(description=_q(_short(data.description)))]
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
        _(
            "Send screenshots or documents: photos, files or an album, up to {count} files "
            "of up to {size} MB each. A caption is added to the description."
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
        _q(data.description or ""),
        "",
    ]
    if data.files:
        lines += [files_line(data.files), ""]
    quota = view.quota
    if quota is not None:
        lines.append(texts.quota_line(quota))
        if quota.left == 0:
            lines.append(
                _(
                    "⚠️ This month's free modifications are used up: this one costs {price} "
                    "(if it takes a specialist up to {minutes} minutes; longer work is quoted "
                    "separately). Press the button below to agree and send."
                ).format(
                    price=texts.money(quota.price_beyond, quota.currency, locale()),
                    minutes=quota.free_minutes_limit,
                )
            )
            return "\n".join(lines)
        lines.append(
            _(
                "A modification is free if it takes a specialist up to {minutes} minutes; "
                "longer work is paid on every plan."
            ).format(minutes=quota.free_minutes_limit)
        )
    lines.append(_("Press <b>Send</b> to file it into the official support queue."))
    return "\n".join(lines)


def refusal(eligibility: Eligibility) -> str:
    if eligibility.refusal is Refusal.OWNER_ONLY:
        return _(
            "⛔ Only the store owner can ask for this: requests to delete store content or to "
            "transfer the store or its domain are accepted in writing from the owner alone. "
            "Please ask the owner to file it, or choose another category."
        )
    if eligibility.refusal is Refusal.MONTHLY_LIMIT_REACHED:
        return _(
            "⛔ The free plan allows {limit} requests a month, and this month's are used. "
            "Paid plans have no such limit."
        ).format(limit=eligibility.monthly_limit)
    return _(
        "⛔ On the free plan, support covers platform errors only. "
        "Please choose the category «Platform error», or move to a paid plan."
    )


def invalid(error: InvalidRequest) -> str:
    messages = {
        "subject_empty": _("The subject is empty. Please write it in one line."),
        "subject_too_long": _(
            "The subject is {length} characters long; the limit is {limit}. "
            "Please make it shorter: details belong in the description."
        ),
        "description_empty": _("The description is empty. Please describe the problem."),
        "description_too_long": _(
            "The description is {length} characters long; the limit is {limit}. "
            "Please shorten it, or file separate problems as separate requests."
        ),
        "unknown_category": _("This category is no longer offered. Please choose another one."),
        "too_many_files": _("A request takes up to {limit} files; this one has {length}."),
    }
    return messages[error.reason].format(limit=error.limit, length=error.length)
