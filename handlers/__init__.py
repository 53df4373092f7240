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
        lead_views,
        my_tickets,
        new_ticket,
        quota,
        staff,
        staff_actions,
        start,
        stores,
    )
    from handlers.new_ticket import attachments

    return [
        errors.router,
        groups.router,  # first: a group gets a note for a command, never the wizard
        chat_member.router,
        start.router,
        stores.router,  # before the wizard: /stores mid-wizard is a command
        language.router,
        # "Replying to #N" before the wizard: /cancel there cancels the reply.
        my_tickets.state_router,
        # What a specialist is writing (a reply, a comment, minutes): /cancel there cancels it.
        staff_actions.state_router,
        new_ticket.router,
        quota.router,
        my_tickets.router,
        staff.router,  # staff commands, refused to anyone else: before the unknown ones
        lead_views.router,  # the leads' /queue and /stats, staff commands too
        staff_actions.router,  # a specialist's buttons and commands, staff only as well
        commands.router,  # after every router answering a command: the unknown ones
        attachments.router,  # the wizard's files step: after the commands, so they stay commands
        fallback.router,  # last: whatever nothing else took
    ]
