"""Texts of the wizard's steps. Rendering only: the rules live in services/."""

from __future__ import annotations

from dataclasses import dataclass, field
from html import escape

from aiogram.fsm.state import State
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _

from handlers import texts
from handlers.new_ticket import keyboards
from handlers.new_ticket.draft import WizardData
from handlers.new_ticket.states import NewTicket
from services.catalog import Catalog
from services.intake import Choice, Eligibility, Refusal
from services.quota import QuotaStatus
from services.stores import StoreAccess
from services.tickets import DESCRIPTION_MAX, SUBJECT_MAX, InvalidRequest
from services.working_calendar import MOSCOW


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
            "(at most {limit})."
        ).format(path=_path(catalog, data), limit=texts.characters(SUBJECT_MAX))
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
            "<b>Describe the problem</b> (at most {limit}). "
            "One request, one problem: if there are several unrelated ones, "
            "file them separately, it makes the answer faster."
        ).format(limit=texts.characters(DESCRIPTION_MAX)),
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
            return "\n".join(lines)
        lines.append(texts.quota_line(quota))
        lines.append(
            _(
                "A modification is free if a specialist needs {minutes} or less; "
                "longer work is paid on every plan."
            ).format(minutes=texts.minutes(quota.free_minutes_limit))
        )
    lines.append(_("Press <b>Send</b> to file it into the official support queue."))
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


def invalid(error: InvalidRequest) -> str:
    messages = {
        "subject_empty": _("The subject is empty. Please write it in one line."),
        "subject_too_long": _(
            "The subject has {length}; the limit is {limit}. "
            "Please make it shorter: details belong in the description."
        ),
        "description_empty": _("The description is empty. Please describe the problem."),
        "description_too_long": _(
            "The description has {length}; the limit is {limit}. "
            "Please shorten it, or file separate problems as separate requests."
        ),
        "unknown_category": _("This category is no longer offered. Please choose another one."),
    }
    return messages[error.reason].format(
        limit=texts.characters(error.limit or 0), length=texts.characters(error.length or 0)
    )
