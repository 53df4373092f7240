"""/new: type → category → subject → description → review → filed in the official queue."""

from __future__ import annotations

from contextlib import suppress

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, InaccessibleMessage, Message
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.new_ticket import draft as drafts
from handlers.new_ticket import render
from handlers.new_ticket.draft import WizardData
from handlers.new_ticket.keyboards import Action, WizardCallback
from handlers.new_ticket.states import NewTicket
from services import tickets
from services.catalog import Catalog
from services.filing import FilingWorker
from services.merchants import MerchantProfile
from services.queue.base import TicketQueue

router = Router(name=__name__)

# Which buttons make sense at which step; any other press is a button left over from before.
ALLOWED: dict[str, frozenset[Action]] = {
    NewTicket.choosing_type.state: frozenset({Action.TYPE, Action.CANCEL}),
    NewTicket.choosing_category.state: frozenset({Action.CATEGORY, Action.BACK, Action.CANCEL}),
    NewTicket.entering_subject.state: frozenset({Action.BACK, Action.CANCEL}),
    NewTicket.entering_description.state: frozenset({Action.BACK, Action.CANCEL}),
    NewTicket.reviewing.state: frozenset(
        {
            Action.SEND,
            Action.EDIT_SUBJECT,
            Action.EDIT_DESCRIPTION,
            Action.EDIT_CATEGORY,
            Action.BACK,
            Action.CANCEL,
        }
    ),
    NewTicket.confirming_restart.state: frozenset({Action.RESUME, Action.RESTART}),
}

BACK: dict[str, State] = {
    NewTicket.choosing_category.state: NewTicket.choosing_type,
    NewTicket.entering_subject.state: NewTicket.choosing_category,
    NewTicket.entering_description.state: NewTicket.entering_subject,
    NewTicket.reviewing.state: NewTicket.entering_description,
}

STATES: dict[str, State] = {state.state: state for state in NewTicket.__states__}


# --- Entering and leaving -------------------------------------------------------------------


@router.message(Command("new"))
async def new_request(message: Message, state: FSMContext, catalog: Catalog) -> None:
    current = await state.get_state()
    data = await drafts.load(state)
    if current in ALLOWED and data is not None and data.has_content:
        # /new in the middle of a draft: ask, never drop what was written.
        if current != NewTicket.confirming_restart.state:
            data.paused_state = current
        await _show(message, state, catalog, data, NewTicket.confirming_restart, edit=False)
        return
    await _show(message, state, catalog, WizardData(), NewTicket.choosing_type, edit=False)


@router.message(Command("cancel"))
async def cancel(message: Message, state: FSMContext, bot: Bot) -> None:
    data = await drafts.load(state)
    had_draft = await state.get_state() is not None
    await state.clear()
    if data is not None:
        await _drop_keyboard(bot, message.chat.id, data.prompt_message_id)
    if had_draft:
        await message.answer(_("The request is cancelled. Send /new to start a new one."))
    else:
        await message.answer(_("There is nothing to cancel. Send /new to file a request."))


# --- Buttons -------------------------------------------------------------------------------


@router.callback_query(WizardCallback.filter())
async def on_button(
    query: CallbackQuery,
    callback_data: WizardCallback,
    state: FSMContext,
    catalog: Catalog,
    session: AsyncSession,
    queue: TicketQueue,
    filing: FilingWorker,
    merchant: MerchantProfile,
) -> None:
    current = await state.get_state()
    data = await drafts.load(state)
    if (
        data is None
        or current not in ALLOWED
        or callback_data.draft != data.draft_id
        or callback_data.action not in ALLOWED[current]
        or isinstance(query.message, InaccessibleMessage)
        or query.message is None
    ):
        await _stale(query)
        return
    message = query.message
    action = callback_data.action

    if action is Action.CANCEL:
        await state.clear()
        await query.answer()
        await message.edit_text(_("The request is cancelled. Send /new to start a new one."))
        return

    if action is Action.SEND:
        await _send(query, message, state, catalog, session, queue, filing, merchant, data)
        return

    target: State
    if action is Action.TYPE:
        if catalog.type(callback_data.code) is None:
            await _stale(query)
            return
        if data.request_type != callback_data.code:
            data.request_type, data.category = callback_data.code, None
        target = NewTicket.choosing_category
    elif action is Action.CATEGORY:
        if catalog.category(data.request_type or "", callback_data.code) is None:
            await _stale(query)
            return
        data.category = callback_data.code
        target = NewTicket.reviewing if data.back_to_review else NewTicket.entering_subject
        data.back_to_review = False
    elif action is Action.BACK:
        if data.back_to_review and current != NewTicket.choosing_category.state:
            data.back_to_review, target = False, NewTicket.reviewing
        else:
            # From the category list, Back leads to the types even when editing from the review.
            target = BACK[current]
    elif action is Action.EDIT_SUBJECT:
        data.back_to_review, target = True, NewTicket.entering_subject
    elif action is Action.EDIT_DESCRIPTION:
        data.back_to_review, target = True, NewTicket.entering_description
    elif action is Action.EDIT_CATEGORY:
        data.back_to_review, target = True, NewTicket.choosing_category
    elif action is Action.RESUME:
        target = STATES.get(data.paused_state or "", NewTicket.choosing_type)
        data.paused_state = None
    else:  # Action.RESTART
        data, target = WizardData(), NewTicket.choosing_type

    await query.answer()
    await _show(message, state, catalog, data, target, edit=True)


