"""The buttons a specialist gets under a ticket card (services/staff_actions.CardActions decides
which), and their callback data. Callback data is untrusted: every press is checked again by the
handlers (StaffOnly) and the services."""

from __future__ import annotations

from enum import StrEnum

from aiogram.filters.callback_data import CallbackData
from aiogram.types import InlineKeyboardMarkup
from aiogram.utils.keyboard import InlineKeyboardBuilder

from handlers import staff_actions_texts as texts
from services.staff_actions import CardActions, Specialist


class SAct(StrEnum):
    REPLY = "r"
    COMMENT = "c"
    RESOLVE = "v"
    RESOLVE_YES = "y"
    RESOLVE_NO = "n"
    MODIFICATION = "m"
    TAKE = "t"
    REASSIGN = "a"
    ASSIGN_TO = "o"


class StaffActionCallback(CallbackData, prefix="sa"):
    action: SAct
    number: str
    # ASSIGN_TO: the staff registry's id of the new owner (queue user names may be long).
    member: int = 0


def card_keyboard(number: str, actions: CardActions) -> InlineKeyboardMarkup:
    keyboard = InlineKeyboardBuilder()
    sizes = []
    row = 0
    if actions.reply:
        keyboard.button(
            text=texts.button_reply(),
            callback_data=StaffActionCallback(action=SAct.REPLY, number=number),
        )
        row += 1
    if actions.comment:
        keyboard.button(
            text=texts.button_comment(),
            callback_data=StaffActionCallback(action=SAct.COMMENT, number=number),
        )
        row += 1
    if row:
        sizes.append(row)
    row = 0
    if actions.resolve:
        keyboard.button(
            text=texts.button_resolve(),
            callback_data=StaffActionCallback(action=SAct.RESOLVE, number=number),
        )
        row += 1
    if actions.modification:
        keyboard.button(
            text=texts.button_modification(),
            callback_data=StaffActionCallback(action=SAct.MODIFICATION, number=number),
        )
        row += 1
    if row:
        sizes.append(row)
    row = 0
    if actions.take:
        keyboard.button(
            text=texts.button_take(),
            callback_data=StaffActionCallback(action=SAct.TAKE, number=number),
        )
        row += 1
    if actions.reassign:
        keyboard.button(
            text=texts.button_reassign(),
            callback_data=StaffActionCallback(action=SAct.REASSIGN, number=number),
        )
        row += 1
    if row:
        sizes.append(row)
    keyboard.adjust(*sizes)
    return keyboard.as_markup()


def confirm_keyboard(number: str) -> InlineKeyboardMarkup:
    keyboard = InlineKeyboardBuilder()
    keyboard.button(
        text=texts.button_yes(),
        callback_data=StaffActionCallback(action=SAct.RESOLVE_YES, number=number),
    )
    keyboard.button(
        text=texts.button_no(),
        callback_data=StaffActionCallback(action=SAct.RESOLVE_NO, number=number),
    )
    return keyboard.as_markup()


def specialists_keyboard(number: str, specialists: list[Specialist]) -> InlineKeyboardMarkup:
    keyboard = InlineKeyboardBuilder()
    for specialist in specialists:
        keyboard.button(
            text=specialist.queue_user[:60],
            callback_data=StaffActionCallback(
                action=SAct.ASSIGN_TO, number=number, member=specialist.id
            ),
        )
    keyboard.adjust(2)
    return keyboard.as_markup()
