"""Staff commands (specialists and leads, services/staff.py): refused to everyone else, and shown
only in a linked member's chat (a per-chat command menu, BotCommandScopeChat).

`StaffOnly` runs after the command or callback filter, so only a staff command or a staff button
costs a look-up. A refusal is silent here: the command falls through to the generic "I do not know
the command" (handlers/commands.py), a button to the stale-button answer (handlers/fallback.py),
and a WARNING is logged. A removed member's staff menu is cleared at their next staff command (the
CLI that removed them cannot call Telegram).
"""

from __future__ import annotations

import logging
from contextlib import suppress
from enum import StrEnum
from html import escape
from typing import Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramAPIError
from aiogram.filters import BaseFilter, Command, CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    BotCommand,
    BotCommandScopeChat,
    CallbackQuery,
    InlineKeyboardMarkup,
    Message,
    TelegramObject,
    Update,
)
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from aiogram.utils.keyboard import InlineKeyboardBuilder
from sqlalchemy.ext.asyncio import AsyncSession

from handlers import texts
from handlers.commands import COMMANDS, N_
from services import modification_records, restrictions, staff
from services.db.base import utcnow
from services.db.models import StaffRole
from services.regulation import Regulation

logger = logging.getLogger(__name__)
router = Router(name=__name__)

STAFF_COMMANDS: tuple[tuple[str, str], ...] = (
    ("whoami", N_("Staff: your role and queue user")),
    ("modification", N_("Staff: record a modification (ticket, minutes, price)")),
    ("reply", N_("Staff: reply to the merchant (ticket, text)")),
    ("comment", N_("Staff: internal comment (ticket, text)")),
    ("resolve", N_("Staff: resolve a ticket (ticket)")),
    ("take", N_("Staff: take a ticket (ticket)")),
    ("restrict", N_("Lead: restrict a user from filing (id or @username, reason)")),
    ("unrestrict", N_("Lead: lift a user's restriction (id or @username)")),
    ("queue", N_("Lead: unassigned and at-risk tickets, by deadline")),
    ("stats", N_("Lead: tickets, first reactions, breaches, modifications")),
)


class StaffAct(StrEnum):
    REFRESH = "r"


class StaffCallback(CallbackData, prefix="sf"):
    action: StaffAct


class StaffOnly(BaseFilter):
    """Passes a linked, not removed staff member (as `staff_member`); refuses anyone else."""

    async def __call__(
        self, event: TelegramObject, session: AsyncSession, bot: Bot, i18n: I18n
    ) -> bool | dict[str, Any]:
        user = getattr(event, "from_user", None)
        if user is None:
            return False
        member = await staff.member_of(session, user.id)
        if member is not None:
            return {"staff_member": member}
        # A button's callback data, or a command's name: never what the person wrote.
        text = getattr(event, "text", None) or ""
        what = (
            event.data
            if isinstance(event, CallbackQuery)
            else text.split(maxsplit=1)[0]
            if text.startswith("/")
            else "a message"
        )
        logger.warning("user %s is not staff: staff command or button refused (%r)", user.id, what)
        if await staff.menu_to_clear(session, user.id):
            await hide_staff_commands(bot, i18n, user.id)
            await staff.commands_shown(session, user.id, False)
        return False


def _scopes(i18n: I18n) -> list[str | None]:
    return [*i18n.available_locales, None]  # None: users whose Telegram speaks another language


async def show_staff_commands(bot: Bot, i18n: I18n, chat_id: int) -> None:
    """The member's own menu: the merchants' commands and the staff ones, in every language."""
    scope = BotCommandScopeChat(chat_id=chat_id)
    for locale in _scopes(i18n):
        language = locale or i18n.default_locale
        commands = [
            BotCommand(command=command, description=i18n.gettext(text, locale=language))
            for command, text in (*COMMANDS, *STAFF_COMMANDS)
        ]
        await bot.set_my_commands(commands, scope=scope, language_code=locale)


async def hide_staff_commands(bot: Bot, i18n: I18n, chat_id: int) -> None:
    scope = BotCommandScopeChat(chat_id=chat_id)
    for locale in _scopes(i18n):
        with suppress(TelegramAPIError):  # nothing to delete is no failure
            await bot.delete_my_commands(scope=scope, language_code=locale)


def _card(member: staff.Staff) -> tuple[str, InlineKeyboardMarkup]:
    role = _("lead") if member.role is StaffRole.LEAD else _("specialist")
    text = _(
        "<b>Staff</b>\nQueue user: <code>{user}</code>\nRole: {role}\nLinked since {since} UTC"
    ).format(
        user=escape(member.queue_user),
        role=role,
        since=member.since.strftime("%Y-%m-%d %H:%M"),
    )
    keyboard = InlineKeyboardBuilder()
    keyboard.button(text=_("Refresh"), callback_data=StaffCallback(action=StaffAct.REFRESH))
    return text, keyboard.as_markup()


@router.message(Command("whoami"), StaffOnly())
async def whoami(message: Message, staff_member: staff.Staff) -> None:
    text, keyboard = _card(staff_member)
    await message.answer(text, reply_markup=keyboard)


@router.callback_query(StaffCallback.filter(F.action == StaffAct.REFRESH), StaffOnly())
async def refresh(query: CallbackQuery, staff_member: staff.Staff) -> None:
    """Reads the registry again: a role changed by a new staff link shows up."""
    text, keyboard = _card(staff_member)
    if isinstance(query.message, Message) and query.message.html_text != text:
        with suppress(TelegramAPIError):  # deleted meanwhile
            await query.message.edit_text(text, reply_markup=keyboard)
        await query.answer()
        return
    await query.answer(_("Up to date."))


