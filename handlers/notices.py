"""How a notice (services/notices.py) reads in Telegram: the one place notices are worded.

`render` is a pure function of the notice's body, its files and the moment of sending, in the
locale the caller has set (aiogram's I18n context): the delivery worker (bot/delivery.py) calls it
and sends the parts in order, recording each. Rendering the same notice again gives the same
parts, so a delivery resumed at part N sends what part N was.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

from aiogram.types import InlineKeyboardMarkup

from handlers import reply_texts, staff_actions_texts, texts
from handlers.my_tickets.keyboards import reply_button
from handlers.staff_actions_keyboards import card_keyboard
from services.notices import (
    Accepted,
    Assigned,
    Body,
    Delayed,
    Deleted,
    FilingRestored,
    FilingRestricted,
    Merged,
    ModificationRecorded,
    Moved,
    Refused,
    Registered,
    Reply,
    ReplyAdded,
    ReplyDelayed,
    ReplyRefused,
    SlaWarning,
    StaffActionDelayed,
    StaffActionDone,
    StaffActionRefused,
    StatusChanged,
    Unassigned,
)
from services.staff_actions import card_actions

# What the Bot API lets a bot upload as a document.
DOCUMENT_LIMIT = 50 * 1000 * 1000


@dataclass(frozen=True, slots=True)
class FileInfo:
    """A file of the notice, without its bytes."""

    position: int
    filename: str
    content_type: str
    size: int


@dataclass(frozen=True, slots=True)
class TextPart:
    html: str
    keyboard: InlineKeyboardMarkup | None = None


@dataclass(frozen=True, slots=True)
class FilePart:
    position: int
    filename: str


Part = TextPart | FilePart


# Notices after which nothing more can be added to the ticket here: no Reply button.
_NO_REPLY = (Moved, Deleted)


def render(
    body: Body,
    files: tuple[FileInfo, ...] | list[FileInfo],
    *,
    now: datetime,
    ticket_id: int | None = None,
) -> list[Part]:
    """The notice's parts. With the ticket's id, the last text part carries a Reply button
    (except when the ticket left the queue)."""
    parts = _parts(body, files, now=now)
    if isinstance(body, (Assigned, Unassigned, SlaWarning)):
        return _with_staff_buttons(body, parts)
    if ticket_id is None or isinstance(body, _NO_REPLY):
        return parts
    last = max((i for i, part in enumerate(parts) if isinstance(part, TextPart)), default=None)
    if last is not None:
        part = parts[last]
        assert isinstance(part, TextPart)
        parts[last] = replace(part, keyboard=reply_button(ticket_id))
    return parts


def _with_staff_buttons(body: Assigned | Unassigned | SlaWarning, parts: list[Part]) -> list[Part]:
    """A ticket card for staff carries the specialist's actions (services/staff_actions.py)."""
    if isinstance(body, SlaWarning):
        number, actions = body.number, card_actions(modification=False, owned_by_reader=False)
    else:
        number = body.card.number
        actions = card_actions(
            modification=body.card.modification, owned_by_reader=isinstance(body, Assigned)
        )
    last = max((i for i, part in enumerate(parts) if isinstance(part, TextPart)), default=None)
    if last is not None:
        part = parts[last]
        assert isinstance(part, TextPart)
        parts[last] = replace(part, keyboard=card_keyboard(number, actions))
    return parts


def _parts(
    body: Body, files: tuple[FileInfo, ...] | list[FileInfo], *, now: datetime
) -> list[Part]:
    if isinstance(body, Accepted):
        return [TextPart(texts.accepted())]
    if isinstance(body, Registered):
        return [TextPart(texts.registered(body, now, texts.current_locale()))]
    if isinstance(body, Delayed):
        return [TextPart(texts.delayed(body.subject))]
    if isinstance(body, Refused):
        return [TextPart(texts.refused(body.subject))]
    if isinstance(body, StatusChanged):
        return [TextPart(texts.status_changed(body))]
    if isinstance(body, Moved):
        return [TextPart(texts.ticket_moved(body))]
    if isinstance(body, Merged):
        return [TextPart(texts.ticket_merged(body))]
    if isinstance(body, Deleted):
        return [TextPart(texts.ticket_deleted(body))]
    if isinstance(body, ReplyAdded):
        return [TextPart(reply_texts.reply_added(body))]
    if isinstance(body, ReplyDelayed):
        return [TextPart(reply_texts.reply_delayed(body))]
    if isinstance(body, ReplyRefused):
        return [TextPart(reply_texts.reply_refused(body))]
    if isinstance(body, FilingRestricted):
        return [TextPart(texts.restricted_notice(body))]
    if isinstance(body, FilingRestored):
        return [TextPart(texts.restored_notice())]
    if isinstance(body, ModificationRecorded):
        return [TextPart(texts.modification_recorded(body))]
    if isinstance(body, SlaWarning):
        return [TextPart(texts.sla_warning(body, now))]
    if isinstance(body, Assigned):
        return [TextPart(texts.assigned(body, now, texts.current_locale()))]
    if isinstance(body, Unassigned):
        return [TextPart(texts.unassigned(body, now, texts.current_locale()))]
    if isinstance(body, StaffActionDone):
        return [TextPart(staff_actions_texts.done(body))]
    if isinstance(body, StaffActionDelayed):
        return [TextPart(staff_actions_texts.delayed(body))]
    if isinstance(body, StaffActionRefused):
        return [TextPart(staff_actions_texts.refused(body))]
    parts: list[Part] = [TextPart(html) for html in texts.queue_reply(body)]
    for file in sorted(files, key=lambda f: f.position):
        if file.size == 0:
            continue  # Telegram refuses empty files
        if file.size > DOCUMENT_LIMIT:
            parts.append(TextPart(texts.attachment_too_large(file.filename, file.size)))
        else:
            parts.append(FilePart(file.position, file.filename or "file"))
    return parts


__all__ = ["FileInfo", "FilePart", "Part", "Reply", "TextPart", "render"]
