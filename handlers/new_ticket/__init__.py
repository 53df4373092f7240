"""/new: [store →] type → category → subject → description → review → filed in the queue."""

from __future__ import annotations

import logging
from contextlib import suppress
from dataclasses import dataclass, field

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, StateFilter
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State
from aiogram.types import CallbackQuery, InaccessibleMessage, InlineKeyboardMarkup, Message
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from handlers import texts
from handlers.commands import is_command
from handlers.new_ticket import draft as drafts
from handlers.new_ticket import render
from handlers.new_ticket.draft import DescriptionPart, WizardData
from handlers.new_ticket.keyboards import Action, WizardCallback
from handlers.new_ticket.states import NewTicket
from handlers.stores import how_to_link, not_linked
from services import intake, my_tickets, stores, tickets
from services.db.base import utcnow
from services.filing import FilingWorker
from services.merchants import MerchantProfile
from services.queue.base import TicketQueue
from services.regulation import Regulation
from services.rounds import Waker
from services.stores import StoreAccess

router = Router(name=__name__)
logger = logging.getLogger(__name__)

_REVIEW_ACTIONS = {
    Action.SEND,
    Action.SEND_PAID,
    Action.EDIT_SUBJECT,
    Action.EDIT_DESCRIPTION,
    Action.EDIT_CATEGORY,
    Action.EDIT_FILES,
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
    _name(NewTicket.entering_description): frozenset({Action.DONE, Action.BACK, Action.CANCEL}),
    _name(NewTicket.adding_files): frozenset(
        {Action.FILES_DONE, Action.FILES_CLEAR, Action.BACK, Action.CANCEL}
    ),
    _name(NewTicket.reviewing): frozenset(_REVIEW_ACTIONS),
    _name(NewTicket.confirming_restart): frozenset({Action.RESUME, Action.RESTART}),
    _name(NewTicket.confirming_cancel): frozenset({Action.CANCEL_CONFIRMED, Action.RESUME}),
}

BACK: dict[str, State] = {
    _name(NewTicket.choosing_type): NewTicket.choosing_store,
    _name(NewTicket.choosing_category): NewTicket.choosing_type,
    _name(NewTicket.entering_subject): NewTicket.choosing_category,
    _name(NewTicket.entering_description): NewTicket.entering_subject,
    _name(NewTicket.adding_files): NewTicket.entering_description,
    _name(NewTicket.reviewing): NewTicket.adding_files,
}

STATES: dict[str, State] = {_name(state): state for state in NewTicket.__states__}

# The steps where the merchant types: an edit of their subject or description is taken there.
TEXT_STEPS = frozenset(
    _name(state)
    for state in (
        NewTicket.entering_subject,
        NewTicket.entering_description,
        NewTicket.reviewing,
    )
)


def after_description() -> State:
    """Where "Done" on the description leads: the files step (handlers/new_ticket/attachments.py),
    then the review."""
    return NewTicket.adding_files


def not_command(message: Message) -> bool:
    """Text steps take text, not commands: /quota, /help… typed mid-wizard go to their routers
    and the step waits."""
    return not is_command(message)


async def safe_edit(
    message: Message, text: str, reply_markup: InlineKeyboardMarkup | None = None
) -> None:
    """Edits a message; "message is not modified" (a second press that changes nothing, e.g. a
    second refused category) is not an error."""
    try:
        await message.edit_text(text, reply_markup=reply_markup)
    except TelegramBadRequest as error:
        if "message is not modified" not in str(error):
            raise