def _modification_usage() -> str:
    return _(
        "Usage: <code>/modification &lt;ticket number&gt; &lt;minutes&gt; [price]</code>, "
        "the number as the queue shows it. Work over {minutes} is paid at your quote: "
        "give the price then."
    )


def _parse_modification(args: str | None) -> tuple[str, int, int | None] | None:
    words = (args or "").split()
    if len(words) not in (2, 3):
        return None
    number, *numbers = words
    number = number.lstrip("#")
    if not number or not all(n.isdigit() for n in numbers):
        return None
    minutes = int(numbers[0])
    price = int(numbers[1]) if len(numbers) == 2 else None
    return number, minutes, price


def _refusal(reason: str, limit: int) -> str:
    if reason == modification_records.NO_TICKET:
        return _("No ticket with this number came through frontdesk.")
    if reason == modification_records.NOT_MODIFICATION:
        return _("This ticket is not a modification request.")
    if reason == modification_records.NO_STORE:
        return _("This ticket belongs to no store, so there is no quota to count it in.")
    if reason == modification_records.PRICE_REQUIRED:
        return _("Work over {minutes} is paid at your quote: give the price too.").format(
            minutes=texts.minutes(limit)
        )
    return _modification_usage().format(minutes=texts.minutes(limit))


@router.message(Command("modification"), StaffOnly())
async def record_modification(
    message: Message,
    command: CommandObject,
    event_update: Update,
    session: AsyncSession,
    staff_member: staff.Staff,
    regulation: Regulation,
) -> None:
    """The minutes spent on a modification ticket: the ledger decides free or paid, the merchant
    is told, the queue gets an internal note (services/modification_records.py)."""
    policy = regulation.policies.quota
    parsed = _parse_modification(command.args)
    if parsed is None:
        await message.answer(
            _modification_usage().format(minutes=texts.minutes(policy.free_minutes_limit))
        )
        return
    number, minutes, price = parsed
    try:
        recorded = await modification_records.record(
            session,
            policy,
            number=number,
            minutes=minutes,
            price=price,
            specialist=staff_member.queue_user,
            key=f"tg:{event_update.update_id}",
            now=utcnow(),
        )
    except modification_records.RecordRefused as refused:
        await message.answer(_refusal(refused.reason, policy.free_minutes_limit))
        return
    logger.info(
        "modification on #%s recorded by %s: %d min, %s",
        number,
        staff_member.queue_user,
        minutes,
        recorded.charge,
    )
    charge = recorded.charge
    if charge is None:
        head = _("This modification is recorded already.")
    elif charge.is_free:
        head = _("Recorded on #{number}: {minutes}, free.").format(
            number=escape(number), minutes=texts.minutes(minutes)
        )
    else:
        head = _("Recorded on #{number}: {minutes}, paid: {price}.").format(
            number=escape(number),
            minutes=texts.minutes(minutes),
            price=texts.money(charge.amount or 0, charge.currency, texts.current_locale()),
        )
    await message.answer(
        "\n".join(
            [
                head,
                _("The merchant is told; the queue gets an internal note."),
                texts.quota_line(recorded.quota),
            ]
        )
    )


def _restriction_usage() -> str:
    return _(
        "Usage: <code>/restrict &lt;Telegram id or @username&gt; &lt;reason&gt;</code> and "
        "<code>/unrestrict &lt;Telegram id or @username&gt;</code>."
    )


def _restriction_refusal(reason: str) -> str:
    if reason == restrictions.NOT_LEAD:
        return _("Only a lead may restrict users or lift a restriction.")
    if reason == restrictions.UNKNOWN_USER:
        return _("I do not know this user: give their Telegram id.")
    if reason == restrictions.SELF:
        return _("You cannot restrict yourself.")
    return _restriction_usage()


async def _set_restricted(
    message: Message,
    session: AsyncSession,
    lead: staff.Staff,
    args: str | None,
    *,
    restricted: bool,
) -> None:
    target, _space, reason = (args or "").strip().partition(" ")
    if not target:
        await message.answer(_restriction_usage())
        return
    try:
        change = await restrictions.set_restricted(
            session, lead, target=target, restricted=restricted, reason=reason, now=utcnow()
        )
    except restrictions.RestrictionRefused as refused:
        await message.answer(_restriction_refusal(refused.reason))
        return
    who = change.telegram_id
    if change.outcome is restrictions.Outcome.RESTRICTED:
        text = _("User {user} may no longer file requests; they are told so.").format(user=who)
    elif change.outcome is restrictions.Outcome.LIFTED:
        text = _("User {user} may file requests again; they are told so.").format(user=who)
    elif restricted:
        text = _("User {user} is restricted already.").format(user=who)
    else:
        text = _("User {user} is not restricted.").format(user=who)
    await message.answer(text)


@router.message(Command("restrict"), StaffOnly())
async def restrict(
    message: Message, command: CommandObject, session: AsyncSession, staff_member: staff.Staff
) -> None:
    await _set_restricted(message, session, staff_member, command.args, restricted=True)


@router.message(Command("unrestrict"), StaffOnly())
async def unrestrict(
    message: Message, command: CommandObject, session: AsyncSession, staff_member: staff.Staff
) -> None:
    await _set_restricted(message, session, staff_member, command.args, restricted=False)
