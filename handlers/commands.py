"""The bot's command menu, registered with setMyCommands in every language."""

from __future__ import annotations

from aiogram import Bot
from aiogram.types import BotCommand, BotCommandScopeAllPrivateChats
from aiogram.utils.i18n import I18n


def N_(message: str) -> str:
    """Marks a message for extraction; it is translated later, per language."""
    return message


COMMANDS: tuple[tuple[str, str], ...] = (
    ("new", N_("File a new support request")),
    ("cancel", N_("Cancel the request being written")),
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