async def safe_edit_by_id(
    bot: Bot, chat_id: int, message_id: int, text: str, reply_markup: InlineKeyboardMarkup | None
) -> None:
    try:
        await bot.edit_message_text(
            text=text, chat_id=chat_id, message_id=message_id, reply_markup=reply_markup
        )
    except TelegramBadRequest as error:
        if "message is not modified" not in str(error):
            raise


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
        text, keyboard = self.render(data, target, view, notice)
        # The step is saved before the merchant can see it, so their answer always finds it
        # (even from a bot killed right after showing it).
        await self.state.set_state(target)
        if edit:
            data.prompt_message_id = message.message_id  # the prompt is the message edited
            await drafts.save(self.state, data)
            await safe_edit(message, text, reply_markup=keyboard)
            return
        await drafts.save(self.state, data)
        previous = data.prompt_message_id
        sent = await message.answer(text, reply_markup=keyboard)
        data.prompt_message_id = sent.message_id
        # Only the newest prompt keeps its buttons, so old ones cannot be pressed by mistake.
        if message.bot is not None:
            await _drop_keyboard(message.bot, message.chat.id, previous)
        await drafts.save(self.state, data)

    def render(
        self, data: WizardData, target: State, view: render.StepView, notice: str | None = None
    ) -> tuple[str, InlineKeyboardMarkup]:
        text, keyboard = render.step(self.regulation.catalog, data, target, view)
        if notice:
            text = notice + "\n\n" + text
        return render.fit(text), keyboard

    async def refresh_description(self, message: Message, data: WizardData) -> None:
        """The description step's prompt shows what arrived so far: the first part gets a new
        prompt below it (with "Done"), later parts edit that one message — one message for the
        whole paste, whatever the number of parts (Telegram allows a chat about one message a
        second)."""
        if not data.collecting or data.prompt_message_id is None or message.bot is None:
            data.collecting = True
            await self.show(message, data, NewTicket.entering_description, edit=False)
            return
        text, keyboard = self.render(data, NewTicket.entering_description, render.StepView())
        await drafts.save(self.state, data)
        await safe_edit_by_id(message.bot, message.chat.id, data.prompt_message_id, text, keyboard)

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
    if await intake.restricted(session, merchant.telegram_id):
        await message.answer(texts.filing_restricted())
        return
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
async def cancel(
    message: Message,
    state: FSMContext,
    bot: Bot,
    regulation: Regulation,
    session: AsyncSession,
    merchant: MerchantProfile,
) -> None:
    data = await drafts.load(state)
    current = await state.get_state()
    if current in ALLOWED and data is not None and _confirms_cancel(current, data):
        # A written description is work: /cancel asks once before dropping it.
        _pause(data, current)
        wizard = Wizard(state, regulation, session, merchant)
        await wizard.show(message, data, NewTicket.confirming_cancel, edit=False)
        return
    await state.clear()
    if data is not None:
        await _drop_keyboard(bot, message.chat.id, data.prompt_message_id)
    if current is not None:
        await message.answer(_("The request is cancelled. Send /new to start a new one."))
    else:
        await message.answer(_("There is nothing to cancel. Send /new to file a request."))


def _confirms_cancel(current: str | None, data: WizardData) -> bool:
    return data.has_description and current != NewTicket.confirming_cancel.state


