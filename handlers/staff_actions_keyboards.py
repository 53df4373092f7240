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
    """Up to three rows: Reply, Comment / Resolve, Record modification / Take, Reassign — each
    button only where `actions` (services/staff_actions.card_actions) offers it."""
    rows = (
        (
            (actions.reply, texts.button_reply, SAct.REPLY),
            (actions.comment, texts.button_comment, SAct.COMMENT),
        ),
        (
            (actions.resolve, texts.button_resolve, SAct.RESOLVE),
            (actions.modification, texts.button_modification, SAct.MODIFICATION),
        ),
        (
            (actions.take, texts.button_take, SAct.TAKE),
            (actions.reassign, texts.button_reassign, SAct.REASSIGN),
        ),
    )
    keyboard = InlineKeyboardBuilder()
    sizes = []
    for row in rows:
        shown = [(label, act) for offered, label, act in row if offered]
        for label, act in shown:
            keyboard.button(
                text=label(), callback_data=StaffActionCallback(action=act, number=number)
            )
        if shown:
            sizes.append(len(shown))
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
