"""One Router per user-facing feature; the app and the tests include them in this order."""

from aiogram import Router


def get_routers() -> list[Router]:
    from handlers import (
        chat_member,
        errors,
        fallback,
        language,
        my_tickets,
        new_ticket,
        quota,
        start,
    )

    return [
        errors.router,
        chat_member.router,
        start.router,
        language.router,
        # "Replying to #N" before the wizard: /cancel there cancels the reply.
        my_tickets.state_router,
        new_ticket.router,
        quota.router,
        my_tickets.router,
        fallback.router,  # last: whatever nothing else took
    ]
