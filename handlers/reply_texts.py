"""How the merchant's own messages on a ticket read in Telegram (services/replies.py): the
handler's immediate answer, the confirmations the reply worker writes as notices, and the
refusals. Wording only."""

from __future__ import annotations

from html import escape

from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from services.db.models import ReplyKind, TicketStatus
from services.notices import ReplyAdded, ReplyDelayed, ReplyRefused
from services.replies import (
    AcceptedReply,
    EmptyReply,
    NotReopenable,
    NotYourTicket,
    ReplyNotAccepted,
    TicketClosed,
    TooManyFiles,
)


def _ticket(number: str | None, subject: str) -> dict[str, str]:
    return {"number": escape(number or ""), "subject": escape(subject, quote=False)}


def received(accepted: AcceptedReply) -> str:
    """The handler's answer right after `add_reply` (the confirmation follows as a notice)."""
    if accepted.waits_for_filing:
        if accepted.kind is ReplyKind.CLOSE:
            return _(
                "📨 Received. Your request «{subject}» is still being registered; I will close "
                "it in the support queue right after that."
            ).format(**_ticket(None, accepted.subject))
        return _(
            "📨 Received. Your request «{subject}» is still being registered; your message "
            "will be added to it right after that."
        ).format(**_ticket(None, accepted.subject))
    if accepted.kind is ReplyKind.CLOSE:
        return _("📨 Closing request <b>#{number}</b>…").format(
            **_ticket(accepted.number, accepted.subject)
        )
    if accepted.kind is ReplyKind.REOPEN:
        return _("📨 Reopening request <b>#{number}</b>…").format(
            **_ticket(accepted.number, accepted.subject)
        )
    return _("📨 Received, adding it to request <b>#{number}</b>…").format(
        **_ticket(accepted.number, accepted.subject)
    )


def reply_added(notice: ReplyAdded) -> str:
    ticket = _ticket(notice.number, notice.subject)
    if notice.action is ReplyKind.CLOSE:
        return _(
            "✅ Request <b>#{number}</b> «{subject}» is closed. If the problem comes back, "
            "reopen it from /tickets."
        ).format(**ticket)
    if notice.action is ReplyKind.REOPEN:
        return _(
            "🔄 Request <b>#{number}</b> «{subject}» is reopened; the specialist will see "
            "your messages."
        ).format(**ticket)
    if notice.action is ReplyKind.CORRECTION:
        text = _(
            "✅ Your correction is added to request <b>#{number}</b> «{subject}» as a new "
            "message; what you wrote before stays as it was."
        ).format(**ticket)
    else:
        text = _("✅ Added to request <b>#{number}</b> «{subject}».").format(**ticket)
    if notice.files:
        text += " " + ngettext("With {n} file.", "With {n} files.", notice.files).format(
            n=notice.files
        )
    return text


def reply_delayed(notice: ReplyDelayed) -> str:
    return _(
        "📨 Your message to request <b>#{number}</b> is saved, but the support queue is not "
        "answering right now. I will add it as soon as the queue is back; there is no need to "
        "send it again."
    ).format(**_ticket(notice.number, notice.subject))


def reply_refused(notice: ReplyRefused) -> str:
    return _(
        "⚠️ Your message to request <b>#{number}</b> is saved, but the support queue refused "
        "it because of a problem on our side. Support has been alerted and will add it as soon "
        "as it is fixed; there is no need to send it again."
    ).format(**_ticket(notice.number, notice.subject))


def _status(status: TicketStatus) -> str:
    if status is TicketStatus.REJECTED:
        return _("rejected")
    return _("resolved")


def not_accepted(error: ReplyNotAccepted) -> str:
    """The answer to a refused message (the exceptions of services/replies.add_reply)."""
    if isinstance(error, NotYourTicket):
        return _("I could not find that request among yours.")
    if isinstance(error, TicketClosed):
        if error.status is TicketStatus.RESOLVED:
            return _(
                "This request is already resolved. Reopen it from /tickets to write to it, or "
                "file a new one."
            )
        return _(
            "This request is {status}: it takes no more messages. File a new one if needed."
        ).format(status=_status(error.status))
    if isinstance(error, NotReopenable):
        if error.status is TicketStatus.REJECTED:
            return _("A rejected request cannot be reopened; please file a new one.")
        return _("This request is not closed: there is nothing to reopen.")
    if isinstance(error, EmptyReply):
        return _("There is nothing to add: send a text, a photo or a document.")
    if isinstance(error, TooManyFiles):
        return ngettext(
            "One message takes at most {n} file.",
            "One message takes at most {n} files.",
            error.limit,
        ).format(n=error.limit)
    return _("The message was not accepted.")
