from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder

from services.catalog import Catalog
from services.stores import StoreAccess


class Action(StrEnum):
    STORE = "st"
    TYPE = "t"
    CATEGORY = "c"
    BACK = "b"
    CANCEL = "x"
    SEND = "s"
    SEND_PAID = "sp"
    EDIT_SUBJECT = "es"
    EDIT_DESCRIPTION = "ed"
    EDIT_CATEGORY = "ec"
    RESUME = "r"
    RESTART = "n"
    DONE = "d"
    CANCEL_CONFIRMED = "xy"
    FILES_DONE = "fd"
    FILES_CLEAR = "fc"
    EDIT_FILES = "ef"


class WizardCallback(CallbackData, prefix="nt"):
    draft: str
    action: Action
    code: str = ""


def _button(
    builder: InlineKeyboardBuilder, text: str, draft: str, action: Action, code: str = ""
) -> None:
    builder.button(text=text, callback_data=WizardCallback(draft=draft, action=action, code=code))


def _navigation(builder: InlineKeyboardBuilder, draft: str, *, back: bool = True) -> None:
    if back:
        _button(builder, _("« Back"), draft, Action.BACK)
    _button(builder, _("Cancel"), draft, Action.CANCEL)


def stores_keyboard(stores: list[StoreAccess], draft: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for store in stores:
        _button(builder, f"{store.name} ({store.domain})", draft, Action.STORE, str(store.id))
    _navigation(builder, draft, back=False)
    builder.adjust(1)
    return builder.as_markup()


def types_keyboard(
    catalog: Catalog, locale: str, draft: str, *, back: bool
) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    for request_type in catalog.types:
        _button(builder, request_type.label.get(locale), draft, Action.TYPE, request_type.code)
    builder.adjust(1)
    navigation = InlineKeyboardBuilder()
    _navigation(navigation, draft, back=back)
    builder.attach(navigation)
    return builder.as_markup()


def categories_keyboard(
    catalog: Catalog, type_code: str, locale: str, draft: str
) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    request_type = catalog.type(type_code)
    for category in request_type.categories if request_type else ():
        _button(builder, category.label.get(locale), draft, Action.CATEGORY, category.code)
    builder.adjust(1)
    navigation = InlineKeyboardBuilder()
    _navigation(navigation, draft)
    builder.attach(navigation)
    return builder.as_markup()


def step_keyboard(draft: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    _navigation(builder, draft)
    return builder.as_markup()


def description_keyboard(draft: str, *, done: bool) -> InlineKeyboardMarkup:
    """The description step; "Done" once a part of the description arrived."""
    builder = InlineKeyboardBuilder()
    if done:
        _button(builder, _("✅ Done"), draft, Action.DONE)
    _navigation(builder, draft)
    if done:
        builder.adjust(1, 2)
    return builder.as_markup()


def cancel_keyboard(draft: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    _button(builder, _("Yes, drop it"), draft, Action.CANCEL_CONFIRMED)
    _button(builder, _("No, continue"), draft, Action.RESUME)
    builder.adjust(2)
    return builder.as_markup()


def review_keyboard(draft: str, *, price: str | None = None) -> InlineKeyboardMarkup:
    """With a price, the send button is the merchant's agreement to pay it."""
    builder = InlineKeyboardBuilder()
    if price is None:
        _button(builder, _("✅ Send"), draft, Action.SEND)
    else:
        _button(
            builder,
            _("✅ Send, I confirm the payment of {price}").format(price=price),
            draft,
            Action.SEND_PAID,
        )
    _button(builder, _("✏️ Subject"), draft, Action.EDIT_SUBJECT)
    _button(builder, _("✏️ Description"), draft, Action.EDIT_DESCRIPTION)
    _button(builder, _("✏️ Category"), draft, Action.EDIT_CATEGORY)
    _button(builder, _("📎 Files"), draft, Action.EDIT_FILES)
    _navigation(builder, draft)
    builder.adjust(1, 2, 2, 2)
    return builder.as_markup()


def files_keyboard(draft: str, *, attached: int) -> InlineKeyboardMarkup:
    """Done once there are files; with none, the same button skips the step."""
    builder = InlineKeyboardBuilder()
    _button(builder, _("✅ Done") if attached else _("Skip »"), draft, Action.FILES_DONE)
    if attached:
        _button(builder, _("🗑 Remove the files"), draft, Action.FILES_CLEAR)
    _navigation(builder, draft)
    builder.adjust(*((1, 1, 2) if attached else (1, 2)))
    return builder.as_markup()


def restart_keyboard(draft: str) -> InlineKeyboardMarkup:
    builder = InlineKeyboardBuilder()
    _button(builder, _("Continue the draft"), draft, Action.RESUME)
    _button(builder, _("Start over"), draft, Action.RESTART)
    builder.adjust(1)
    return builder.as_markup()