def _pause(data: WizardData, current: str | None) -> None:
    """Remembers the step to go back to; a question asked over another question (/cancel while
    /new asks whether to start over) goes back to the step under both."""
    if current not in (NewTicket.confirming_restart.state, NewTicket.confirming_cancel.state):
        data.paused_state = current


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
    if data is None or current not in ALLOWED or callback_data.draft != data.draft_id:
        await _finished(query, session, merchant, callback_data.draft)
        return
    if (
        callback_data.action not in ALLOWED[current]
        or query.message is None
        or isinstance(query.message, InaccessibleMessage)
    ):
        await _already_done(query, data)
        return
    wizard = Wizard(state, regulation, session, merchant)
    message, action, catalog = query.message, callback_data.action, regulation.catalog

    if action is Action.CANCEL and _confirms_cancel(current, data):
        _pause(data, current)
        await query.answer()
        await wizard.show(message, data, NewTicket.confirming_cancel, edit=True)
        return
    if action in (Action.CANCEL, Action.CANCEL_CONFIRMED):
        await state.clear()
        await query.answer()
        await safe_edit(message, _("The request is cancelled. Send /new to start a new one."))
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
            # Never a button this draft showed: forged. Refused like /stores' unlink of
            # another's store, naming nothing; the current step keeps its buttons.
            logger.warning(
                "merchant %s chose store %r in the wizard, which is not linked to them: refused",
                merchant.id,
                callback_data.code[:32],
            )
            await query.answer(not_linked(), show_alert=True)
            return
        data.store_id, target = store.id, NewTicket.choosing_type
    elif action is Action.TYPE:
        if catalog.type(callback_data.code) is None:
            await _already_done(query, data)
            return
        # A type the store's plan does not cover is refused here, naming what it covers.
        eligibility = intake.check_type(
            regulation, store=await wizard.store(data), type_code=callback_data.code
        )
        if not eligibility.allowed:
            notice, target = render.refusal(eligibility), NewTicket.choosing_type
        else:
            if data.request_type != callback_data.code:
                data.request_type, data.category = callback_data.code, None
            target = NewTicket.choosing_category
    elif action is Action.CATEGORY:
        if catalog.category(data.request_type or "", callback_data.code) is None:
            await _already_done(query, data)
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
    elif action is Action.DONE:
        if not (data.collecting and data.description_parts):
            await _already_done(query, data)
            return
        try:
            data.description = tickets.clean_description(tickets.join_description(data.parts()))
        except tickets.InvalidRequest as error:
            await query.answer(render.fit_alert(render.invalid(error)), show_alert=True)
            return
        # The description is these messages now: an edit of one of them after filing is a
        # correction of the ticket (handlers/my_tickets).
        data.description_message_ids = [part.message_id for part in data.description_parts]
        data.collecting = False
        target = NewTicket.reviewing if data.back_to_review else after_description()
        data.back_to_review = False
    elif action is Action.BACK:
        if data.back_to_review and current != NewTicket.choosing_category.state:
            data.back_to_review, target = False, NewTicket.reviewing
        else:
            # From the category list, Back leads to the types even when editing from the review.
            target = BACK[current]
            if target == NewTicket.choosing_store and len(await wizard.stores()) < 2:
                await _already_done(query, data)
                return
        if target == NewTicket.entering_description:
            data.collecting = False
    elif action is Action.EDIT_SUBJECT:
        data.back_to_review, target = True, NewTicket.entering_subject
    elif action is Action.EDIT_DESCRIPTION:
        data.back_to_review, target = True, NewTicket.entering_description
        data.collecting = False
    elif action is Action.EDIT_CATEGORY:
        data.back_to_review, target = True, NewTicket.choosing_category
    elif action is Action.EDIT_FILES:
        data.back_to_review, target = True, NewTicket.adding_files
        data.album_id, data.file_notes = None, []
    elif action is Action.FILES_DONE:
        data.back_to_review, target = False, NewTicket.reviewing
        data.album_id, data.file_notes = None, []
    elif action is Action.FILES_CLEAR:
        # Captions stay in the description: the merchant edits that with the description.
        data.files, data.file_message_ids, data.file_notes = [], [], []
        data.album_id, target = None, NewTicket.adding_files
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
    if await intake.restricted(wizard.session, wizard.merchant.telegram_id):
        await query.answer(texts.filing_restricted(), show_alert=True)
        return
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
    # The price the merchant agreed to on the button: stored on the ticket with who and when,
    # and sent to the queue («доработки сверх лимита … 500 руб.»).
    price = (
        tickets.Price(quota.price_beyond, quota.currency)
        if paid and quota is not None and quota.left == 0
        else None
    )
    try:
        filed = await tickets.submit(
            wizard.session,
            wizard.regulation.catalog,
            wizard.merchant,
            data.to_draft(),
            reference=data.reference,
            locale=render.locale(),
            queue_name=queue.name,
            store_id=store.id if store else None,
            plan=store.plan if store else None,
            files=data.files,
            paid=price,
            # The binding check of the free plan's monthly limit, under a lock on the store.
            policies=wizard.regulation.policies,
        )
    except tickets.MonthlyLimitReached as error:
        await query.answer()
        refusal = intake.Eligibility(
            intake.Refusal.MONTHLY_LIMIT_REACHED,
            plan=store.plan if store else None,
            monthly_limit=error.limit,
        )
        await wizard.show(
            message, data, NewTicket.choosing_category, edit=True, notice=render.refusal(refusal)
        )
        return
    except tickets.InvalidRequest as error:
        await query.answer()
        await message.answer(render.invalid(error))
        return
    # An edit of a description message after filing becomes a correction (handlers/my_tickets).
    await my_tickets.remember_messages(
        wizard.session,
        message.chat.id,
        data.description_message_ids,
        filed.id,
        by_merchant=True,
    )
    await wizard.session.commit()
    await query.answer()
    await wizard.state.clear()
    with suppress(TelegramBadRequest):
        await message.edit_reply_markup(reply_markup=None)
    # "Accepted" is a notice written with the ticket: it reaches the chat before the number.
    delivery.wake()
    filing.accepted()  # counted (frontdesk_tickets_accepted), then filed at once


async def _finished(
    query: CallbackQuery, session: AsyncSession, merchant: MerchantProfile, draft_id: str
) -> None:
    """A button of a request that is over: say how it ended, and take the buttons off that old
    message only (the current step's message has another draft's buttons, or none)."""
    if await tickets.was_filed(session, merchant.id, draft_id):
        # Often a double tap of Send: the chat already says "accepted", a short word will do.
        text, alert = _("This request was already sent. Send /new to file another one."), False
    else:
        text = _("This request was cancelled and not sent. Send /new to file a new one.")
        alert = True
    await query.answer(text, show_alert=alert)
    if isinstance(query.message, Message):
        with suppress(TelegramBadRequest):
            await query.message.edit_reply_markup(reply_markup=None)


async def _already_done(query: CallbackQuery, data: WizardData) -> None:
    """A button of this very request, but of a step it has left: a double tap (the first press
    already moved on) or an old prompt. Quietly; the message showing the current step keeps its
    buttons."""
    await query.answer(_("Already done."))
    message = query.message
    if isinstance(message, Message) and message.message_id != data.prompt_message_id:
        with suppress(TelegramBadRequest):
            await message.edit_reply_markup(reply_markup=None)


