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
from handlers.new_ticket.draft import WizardData
from handlers.new_ticket.states import NewTicket
from services.catalog import Catalog
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
    if eligibility.refusal is Refusal.NOT_LINKED:
        return _(
            "⛔ This request needs a linked store: it touches a store's account. Link yours in "
            "your store's admin panel: <b>Help → Telegram</b>. Until then, you can file "
            "technical questions and platform errors."
        )
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


def too_many_tickets(wait: timedelta) -> str:
    minutes = max(1, math.ceil(wait.total_seconds() / 60))
    return ngettext(
        "You have filed many requests this hour. Your draft is kept: please send it in {n} minute.",
        "You have filed many requests this hour. Your draft is kept: please send it in {n} "
        "minutes.",
        minutes,
    ).format(n=minutes)


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
    }
    return messages[error.reason].format(limit=error.limit, length=error.length)
