"""One Router per user-facing feature; the app and the tests include them in this order."""

from aiogram import Router


def get_routers() -> list[Router]:
    from handlers import chat_member, errors, fallback, language, new_ticket, quota, start
    from handlers.new_ticket import attachments

    return [
        errors.router,
        chat_member.router,
        start.router,
        language.router,
        new_ticket.router,
        quota.router,
        attachments.router,  # the wizard's files step: after the commands, so they stay commands
        fallback.router,  # last: whatever nothing else took
    ]
