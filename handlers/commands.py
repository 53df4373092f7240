"""The bot's command menu, registered with setMyCommands in every language; what a command is;
the answer to a command nobody knows."""

from __future__ import annotations

import re
from html import escape

from aiogram import Bot, Router
from aiogram.fsm.context import FSMContext
from aiogram.types import BotCommand, BotCommandScopeAllPrivateChats, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _


def N_(message: str) -> str:
    """Marks a message for extraction; it is translated later, per language."""
    return message


COMMANDS: tuple[tuple[str, str], ...] = (
    ("new", N_("File a new support request")),
    ("cancel", N_("Cancel the request being written")),
    ("tickets", N_("My requests: status, conversation, reply")),
    ("quota", N_("Free modifications left this month")),
    ("stores", N_("Your linked stores")),
    ("language", N_("Change the language")),
    ("help", N_("How this bot works")),
)


async def set_commands(bot: Bot, i18n: I18n) -> None:
    scope = BotCommandScopeAllPrivateChats()
    for locale in i18n.available_locales:
        commands = [
            BotCommand(command=command, description=i18n.gettext(text, locale=locale))
            for command, text in COMMANDS
        ]
        await bot.set_my_commands(commands, scope=scope, language_code=locale)
    # Users whose Telegram speaks another language get the default one.
    await bot.set_my_commands(
        [
            BotCommand(command=command, description=i18n.gettext(text, locale=i18n.default_locale))
            for command, text in COMMANDS
        ],
        scope=scope,
    )


_COMMAND = re.compile(r"/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?(?=\s|$)")


def is_command(message: Message) -> bool:
    """A command rather than text: a bot_command entity at the start (what Telegram attaches to
    "/quota"), or text that looks like one (a client that sent no entity)."""
    if any(e.type == "bot_command" and e.offset == 0 for e in message.entities or ()):
        return True
    return bool(message.text and _COMMAND.match(message.text))


# Registered after every router that answers a command (handlers/__init__.py), before the
# fallback: a command nobody knows gets a hint, and a wizard step in progress keeps waiting.
router = Router(name=__name__)


@router.message(is_command)
async def unknown_command(message: Message, state: FSMContext) -> None:
    command = (message.text or "").split()[0].split("@")[0]
    text = _("I do not know the command {command}. The commands are in the menu; see /help.")
    text = text.format(command=escape(command, quote=False))
    if await state.get_state() is not None:
        text += "\n" + _("Your request is waiting: go on with the step above, or send /cancel.")
    await message.answer(text)
