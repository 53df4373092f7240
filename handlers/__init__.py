"""One Router per user-facing feature; the app and the tests include them in this order."""

from aiogram import Router


def get_routers() -> list[Router]:
    from handlers import (
        chat_member,
        errors,
        fallback,
        language,
        new_ticket,
        quota,
        start,
        stores,
    )

    return [
        errors.router,
        chat_member.router,
        start.router,
        stores.router,  # before the wizard: /stores mid-wizard is a command
        language.router,
        new_ticket.router,
        quota.router,
        fallback.router,  # last: whatever nothing else took
    ]
