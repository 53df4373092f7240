"""What nobody else took. Outside any wizard or state, a text or a file is not a registered
request: the bot says so and offers, in one tap, to add it to one of the merchant's open requests
or to start a new request with it. The message waits in FSM data under a short id (callback data
carries the id, never the text: 64 bytes)."""

from __future__ import annotations

import logging
import secrets
from contextlib import suppress
from typing import Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.types import CallbackQuery, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers import my_tickets as tickets_ui
from handlers.my_tickets import render as tickets_render
from handlers.my_tickets.content import Albums, Content, carries_content, content_of
from handlers.my_tickets.keyboards import HeldAction, HeldCallback, held_keyboard
from handlers.new_ticket import Wizard
from handlers.new_ticket.draft import WizardData
from services import my_tickets
from services.files import FileRef
from services.merchants import MerchantProfile
from services.regulation import Regulation
from services.replies import ReplyKind

logger = logging.getLogger(__name__)

router = Router(name=__name__)

# FSM data key of the messages waiting for the merchant's choice; the newest few are kept.
HELD = "held_messages"
HELD_KEEP = 5


class Held(BaseModel):
    text: str = ""
    files: list[FileRef] = []
    message_ids: list[int] = []

    def content(self) -> Content:
        return Content(text=self.text, files=list(self.files), message_ids=list(self.message_ids))


async def _hold(state: FSMContext, content: Content) -> str:
    held_id = secrets.token_hex(4)
    data = await state.get_data()
    waiting: dict[str, Any] = dict(data.get(HELD) or {})
    waiting[held_id] = Held(
        text=content.text, files=content.files, message_ids=content.message_ids
    ).model_dump(mode="json")
    # dicts keep insertion order: the oldest go first.
    waiting = dict(list(waiting.items())[-HELD_KEEP:])
    await state.update_data({HELD: waiting})
    return held_id


async def _take(state: FSMContext, held_id: str) -> Held | None:
    data = await state.get_data()
    waiting: dict[str, Any] = dict(data.get(HELD) or {})
    raw = waiting.pop(held_id, None)
    await state.update_data({HELD: waiting})
    if raw is None:
        return None
    try:
        return Held.model_validate(raw)
    except ValidationError:
        return None


async def _offer(
    bot: Bot, chat_id: int, session: AsyncSession, merchant: MerchantProfile, held_id: str
) -> None:
    open_tickets = await my_tickets.open_tickets(session, merchant.id)
    await bot.send_message(
        chat_id,
        tickets_render.held_offer(bool(open_tickets)),
        reply_markup=held_keyboard(held_id, open_tickets),
    )


@router.message(StateFilter(None), F.chat.type == "private", F.media_group_id)
async def free_album(
    message: Message,
    state: FSMContext,
    merchant: MerchantProfile,
    sessionmaker: async_sessionmaker[AsyncSession],
    albums: Albums,
    i18n: I18n,
    bot: Bot,
) -> None:
    locale = i18n.current_locale

    async def complete(content: Content) -> None:
        with i18n.context(), i18n.use_locale(locale):
            held_id = await _hold(state, content)
            async with sessionmaker() as session:
                await _offer(bot, message.chat.id, session, merchant, held_id)

    albums.add(message, complete)


@router.message(
    StateFilter(None),
    F.chat.type == "private",
    F.func(carries_content),
    ~F.text.startswith("/"),
)
async def free_message(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    merchant: MerchantProfile,
    bot: Bot,
) -> None:
    held_id = await _hold(state, content_of(message))
    await _offer(bot, message.chat.id, session, merchant, held_id)


@router.callback_query(HeldCallback.filter(F.action == HeldAction.ADD))
async def add_held(
    query: CallbackQuery,
    callback_data: HeldCallback,
    state: FSMContext,
    session: AsyncSession,
    merchant: MerchantProfile,
    replies: tickets_ui.Waker | None = None,
) -> None:
    line = await my_tickets.ticket_of(session, merchant.id, callback_data.ticket)
    if line is None:
        logger.warning(
            "merchant %s asked for ticket %s, not theirs: refused",
            merchant.id,
            callback_data.ticket,
        )
        await query.answer(tickets_render.not_yours(), show_alert=True)
        return
    held = await _take(state, callback_data.held)
    if held is None:
        await query.answer(tickets_render.held_expired(), show_alert=True)
        await _drop_buttons(query)
        return
    await query.answer()
    answer, accepted = await tickets_ui.add_content(
        session,
        merchant,
        line.id,
        held.content(),
        key=f"{query.from_user.id}:held:{callback_data.held}",
        kind=ReplyKind.REPLY,
        replies=replies,
    )
    await _drop_buttons(query)
    if isinstance(query.message, Message):
        sent = await query.message.answer(answer)
        await tickets_ui.remember_answer(session, sent, line.id, accepted)


@router.callback_query(HeldCallback.filter(F.action == HeldAction.NEW))
async def new_with_held(
    query: CallbackQuery,
    callback_data: HeldCallback,
    state: FSMContext,
    session: AsyncSession,
    merchant: MerchantProfile,
    regulation: Regulation,
) -> None:
    held = await _take(state, callback_data.held)
    if held is None or not isinstance(query.message, Message):
        await query.answer(tickets_render.held_expired(), show_alert=True)
        await _drop_buttons(query)
        return
    await query.answer()
    await _drop_buttons(query)
    # The wizard from its first step, the description already written.
    data = WizardData(
        description=held.text or None,
        description_message_ids=list(held.message_ids),
        files=list(held.files),
        prefilled=bool(held.text.strip()),
    )
    wizard = Wizard(state, regulation, session, merchant)
    await wizard.show(query.message, data, await wizard.first_step(data), edit=False)


@router.callback_query(HeldCallback.filter(F.action == HeldAction.DROP))
async def drop_held(query: CallbackQuery, callback_data: HeldCallback, state: FSMContext) -> None:
    await _take(state, callback_data.held)
    await query.answer(tickets_render.held_dropped())
    await _drop_buttons(query)


async def _drop_buttons(query: CallbackQuery) -> None:
    if isinstance(query.message, Message):
        with suppress(TelegramBadRequest):
            await query.message.edit_reply_markup(reply_markup=None)


@router.message()
async def not_understood(message: Message) -> None:
    await message.answer(
        _("I did not understand that. Send /new to file a support request, or /help.")
    )


@router.callback_query()
async def stale_button(query: CallbackQuery) -> None:
    await query.answer(
        _("This button is out of date. Send /new to file a new request."), show_alert=True
    )
