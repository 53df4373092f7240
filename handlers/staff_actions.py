"""A specialist's actions from Telegram (services/staff_actions.py): the buttons under a ticket
card (Reply, Comment, Resolve, Record modification, Take, Reassign) and the commands /reply,
/comment, /resolve and /take.

Every press and command passes `StaffOnly` first (a merchant's forged callback falls through to
the stale-button answer, a merchant's command to the unknown-command one), and the service checks
the ticket again: callback data is untrusted. The answer is at once "accepted, being written to
the queue"; the worker's notice confirms once the queue has it, or says honestly why not.

Two routers: `state_router` (what a specialist is writing: a reply, a comment, the minutes and
price of a modification) goes early, so /cancel there cancels it; `router` (the buttons and the
commands) beside the staff commands.
"""

from __future__ import annotations

import logging
from contextlib import suppress

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, CommandObject
from aiogram.fsm.context import FSMContext
from aiogram.fsm.state import State, StatesGroup
from aiogram.types import CallbackQuery, Message, Update
from aiogram.utils.i18n import I18n
from pydantic import BaseModel, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from handlers import staff_actions_texts as texts
from handlers import texts as common_texts
from handlers.my_tickets.content import Albums, Content, carries_content, content_of
from handlers.staff import StaffOnly, _refusal
from handlers.staff_actions_keyboards import (
    SAct,
    StaffActionCallback,
    confirm_keyboard,
    specialists_keyboard,
)
from services import modification_records, staff, staff_actions
from services.db.base import utcnow
from services.db.models import StaffActionKind
from services.regulation import Regulation
from services.rounds import Waker

logger = logging.getLogger(__name__)

state_router = Router(name=__name__ + ".writing")
router = Router(name=__name__)


class StaffActions(StatesGroup):
    # The specialist's next message is the reply or comment on the ticket.
    writing = State()
    # The minutes a modification took, then (over the free limit) its price.
    minutes = State()
    price = State()


class Draft(BaseModel):
    """FSM data of the states above."""

    number: str
    kind: StaffActionKind = StaffActionKind.REPLY
    minutes: int | None = None


DRAFT = "staff_action"


async def _draft(state: FSMContext) -> Draft | None:
    try:
        return Draft.model_validate((await state.get_data()).get(DRAFT) or {})
    except ValidationError:
        return None


async def _leave(state: FSMContext) -> None:
    await state.set_state(None)
    await state.update_data({DRAFT: None})


async def _request(
    session: AsyncSession,
    member: staff.Staff,
    number: str,
    kind: StaffActionKind,
    *,
    key: str,
    worker: Waker | None,
    text: str = "",
    content: Content | None = None,
    owner: str | None = None,
) -> tuple[str, bool]:
    """Accepts the action (services/staff_actions.py); the answer, and whether it was taken."""
    try:
        accepted = await staff_actions.request(
            session,
            actor=member,
            number=number,
            kind=kind,
            key=key,
            text=content.text if content else text,
            files=content.files if content else (),
            owner=owner,
            locale=common_texts.current_locale(),
        )
    except staff_actions.ActionRefused as refused:
        if refused.reason in (staff_actions.NO_TICKET, staff_actions.NOT_STAFF):
            logger.warning("%s: %s refused on #%s: %s", member.queue_user, kind, number, refused)
        return texts.refusal(refused), False
    if worker is not None:
        worker.wake()
    return texts.accepted(accepted), True


async def _check_ticket(
    query: CallbackQuery, session: AsyncSession, member: staff.Staff, number: str
) -> staff_actions.CardActions | None:
    """What the ticket allows now; None (answered) when it is unknown."""
    try:
        return await staff_actions.ticket_actions(session, member, number)
    except staff_actions.ActionRefused as refused:
        logger.warning("%s pressed a button of unknown ticket #%s", member.queue_user, number)
        await query.answer(texts.refusal(refused)[:200], show_alert=True)
        return None


def _closed(number: str) -> str:
    return texts.refusal(staff_actions.ActionRefused(staff_actions.CLOSED_TICKET, number))


# --- Reply and Comment: the next message is the text ----------------------------------------------


