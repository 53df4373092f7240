"""Group chats: the bot works in a private chat only.

With Telegram's default privacy mode a bot in a group sees only commands and replies to it. A
command addressed to this bot gets a short note with a button to the private chat; everything
else gets no answer. No wizard and no ticket content is ever shown in a group: this router comes
before every other one (handlers/__init__.py) and takes every group update.
"""

from __future__ import annotations

from aiogram import Bot, F, Router
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _

from handlers.commands import is_command

router = Router(name=__name__)
_GROUPS = {"group", "supergroup"}
router.message.filter(F.chat.type.in_(_GROUPS))
router.edited_message.filter(F.chat.type.in_(_GROUPS))
router.callback_query.filter(F.message.chat.type.in_(_GROUPS))


async def _addressed_to_me(message: Message, bot: Bot) -> bool:
    """/new@this_bot, or /new alone; not /new@another_bot. (In privacy mode Telegram delivers a
    bare command to the bot that wrote last in the group: it may have been meant for another
    bot, and a short note does no harm.)"""
    if not is_command(message):
        return False
    command = (message.text or "").split()[0]
    if "@" not in command:
        return True
    me = await bot.me()
    return command.split("@", 1)[1].lower() == (me.username or "").lower()


@router.message(_addressed_to_me)
async def private_chat_only(message: Message, bot: Bot) -> None:
    me = await bot.me()
    keyboard = InlineKeyboardMarkup(
        inline_keyboard=[
            [
                InlineKeyboardButton(
                    text=_("Open the private chat"), url=f"https://t.me/{me.username}"
                )
            ]
        ]
    )
    await message.reply(
        _(
            "I work in a private chat only: support requests and their answers are not for a "
            "group. Please write to me there."
        ),
        reply_markup=keyboard,
    )


@router.message()
async def chatter(message: Message) -> None:
    """Replies and whatever else reaches the bot in a group: not for it, no answer."""


@router.edited_message()
async def edited_chatter(message: Message) -> None:
    """Edits in a group: no answer."""


@router.callback_query()
async def group_button(query: CallbackQuery) -> None:
    await query.answer()
