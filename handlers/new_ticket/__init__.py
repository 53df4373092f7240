"""/new: [store →] type → category → subject → description → review → filed in the queue."""

from __future__ import annotations

from contextlib import suppress
from dataclasses import dataclass, field
from typing import Protocol

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
from handlers.stores import how_to_link
from services import intake, stores, tickets
from services.db.base import utcnow
from services.filing import FilingWorker
from services.merchants import MerchantProfile
from services.queue.base import TicketQueue
from services.regulation import Regulation
from services.stores import StoreAccess

router = Router(name=__name__)

_REVIEW_ACTIONS = {
    Action.SEND,
    Action.SEND_PAID,
    Action.EDIT_SUBJECT,
    Action.EDIT_DESCRIPTION,
    Action.EDIT_CATEGORY,
    Action.BACK,
    Action.CANCEL,
}


def _name(state: State) -> str:
    """The name the FSM storage keeps (`NewTicket:reviewing`); aiogram types it optional because
    a State outside a StatesGroup has none, and every state here is in one."""
    if state.state is None:
        raise ValueError(f"{state!r} belongs to no StatesGroup")
    return state.state


# Which buttons make sense at which step; any other press is a button left over from before.
ALLOWED: dict[str, frozenset[Action]] = {
    _name(NewTicket.choosing_store): frozenset({Action.STORE, Action.CANCEL}),
    _name(NewTicket.choosing_type): frozenset({Action.TYPE, Action.BACK, Action.CANCEL}),
    _name(NewTicket.choosing_category): frozenset({Action.CATEGORY, Action.BACK, Action.CANCEL}),
    _name(NewTicket.entering_subject): frozenset({Action.BACK, Action.CANCEL}),
    _name(NewTicket.entering_description): frozenset({Action.BACK, Action.CANCEL}),
    _name(NewTicket.reviewing): frozenset(_REVIEW_ACTIONS),
    _name(NewTicket.confirming_restart): frozenset({Action.RESUME, Action.RESTART}),
}

BACK: dict[str, State] = {
    _name(NewTicket.choosing_type): NewTicket.choosing_store,
    _name(NewTicket.choosing_category): NewTicket.choosing_type,
    _name(NewTicket.entering_subject): NewTicket.choosing_category,
    _name(NewTicket.entering_description): NewTicket.entering_subject,
    _name(NewTicket.reviewing): NewTicket.entering_description,
}

STATES: dict[str, State] = {_name(state): state for state in NewTicket.__states__}


class Waker(Protocol):
    """A background worker that can be told there is work now (the notice delivery)."""

    def wake(self) -> None: ...


@dataclass
class Wizard:
    """What one update of the wizard reads to decide and to render."""

    state: FSMContext
    regulation: Regulation
    session: AsyncSession
    merchant: MerchantProfile
    _stores: list[StoreAccess] | None = field(default=None, init=False)

    async def stores(self) -> list[StoreAccess]:
        if self._stores is None:
            self._stores = await stores.stores_of(self.session, self.merchant.id)
        return self._stores

    async def store(self, data: WizardData) -> StoreAccess | None:
        return next((s for s in await self.stores() if s.id == data.store_id), None)

    async def show(
        self,
        message: Message,
        data: WizardData,
        target: State,
        *,
        edit: bool,
        notice: str | None = None,
    ) -> None:
        store = await self.store(data)
        view = render.StepView(
            stores=await self.stores(),
            store=store,
            quota=await intake.modification_quota(
                self.session,
                self.regulation,
                store=store,
                type_code=data.request_type or "",
                now=utcnow(),
            )
            if target == NewTicket.reviewing
            else None,
        )
        text, keyboard = render.step(self.regulation.catalog, data, target, view)
        if notice:
            text = notice + "\n\n" + text
        # The step is saved before the merchant can see it, so their answer always finds it.
        await self.state.set_state(target)
        await drafts.save(self.state, data)
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
        await drafts.save(self.state, data)

    async def first_step(self, data: WizardData) -> State:
        linked = await self.stores()
        if len(linked) == 1:
            data.store_id = linked[0].id
        # «При наличии нескольких магазинов оставить запрос нужно из того магазина, в котором
        # возникла проблема»: with several stores, the merchant says which one first.
        return NewTicket.choosing_store if len(linked) > 1 else NewTicket.choosing_type