# --- Text steps ----------------------------------------------------------------------------


@router.message(NewTicket.entering_subject, F.text, not_command)
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
    data.subject_message_id = message.message_id
    # A request started from a free message has its description already: straight to review.
    prefilled = data.prefilled and bool(data.description)
    target = (
        NewTicket.reviewing if data.back_to_review or prefilled else NewTicket.entering_description
    )
    data.back_to_review = data.prefilled = False
    data.collecting = False
    await Wizard(state, regulation, session, merchant).show(message, data, target, edit=False)


@router.message(NewTicket.entering_description, F.text, not_command)
async def on_description(
    message: Message,
    state: FSMContext,
    regulation: Regulation,
    session: AsyncSession,
    merchant: MerchantProfile,
) -> None:
    """A part of the description. Telegram splits a long paste into several messages, and people
    write in several: every text is kept until "Done". A chat's updates are handled one at a
    time (aiogram's event isolation, bot/factories.create_storage: a lock per chat in the
    process, or in Redis), so no part can overwrite another; their order is the message ids'."""
    if not (message.text or "").strip():
        await message.answer(render.invalid(tickets.InvalidRequest("description_empty")))
        return
    data = await drafts.load(state) or WizardData()
    if not data.collecting:
        data.description_parts = []  # a new visit to the step writes a new description
    if any(part.message_id == message.message_id for part in data.description_parts):
        return  # the same update again (a retried webhook)
    parts = [
        *data.description_parts,
        DescriptionPart(message_id=message.message_id, text=message.text or ""),
    ]
    joined = tickets.join_description([(part.message_id, part.text) for part in parts])
    if len(joined) > tickets.DESCRIPTION_MAX:
        await message.answer(
            render.invalid(
                tickets.InvalidRequest(
                    "description_too_long", limit=tickets.DESCRIPTION_MAX, length=len(joined)
                )
            )
        )
        return
    data.description_parts = parts
    await Wizard(state, regulation, session, merchant).refresh_description(message, data)


@router.message(
    StateFilter(NewTicket.entering_subject, NewTicket.entering_description), not_command
)
async def not_text(message: Message) -> None:
    await message.answer(_("Please send this step as a text message."))


@router.message(
    StateFilter(
        NewTicket.choosing_store,
        NewTicket.choosing_type,
        NewTicket.choosing_category,
        NewTicket.reviewing,
        NewTicket.confirming_restart,
        NewTicket.confirming_cancel,
    ),
    not_command,
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


# --- Edits of what the merchant wrote --------------------------------------------------------


async def _edited_part(message: Message, state: FSMContext) -> bool | dict[str, WizardData]:
    """An edit of the subject or of a part of the description of the open wizard."""
    if message.text is None or await state.get_state() not in ALLOWED:
        return False
    data = await drafts.load(state)
    if data is None:
        return False
    if message.message_id == data.subject_message_id or any(
        part.message_id == message.message_id for part in data.description_parts
    ):
        return {"draft": data}
    return False


@router.edited_message(_edited_part)
async def on_edit(
    message: Message,
    state: FSMContext,
    draft: WizardData,
    regulation: Regulation,
    session: AsyncSession,
    merchant: MerchantProfile,
) -> None:
    """The merchant corrected a message of theirs while the wizard is open: the edit replaces
    what that message said, and the step is shown again with the new text."""
    data, text = draft, message.text or ""
    try:
        if message.message_id == data.subject_message_id:
            data.subject = tickets.clean_subject(text)
            note = _("✏️ Subject changed: {subject}").format(
                subject=render.excerpt(data.subject, 300)
            )
        else:
            for part in data.description_parts:
                if part.message_id == message.message_id:
                    part.text = text
            if not data.collecting:
                data.description = tickets.clean_description(tickets.join_description(data.parts()))
            note = _("✏️ The description is updated from your edited message.")
    except tickets.InvalidRequest as error:
        await message.answer(render.invalid(error))
        return
    current = await state.get_state() or ""
    wizard = Wizard(state, regulation, session, merchant)
    if current in TEXT_STEPS:
        if current == NewTicket.entering_description.state and data.collecting:
            # The prompt counts the edited text; then a word that it is taken.
            await wizard.refresh_description(message, data)
            await message.answer(note)
            return
        await wizard.show(message, data, STATES[current], edit=False, notice=note)
        return
    await drafts.save(state, data)
    await message.answer(note)


async def _drop_keyboard(bot: Bot, chat_id: int, message_id: int | None) -> None:
    if message_id is None:
        return
    with suppress(TelegramBadRequest):
        await bot.edit_message_reply_markup(
            chat_id=chat_id, message_id=message_id, reply_markup=None
        )
