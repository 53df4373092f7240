"""How a specialist's actions from Telegram read (services/staff_actions.py): the answers to
the buttons and commands, and the notices that confirm, delay or refuse an action."""

from __future__ import annotations

from html import escape

from aiogram.utils.i18n import gettext as _
from aiogram.utils.i18n import ngettext

from services import staff_actions
from services.db.models import StaffActionKind
from services.notices import StaffActionDelayed, StaffActionDone, StaffActionRefused


def _values(number: str, subject: str = "") -> dict[str, str]:
    return {"number": escape(number), "subject": escape(subject, quote=False)}


def action_name(kind: StaffActionKind) -> str:
    if kind is StaffActionKind.REPLY:
        return _("the reply")
    if kind is StaffActionKind.COMMENT:
        return _("the internal comment")
    if kind is StaffActionKind.RESOLVE:
        return _("resolving")
    if kind is StaffActionKind.TAKE:
        return _("taking the ticket")
    return _("the reassignment")


def done(notice: StaffActionDone) -> str:
    values = _values(notice.number, notice.subject)
    kind = notice.action
    if kind is StaffActionKind.REPLY:
        text = _(
            "✅ Your reply on <b>#{number}</b> «{subject}» is in the queue; the merchant gets it."
        )
        if notice.files:
            text += " " + ngettext("📎 {n} file.", "📎 {n} files.", notice.files).format(
                n=notice.files
            )
        return text.format(**values)
    if kind is StaffActionKind.COMMENT:
        return _(
            "✅ Your internal comment on <b>#{number}</b> «{subject}» is in the queue."
        ).format(**values)
    if kind is StaffActionKind.RESOLVE:
        return _("✅ <b>#{number}</b> «{subject}» is resolved; the merchant is told.").format(
            **values
        )
    if kind is StaffActionKind.TAKE:
        return _("✅ <b>#{number}</b> «{subject}» is yours now.").format(**values)
    return _("✅ <b>#{number}</b> «{subject}» is assigned to {owner}.").format(
        **values, owner=escape(notice.owner or "—", quote=False)
    )


def delayed(notice: StaffActionDelayed) -> str:
    return _(
        "⏳ The queue does not answer: {action} on <b>#{number}</b> «{subject}» is saved and "
        "will be written as soon as it answers."
    ).format(**_values(notice.number, notice.subject), action=action_name(notice.action))


def refused(notice: StaffActionRefused) -> str:
    return _(
        "⚠️ The queue refused {action} on <b>#{number}</b> «{subject}»: {reason}. Nothing was "
        "changed; do it in the queue's own interface."
    ).format(
        **_values(notice.number, notice.subject),
        action=action_name(notice.action),
        reason=escape(notice.reason, quote=False),
    )


def accepted(result: staff_actions.Accepted) -> str:
    """The immediate answer: accepted, on its way; the notice confirms."""
    values = _values(result.number)
    if result.done:
        return _("This was done already on <b>#{number}</b>.").format(**values)
    return _(
        "Accepted: {action} on <b>#{number}</b> is being written to the queue. "
        "I will confirm when it is there."
    ).format(**values, action=action_name(result.kind))


def refusal(error: staff_actions.ActionRefused) -> str:
    values = _values(error.number)
    reason = error.reason
    if reason == staff_actions.NOT_STAFF:
        return _("This is for support staff only.")
    if reason == staff_actions.NO_TICKET:
        return _("No ticket with number #{number} came through frontdesk.").format(**values)
    if reason == staff_actions.NOT_FILED:
        return _("Ticket #{number} is not registered in the queue yet.").format(**values)
    if reason == staff_actions.CLOSED_TICKET:
        return _(
            "Ticket #{number} is closed (or being resolved): no replies and no resolving. "
            "Reopen it in the queue first."
        ).format(**values)
    if reason == staff_actions.EMPTY:
        return _("There is nothing to send: write some text.")
    if reason == staff_actions.TOO_MANY_FILES:
        return _("Too many files for one reply.")
    if reason == staff_actions.NO_FILES_IN_COMMENT:
        return _("An internal comment takes text only; send the files as a reply.")
    if reason == staff_actions.UNKNOWN_SPECIALIST:
        return _("This specialist is not (any more) on the staff.")
    if reason == staff_actions.ALREADY_YOURS:
        return _("Ticket #{number} is yours already.").format(**values)
    if reason == staff_actions.ALREADY_OWNER:
        return _("Ticket #{number} is assigned to them already.").format(**values)
    return _("This cannot be done.")


def ask_text(kind: StaffActionKind, number: str) -> str:
    if kind is StaffActionKind.COMMENT:
        return _(
            "Write the internal comment on <b>#{number}</b> (the merchant does not see it), "
            "or /cancel."
        ).format(**_values(number))
    return _(
        "Write the reply to <b>#{number}</b>: text, photos or documents (an album is one reply), "
        "or /cancel."
    ).format(**_values(number))


def unsupported_input() -> str:
    return _("Please send text, photos or documents, or /cancel.")


def cancelled() -> str:
    return _("Cancelled: nothing was sent.")


def confirm_resolve(number: str) -> str:
    return _("Resolve <b>#{number}</b>? The merchant is told it is resolved.").format(
        **_values(number)
    )


def not_resolved() -> str:
    return _("Not resolved.")


def choose_specialist(number: str) -> str:
    return _("Assign <b>#{number}</b> to:").format(**_values(number))


def nobody_to_assign() -> str:
    return _("There is no other specialist linked to frontdesk.")


def ask_minutes(number: str) -> str:
    return _(
        "How many minutes did the modification on <b>#{number}</b> take? Send a number, or /cancel."
    ).format(**_values(number))


def ask_price(minutes: str) -> str:
    return _("Work over {minutes} is paid at your quote: send the price in rubles.").format(
        minutes=minutes
    )


def not_a_number() -> str:
    return _("Please send a whole number, or /cancel.")


def usage(command: str) -> str:
    if command in ("reply", "comment"):
        return _("Usage: <code>/{command} &lt;ticket number&gt; &lt;text&gt;</code>.").format(
            command=command
        )
    return _("Usage: <code>/{command} &lt;ticket number&gt;</code>.").format(command=command)


def button_reply() -> str:
    return _("💬 Reply")


def button_comment() -> str:
    return _("📝 Comment")


def button_resolve() -> str:
    return _("✅ Resolve")


def button_modification() -> str:
    return _("⏱ Record modification")


def button_take() -> str:
    return _("🙋 Take")


def button_reassign() -> str:
    return _("👥 Reassign")


def button_yes() -> str:
    return _("Yes, resolve")


def button_no() -> str:
    return _("No")


def modification_free(number: str, minutes: str, before: bool) -> str:
    if before:
        return _("This modification is recorded already.")
    return _("Recorded on #{number}: {minutes}, free.").format(
        number=escape(number), minutes=minutes
    )


def modification_paid(number: str, minutes: str, price: str) -> str:
    return _("Recorded on #{number}: {minutes}, paid: {price}.").format(
        number=escape(number), minutes=minutes, price=price
    )