async def _start_writing(
    query: CallbackQuery,
    callback_data: StaffActionCallback,
    state: FSMContext,
    session: AsyncSession,
    member: staff.Staff,
    kind: StaffActionKind,
) -> None:
    actions = await _check_ticket(query, session, member, callback_data.number)
    if actions is None:
        return
    if kind is StaffActionKind.REPLY and not actions.reply:
        await query.answer(_closed(callback_data.number)[:200], show_alert=True)
        return
    await state.set_state(StaffActions.writing)
    await state.update_data(
        {DRAFT: Draft(number=callback_data.number, kind=kind).model_dump(mode="json")}
    )
    await query.answer()
    if isinstance(query.message, Message):
        await query.message.answer(texts.ask_text(kind, callback_data.number))


@router.callback_query(StaffActionCallback.filter(F.action == SAct.REPLY), StaffOnly())
async def on_reply(
    query: CallbackQuery,
    callback_data: StaffActionCallback,
    state: FSMContext,
    session: AsyncSession,
    staff_member: staff.Staff,
) -> None:
    await _start_writing(query, callback_data, state, session, staff_member, StaffActionKind.REPLY)


@router.callback_query(StaffActionCallback.filter(F.action == SAct.COMMENT), StaffOnly())
async def on_comment(
    query: CallbackQuery,
    callback_data: StaffActionCallback,
    state: FSMContext,
    session: AsyncSession,
    staff_member: staff.Staff,
) -> None:
    await _start_writing(
        query, callback_data, state, session, staff_member, StaffActionKind.COMMENT
    )


@state_router.message(StaffActions.writing, Command("cancel"))
@state_router.message(StaffActions.minutes, Command("cancel"))
@state_router.message(StaffActions.price, Command("cancel"))
async def on_cancel(message: Message, state: FSMContext) -> None:
    await _leave(state)
    await message.answer(texts.cancelled())


@state_router.message(StaffActions.writing, F.media_group_id, StaffOnly())
async def on_album(
    message: Message,
    state: FSMContext,
    staff_member: staff.Staff,
    sessionmaker: async_sessionmaker[AsyncSession],
    albums: Albums,
    i18n: I18n,
    bot: Bot,
    staff_action_worker: Waker | None = None,
) -> None:
    draft = await _draft(state)
    if draft is None:
        await _leave(state)
        return
    locale = common_texts.current_locale()
    group = message.media_group_id

    async def complete(content: Content) -> None:
        with i18n.context(), i18n.use_locale(locale):
            async with sessionmaker() as session:
                answer, accepted = await _request(
                    session,
                    staff_member,
                    draft.number,
                    draft.kind,
                    key=f"album:{message.chat.id}:{group}",
                    worker=staff_action_worker,
                    content=content,
                )
            if accepted:
                await _leave(state)
            await bot.send_message(message.chat.id, answer)

    albums.add(message, complete)


@state_router.message(
    StaffActions.writing, F.func(carries_content), ~F.text.startswith("/"), StaffOnly()
)
async def on_text(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    staff_member: staff.Staff,
    staff_action_worker: Waker | None = None,
) -> None:
    draft = await _draft(state)
    if draft is None:
        await _leave(state)
        return
    answer, accepted = await _request(
        session,
        staff_member,
        draft.number,
        draft.kind,
        key=f"msg:{message.chat.id}:{message.message_id}",
        worker=staff_action_worker,
        content=content_of(message),
    )
    if accepted:
        await _leave(state)
    await message.answer(answer)


@state_router.message(StaffActions.writing, ~F.text.startswith("/"))
async def on_unsupported(message: Message) -> None:
    """A sticker, a voice message mid-reply."""
    await message.answer(texts.unsupported_input())


# --- Resolve, with a confirmation -------------------------------------------------------------


@router.callback_query(StaffActionCallback.filter(F.action == SAct.RESOLVE), StaffOnly())
async def on_resolve(
    query: CallbackQuery,
    callback_data: StaffActionCallback,
    session: AsyncSession,
    staff_member: staff.Staff,
) -> None:
    actions = await _check_ticket(query, session, staff_member, callback_data.number)
    if actions is None:
        return
    if not actions.resolve:
        await query.answer(_closed(callback_data.number)[:200], show_alert=True)
        return
    await query.answer()
    if isinstance(query.message, Message):
        await query.message.answer(
            texts.confirm_resolve(callback_data.number),
            reply_markup=confirm_keyboard(callback_data.number),
        )


