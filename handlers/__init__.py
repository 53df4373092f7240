"""One Router per user-facing feature; the app and the tests include them in this order."""

from aiogram import Router


def get_routers() -> list[Router]:
    from handlers import (
        chat_member,
        commands,
        errors,
        fallback,
        groups,
        language,
        new_ticket,
        quota,
        start,
    )

    return [
        errors.router,
        groups.router,  # first: a group gets a note for a command, never the wizard
        chat_member.router,
        start.router,
        language.router,
        new_ticket.router,
        quota.router,
        commands.router,  # after every router answering a command: the unknown ones
        fallback.router,  # last: whatever nothing else took
    ]