async def _send(
    query: CallbackQuery,
    message: Message,
    state: FSMContext,
    catalog: Catalog,
    session: AsyncSession,
    queue: TicketQueue,
    filing: FilingWorker,
    merchant: MerchantProfile,
    data: WizardData,
) -> None:
    try:
        await tickets.submit(
            session,
            catalog,
            merchant,
            data.to_draft(),
            reference=data.reference,
            locale=render.locale(),
            queue_name=queue.name,
        )
    except tickets.InvalidRequest as error:
        await query.answer()
        await message.answer(render.invalid(error))
        return
    await query.answer()
    await state.clear()
    with suppress(TelegramBadRequest):
        await message.edit_reply_markup(reply_markup=None)
    await message.answer(render.accepted())
    filing.wake()


async def _stale(query: CallbackQuery) -> None:
    await query.answer(
        _(
            "This button belongs to a step or a request that is already finished. "
            "Send /new to file a new request."
        ),
        show_alert=True,
    )
    if isinstance(query.message, Message):
        with suppress(TelegramBadRequest):
            await query.message.edit_reply_markup(reply_markup=None)


# --- Text steps ----------------------------------------------------------------------------


@router.message(NewTicket.entering_subject, F.text)
async def on_subject(message: Message, state: FSMContext, catalog: Catalog) -> None:
    data = await drafts.load(state) or WizardData()
    try:
        data.subject = tickets.clean_subject(message.text)
    except tickets.InvalidRequest as error:
        await message.answer(render.invalid(error))
        return
    target = NewTicket.reviewing if data.back_to_review else NewTicket.entering_description
    data.back_to_review = False
    await _show(message, state, catalog, data, target, edit=False)


@router.message(NewTicket.entering_description, F.text)
async def on_description(message: Message, state: FSMContext, catalog: Catalog) -> None:
    data = await drafts.load(state) or WizardData()
    try:
        data.description = tickets.clean_description(message.text)
    except tickets.InvalidRequest as error:
        await message.answer(render.invalid(error))
        return
    data.back_to_review = False
    await _show(message, state, catalog, data, NewTicket.reviewing, edit=False)


@router.message(StateFilter(NewTicket.entering_subject, NewTicket.entering_description))
async def not_text(message: Message) -> None:
    await message.answer(_("Please send this step as a text message."))


@router.message(
    StateFilter(
        NewTicket.choosing_type,
        NewTicket.choosing_category,
        NewTicket.reviewing,
        NewTicket.confirming_restart,
    )
)
async def expected_button(message: Message, state: FSMContext, catalog: Catalog) -> None:
    data = await drafts.load(state) or WizardData()
    current = STATES.get(await state.get_state() or "", NewTicket.choosing_type)
    await message.answer(_("Please choose with the buttons below. To stop, send /cancel."))
    # The buttons may be far up the chat: show the step again right here.
    await _show(message, state, catalog, data, current, edit=False)


# --- Rendering -----------------------------------------------------------------------------


async def _show(
    message: Message,
    state: FSMContext,
    catalog: Catalog,
    data: WizardData,
    target: State,
    *,
    edit: bool,
) -> None:
    text, keyboard = render.step(catalog, data, target)
    if edit:
        await message.edit_text(text, reply_markup=keyboard)
        data.prompt_message_id = message.message_id
    else:
        previous = data.prompt_message_id
        sent = await message.answer(text, reply_markup=keyboard)
        data.prompt_message_id = sent.message_id
        # Only the newest prompt keeps its buttons, so old ones cannot be pressed by mistake.
        if message.bot is not None:
            await _drop_keyboard(message.bot, message.chat.id, previous)
    await state.set_state(target)
    await drafts.save(state, data)


async def _drop_keyboard(bot: Bot, chat_id: int, message_id: int | None) -> None:
    if message_id is None:
        return
    with suppress(TelegramBadRequest):
        await bot.edit_message_reply_markup(
            chat_id=chat_id, message_id=message_id, reply_markup=None
        )