@router.callback_query(StaffActionCallback.filter(F.action == SAct.RESOLVE_YES), StaffOnly())
async def on_resolve_yes(
    query: CallbackQuery,
    callback_data: StaffActionCallback,
    session: AsyncSession,
    staff_member: staff.Staff,
    staff_action_worker: Waker | None = None,
) -> None:
    await _button_action(
        query,
        session,
        staff_member,
        callback_data.number,
        StaffActionKind.RESOLVE,
        staff_action_worker,
        edit=True,
    )


@router.callback_query(StaffActionCallback.filter(F.action == SAct.RESOLVE_NO), StaffOnly())
async def on_resolve_no(query: CallbackQuery) -> None:
    await query.answer()
    if isinstance(query.message, Message):
        with suppress(TelegramBadRequest):
            await query.message.edit_text(texts.not_resolved())


async def _button_action(
    query: CallbackQuery,
    session: AsyncSession,
    member: staff.Staff,
    number: str,
    kind: StaffActionKind,
    worker: Waker | None,
    *,
    owner: str | None = None,
    edit: bool = False,
) -> None:
    answer, accepted = await _request(
        session, member, number, kind, key=f"cb:{query.id}", worker=worker, owner=owner
    )
    if not accepted:
        await query.answer(answer[:200], show_alert=True)
        return
    await query.answer()
    if isinstance(query.message, Message):
        if edit:
            with suppress(TelegramBadRequest):
                await query.message.edit_text(answer)
        else:
            await query.message.answer(answer)


# --- Take and Reassign ------------------------------------------------------------------------


@router.callback_query(StaffActionCallback.filter(F.action == SAct.TAKE), StaffOnly())
async def on_take(
    query: CallbackQuery,
    callback_data: StaffActionCallback,
    session: AsyncSession,
    staff_member: staff.Staff,
    staff_action_worker: Waker | None = None,
) -> None:
    await _button_action(
        query,
        session,
        staff_member,
        callback_data.number,
        StaffActionKind.TAKE,
        staff_action_worker,
    )


@router.callback_query(StaffActionCallback.filter(F.action == SAct.REASSIGN), StaffOnly())
async def on_reassign(
    query: CallbackQuery,
    callback_data: StaffActionCallback,
    session: AsyncSession,
    staff_member: staff.Staff,
) -> None:
    if await _check_ticket(query, session, staff_member, callback_data.number) is None:
        return
    others = await staff_actions.specialists(session, besides=staff_member.queue_user)
    if not others:
        await query.answer(texts.nobody_to_assign(), show_alert=True)
        return
    await query.answer()
    if isinstance(query.message, Message):
        await query.message.answer(
            texts.choose_specialist(callback_data.number),
            reply_markup=specialists_keyboard(callback_data.number, others),
        )


@router.callback_query(StaffActionCallback.filter(F.action == SAct.ASSIGN_TO), StaffOnly())
async def on_assign_to(
    query: CallbackQuery,
    callback_data: StaffActionCallback,
    session: AsyncSession,
    staff_member: staff.Staff,
    staff_action_worker: Waker | None = None,
) -> None:
    target = await staff_actions.specialist(session, callback_data.member)
    if target is None:
        refused = staff_actions.ActionRefused(
            staff_actions.UNKNOWN_SPECIALIST, callback_data.number
        )
        await query.answer(texts.refusal(refused)[:200], show_alert=True)
        return
    await _button_action(
        query,
        session,
        staff_member,
        callback_data.number,
        StaffActionKind.ASSIGN,
        staff_action_worker,
        owner=target.queue_user,
        edit=True,
    )


# --- Record modification: minutes, then a price if it is paid ---------------------------------


@router.callback_query(StaffActionCallback.filter(F.action == SAct.MODIFICATION), StaffOnly())
async def on_modification(
    query: CallbackQuery,
    callback_data: StaffActionCallback,
    state: FSMContext,
    session: AsyncSession,
    staff_member: staff.Staff,
    regulation: Regulation,
) -> None:
    actions = await _check_ticket(query, session, staff_member, callback_data.number)
    if actions is None:
        return
    if not actions.modification:
        await query.answer(
            _refusal(
                modification_records.NOT_MODIFICATION,
                regulation.policies.quota.free_minutes_limit,
            )[:200],
            show_alert=True,
        )
        return
    await state.set_state(StaffActions.minutes)
    await state.update_data({DRAFT: Draft(number=callback_data.number).model_dump(mode="json")})
    await query.answer()
    if isinstance(query.message, Message):
        await query.message.answer(texts.ask_minutes(callback_data.number))


