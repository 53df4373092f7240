from __future__ import annotations

import logging
from html import escape

from aiogram import Bot, Router
from aiogram.filters import Command, CommandObject, CommandStart
from aiogram.types import Message
from aiogram.utils.i18n import I18n, get_i18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.staff import show_staff_commands
from handlers.stores import how_to_link
from services import links, staff, stores
from services.db.base import utcnow
from services.db.models import Role, StaffRole
from services.merchants import MerchantProfile
from services.regulation import UNLINKED_PLAN, Regulation
from services.sla import working_day_types

router = Router(name=__name__)
logger = logging.getLogger(__name__)


@router.message(CommandStart(deep_link=True))
async def start_with_link(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    merchant: MerchantProfile,
    bot: Bot,
    i18n: I18n,
) -> None:
    """`/start <token>`: the link the platform gave (services/links.py), or a staff link
    (services/staff.py): one namespace, two tables, so neither is ever taken for the other."""
    token = command.args or ""
    redemption = await links.redeem(session, token, merchant_id=merchant.id, now=utcnow())
    if redemption.outcome is links.Redeemed.UNKNOWN:
        staffed = await staff.redeem(
            session,
            token,
            telegram_id=merchant.telegram_id,
            now=utcnow(),
            locale=i18n.current_locale,
        )
        if staffed.member is not None:
            await _staff_linked(message, session, bot, i18n, staffed.member)
            return
        redemption = links.Redemption(staffed.outcome)
    if redemption.store is not None:
        store = redemption.store
        logger.info("merchant %s linked to store %s as %s", merchant.id, store.id, store.role)
        text = (
            _(
                "✅ Your Telegram account is linked to the store <b>{name}</b> ({domain}) as its "
                "owner. Requests you file here are registered from your store account's e-mail."
            )
            if store.role is Role.OWNER
            else _(
                "✅ Your Telegram account is linked to the store <b>{name}</b> ({domain}) as an "
                "administrator. Requests you file here are registered from your store account's "
                "e-mail."
            )
        )
        await message.answer(
            text.format(name=escape(store.name, quote=False), domain=escape(store.domain))
            + "\n\n"
            + _("/new — file a request\n/stores — your stores")
        )
        return
    # Never says whose link it was or which store: only what to do now.
    logger.warning("merchant %s: link token refused (%s)", merchant.id, redemption.outcome)
    answers = {
        links.Redeemed.USED: _(
            "This link has already been used. Each link works once: if you need to link the "
            "store again, get a new link in your store's admin panel: <b>Help → Telegram</b>."
        ),
        links.Redeemed.EXPIRED: _(
            "This link has expired: links work for a short time only. Please get a new one in "
            "your store's admin panel: <b>Help → Telegram</b>."
        ),
        links.Redeemed.UNKNOWN: _(
            "This link is not valid. Please open the link from your store's admin panel "
            "(<b>Help → Telegram</b>) again, without changing it."
        ),
    }
    await message.answer(answers[redemption.outcome])


async def _staff_linked(
    message: Message, session: AsyncSession, bot: Bot, i18n: I18n, member: staff.Staff
) -> None:
    logger.info(
        "telegram user %s linked as staff %s (%s)",
        member.telegram_id,
        member.queue_user,
        member.role,
    )
    await show_staff_commands(bot, i18n, message.chat.id)
    await staff.commands_shown(session, member.telegram_id, True)
    text = (
        _("✅ Your Telegram account is linked to the queue user <b>{user}</b> as a lead.")
        if member.role is StaffRole.LEAD
        else _(
            "✅ Your Telegram account is linked to the queue user <b>{user}</b> as a specialist."
        )
    )
    await message.answer(
        text.format(user=escape(member.queue_user, quote=False))
        + "\n\n"
        + _("/whoami — your role and queue user")
    )


@router.message(CommandStart())
async def start(message: Message, session: AsyncSession, merchant: MerchantProfile) -> None:
    greeting = _(
        "Hello, {name}!\n\n"
        "I am the front desk of the store platform's technical support. "
        "I file your request into the official support queue — only a request registered "
        "there counts — and tell you its number and when to expect the first answer.\n\n"
        "/new — file a request\n"
        "/help — how it works"
    ).format(name=escape(merchant.full_name, quote=False))
    if not await stores.stores_of(session, merchant.id):
        greeting += "\n\n" + how_to_link()
    await message.answer(greeting)


def _deadlines(regulation: Regulation) -> str:
    """Which types count working days only, and the office hours: from the policies."""
    loc, catalog = get_i18n().current_locale, regulation.catalog
    working = set(working_day_types(regulation.policies, catalog, UNLINKED_PLAN))
    hours = regulation.policies.business_hours

    def labels(codes: list[str]) -> str:
        return ", ".join(
            f"«{escape(t.label.get(loc), quote=False)}»" for t in catalog.types if t.code in codes
        )

    round_the_clock = [t.code for t in catalog.types if t.code not in working]
    lines = [_("<b>Deadlines</b>")]
    if round_the_clock:
        lines.append(_("Round the clock: {types}.").format(types=labels(round_the_clock)))
    if working:
        lines.append(
            _(
                "On working days, Monday to Friday, {opens}–{closes} Moscow time (days off are "
                "not counted in the deadlines): {types}."
            ).format(
                opens=hours.opens.strftime("%H:%M"),
                closes=hours.closes.strftime("%H:%M"),
                types=labels(sorted(working)),
            )
        )
    lines.append(
        _(
            "I tell you the deadline of the first reaction when the request is registered. "
            "Under high load, deadlines may be longer."
        )
    )
    return "\n".join(lines)


@router.message(Command("help"))
async def help_(message: Message, regulation: Regulation) -> None:
    await message.answer(
        "\n\n".join(
            (
                _(
                    "<b>How to file a request</b>\n"
                    "1. Send /new, choose the store (if you have several), the type and the "
                    "category.\n"
                    "2. Write a short subject and describe the problem, in one message or several, "
                    "then press <b>Done</b>. One request, one problem.\n"
                    "3. Attach screenshots or documents if they help.\n"
                    "4. Check everything and press <b>Send</b>: I tell you the request's number "
                    "and when to expect the first reaction; the specialist's answers come here.\n"
                    "Each step has <b>Back</b>, and your draft is kept if you come back later."
                ),
                _(
                    "<b>Commands</b>\n"
                    "/new — file a request\n"
                    "/tickets — your requests, their status and the conversation\n"
                    "/stores — your linked stores\n"
                    "/quota — free modifications left this month\n"
                    "/language — change the language\n"
                    "/cancel — drop the request you are writing"
                ),
                _deadlines(regulation),
                _(
                    "<b>What support does not do</b>\n"
                    "• consultations on layout unrelated to the platform's features;\n"
                    "• SEO, advertising, legal and business organisation questions: only "
                    "limited help;\n"
                    "• questions about features provided by third-party services: they may be "
                    "impossible to solve."
                ),
                _("Please do not file the same request twice: it only delays the answer."),
            )
        )
    )