# --- Entering and leaving -------------------------------------------------------------------


@router.message(Command("new"))
async def new_request(
    message: Message,
    state: FSMContext,
    regulation: Regulation,
    session: AsyncSession,
    merchant: MerchantProfile,
) -> None:
    wizard = Wizard(state, regulation, session, merchant)
    if not intake.may_start(regulation, linked=bool(await wizard.stores())):
        # UNLINKED_MAY_FILE=none: a request belongs to a store; say how to link one.
        await message.answer(how_to_link())
        return
    current = await state.get_state()
    data = await drafts.load(state)
    if current in ALLOWED and data is not None and data.has_content:
        # /new in the middle of a draft: ask, never drop what was written.
        if current != NewTicket.confirming_restart.state:
            data.paused_state = current
        await wizard.show(message, data, NewTicket.confirming_restart, edit=False)
        return
    data = WizardData()
    await wizard.show(message, data, await wizard.first_step(data), edit=False)


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
    regulation: Regulation,
    session: AsyncSession,
    queue: TicketQueue,
    filing: FilingWorker,
    delivery: Waker,
    merchant: MerchantProfile,
) -> None:
    current = await state.get_state()
    data = await drafts.load(state)
    if (
        data is None
        or current not in ALLOWED
        or callback_data.draft != data.draft_id
        or callback_data.action not in ALLOWED[current]
        or query.message is None
        or isinstance(query.message, InaccessibleMessage)
    ):
        await _stale(query)
        return
    wizard = Wizard(state, regulation, session, merchant)
    message, action, catalog = query.message, callback_data.action, regulation.catalog

    if action is Action.CANCEL:
        await state.clear()
        await query.answer()
        await message.edit_text(_("The request is cancelled. Send /new to start a new one."))
        return
    if action in (Action.SEND, Action.SEND_PAID):
        await _send(
            query, message, wizard, queue, filing, delivery, data, paid=action is Action.SEND_PAID
        )
        return

    target: State
    notice: str | None = None
    if action is Action.STORE:
        # Callback data is untrusted: the store must be one this merchant is linked to.
        store = next((s for s in await wizard.stores() if str(s.id) == callback_data.code), None)
        if store is None:
            await _stale(query)
            return
        data.store_id, target = store.id, NewTicket.choosing_type
    elif action is Action.TYPE:
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
        eligibility = await intake.check_category(
            session,
            regulation,
            store=await wizard.store(data),
            type_code=data.request_type or "",
            category=callback_data.code,
            now=utcnow(),
        )
        if eligibility.allowed:
            data.category = callback_data.code
            target = NewTicket.reviewing if data.back_to_review else NewTicket.entering_subject
            data.back_to_review = False
        else:
            notice, target = render.refusal(eligibility), NewTicket.choosing_category
    elif action is Action.BACK:
        if data.back_to_review and current != NewTicket.choosing_category.state:
            data.back_to_review, target = False, NewTicket.reviewing
        else:
            # From the category list, Back leads to the types even when editing from the review.
            target = BACK[current]
            if target == NewTicket.choosing_store and len(await wizard.stores()) < 2:
                await _stale(query)
                return
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
        data = WizardData()
        target = await wizard.first_step(data)

    await query.answer()
    await wizard.show(message, data, target, edit=True, notice=notice)