async def _record(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    member: staff.Staff,
    regulation: Regulation,
    event_update: Update,
    draft: Draft,
    minutes: int,
    price: int | None,
) -> None:
    policy = regulation.policies.quota
    try:
        recorded = await modification_records.record(
            session,
            policy,
            number=draft.number,
            minutes=minutes,
            price=price,
            specialist=member.queue_user,
            key=f"tg:{event_update.update_id}",
            now=utcnow(),
        )
    except modification_records.RecordRefused as refused:
        if refused.reason == modification_records.PRICE_REQUIRED:
            # The quota ledger says it is paid at the specialist's quote: ask for it.
            await state.set_state(StaffActions.price)
            await state.update_data(
                {DRAFT: draft.model_copy(update={"minutes": minutes}).model_dump(mode="json")}
            )
            await message.answer(texts.ask_price(common_texts.minutes(policy.free_minutes_limit)))
            return
        await _leave(state)
        await message.answer(_refusal(refused.reason, policy.free_minutes_limit))
        return
    await _leave(state)
    charge = recorded.charge
    lines = []
    if charge is None or charge.is_free:
        lines.append(
            texts.modification_free(draft.number, common_texts.minutes(minutes), charge is None)
        )
    else:
        lines.append(
            texts.modification_paid(
                draft.number,
                common_texts.minutes(minutes),
                common_texts.money(
                    charge.amount or 0, charge.currency, common_texts.current_locale()
                ),
            )
        )
    lines.append(common_texts.quota_line(recorded.quota))
    await message.answer("\n".join(lines))


@state_router.message(StaffActions.minutes, F.text, ~F.text.startswith("/"), StaffOnly())
async def on_minutes(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    staff_member: staff.Staff,
    regulation: Regulation,
    event_update: Update,
) -> None:
    draft = await _draft(state)
    if draft is None:
        await _leave(state)
        return
    text = (message.text or "").strip()
    if not text.isdigit():
        await message.answer(texts.not_a_number())
        return
    await _record(
        message, state, session, staff_member, regulation, event_update, draft, int(text), None
    )


@state_router.message(StaffActions.price, F.text, ~F.text.startswith("/"), StaffOnly())
async def on_price(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    staff_member: staff.Staff,
    regulation: Regulation,
    event_update: Update,
) -> None:
    draft = await _draft(state)
    if draft is None or draft.minutes is None:
        await _leave(state)
        return
    text = (message.text or "").strip()
    if not text.isdigit() or int(text) <= 0:
        await message.answer(texts.not_a_number())
        return
    await _record(
        message,
        state,
        session,
        staff_member,
        regulation,
        event_update,
        draft,
        draft.minutes,
        int(text),
    )


# --- the commands -----------------------------------------------------------------------------


def _parse(args: str | None) -> tuple[str, str]:
    number, _space, rest = (args or "").strip().partition(" ")
    return number.lstrip("#"), rest.strip()


# The staff commands that act on a ticket, and the action each takes.
COMMAND_KINDS = {
    "reply": StaffActionKind.REPLY,
    "comment": StaffActionKind.COMMENT,
    "resolve": StaffActionKind.RESOLVE,
    "take": StaffActionKind.TAKE,
}


@router.message(Command(*COMMAND_KINDS), StaffOnly())
async def action_command(
    message: Message,
    command: CommandObject,
    session: AsyncSession,
    staff_member: staff.Staff,
    staff_action_worker: Waker | None = None,
) -> None:
    """`/reply N text`, `/comment N text`, `/resolve N`, `/take N`."""
    kind = COMMAND_KINDS[command.command.lower()]
    number, text = _parse(command.args)
    needs_text = kind in (StaffActionKind.REPLY, StaffActionKind.COMMENT)
    if not number or (needs_text and not text):
        await message.answer(texts.usage(command.command))
        return
    answer, _accepted = await _request(
        session,
        staff_member,
        number,
        kind,
        key=f"msg:{message.chat.id}:{message.message_id}",
        worker=staff_action_worker,
        text=text,
    )
    await message.answer(answer)