async def _send(
    query: CallbackQuery,
    message: Message,
    wizard: Wizard,
    queue: TicketQueue,
    filing: FilingWorker,
    delivery: Waker,
    data: WizardData,
    *,
    paid: bool,
) -> None:
    now, store = utcnow(), await wizard.store(data)
    # Checked again at the press of Send: the month may have turned, another admin may have
    # filed the month's last free-plan ticket, or the last free modification may be gone.
    eligibility = await intake.check_category(
        wizard.session,
        wizard.regulation,
        store=store,
        type_code=data.request_type or "",
        category=data.category or "",
        now=now,
    )
    if not eligibility.allowed:
        await query.answer()
        await wizard.show(
            message,
            data,
            NewTicket.choosing_category,
            edit=True,
            notice=render.refusal(eligibility),
        )
        return
    quota = await intake.modification_quota(
        wizard.session, wizard.regulation, store=store, type_code=data.request_type or "", now=now
    )
    if quota is not None and quota.left == 0 and not paid:
        # The price changed since the review was shown: show it again, with the price.
        await query.answer(_("Please confirm the price first."), show_alert=True)
        await wizard.show(message, data, NewTicket.reviewing, edit=True)
        return
    wait = await intake.wait_before_filing(
        wizard.session, wizard.regulation, merchant_id=wizard.merchant.id, now=now
    )
    if wait is not None:
        # Flood control: refused politely, the draft kept for later.
        await query.answer(render.too_many_tickets(wait), show_alert=True)
        return
    try:
        await tickets.submit(
            wizard.session,
            wizard.regulation.catalog,
            wizard.merchant,
            data.to_draft(),
            reference=data.reference,
            locale=render.locale(),
            queue_name=queue.name,
            store_id=store.id if store else None,
            plan=store.plan if store else None,
        )
    except tickets.InvalidRequest as error:
        await query.answer()
        await message.answer(render.invalid(error))
        return
    await query.answer()
    await wizard.state.clear()
    with suppress(TelegramBadRequest):
        await message.edit_reply_markup(reply_markup=None)
    # "Accepted" is a notice written with the ticket: it reaches the chat before the number.
    delivery.wake()
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
async def on_subject(
    message: Message,
    state: FSMContext,
    regulation: Regulation,
    session: AsyncSession,
    merchant: MerchantProfile,
) -> None:
    data = await drafts.load(state) or WizardData()
    try:
        data.subject = tickets.clean_subject(message.text)
    except tickets.InvalidRequest as error:
        await message.answer(render.invalid(error))
        return
    target = NewTicket.reviewing if data.back_to_review else NewTicket.entering_description
    data.back_to_review = False
    await Wizard(state, regulation, session, merchant).show(message, data, target, edit=False)


@router.message(NewTicket.entering_description, F.text)
async def on_description(
    message: Message,
    state: FSMContext,
    regulation: Regulation,
    session: AsyncSession,
    merchant: MerchantProfile,
) -> None:
    data = await drafts.load(state) or WizardData()
    try:
        data.description = tickets.clean_description(message.text)
    except tickets.InvalidRequest as error:
        await message.answer(render.invalid(error))
        return
    data.back_to_review = False
    wizard = Wizard(state, regulation, session, merchant)
    await wizard.show(message, data, NewTicket.reviewing, edit=False)


@router.message(StateFilter(NewTicket.entering_subject, NewTicket.entering_description))
async def not_text(message: Message) -> None:
    await message.answer(_("Please send this step as a text message."))


@router.message(
    StateFilter(
        NewTicket.choosing_store,
        NewTicket.choosing_type,
        NewTicket.choosing_category,
        NewTicket.reviewing,
        NewTicket.confirming_restart,
    )
)
async def expected_button(
    message: Message,
    state: FSMContext,
    regulation: Regulation,
    session: AsyncSession,
    merchant: MerchantProfile,
) -> None:
    data = await drafts.load(state) or WizardData()
    current = STATES.get(await state.get_state() or "", NewTicket.choosing_type)
    await message.answer(_("Please choose with the buttons below. To stop, send /cancel."))
    # The buttons may be far up the chat: show the step again right here.
    await Wizard(state, regulation, session, merchant).show(message, data, current, edit=False)


async def _drop_keyboard(bot: Bot, chat_id: int, message_id: int | None) -> None:
    if message_id is None:
        return
    with suppress(TelegramBadRequest):
        await bot.edit_message_reply_markup(
            chat_id=chat_id, message_id=message_id, reply_markup=None
        )
