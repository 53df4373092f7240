"""/tickets: the merchant's requests, a request's card with its conversation, and their messages
on a request — the Reply button, a Telegram reply to any message about a request, and an edit of
their own message after filing (a correction).

Two routers: `state_router` (the "replying to #N" state) goes before the wizard's, so /cancel
there cancels the reply; `router` (the list, the cards, replies and edits) after it.

Every ticket id from a button or a replied-to message is untrusted: the services look tickets up
by the merchant, and another merchant's id is refused politely, revealing nothing, with a
warning in the log.
"""

from __future__ import annotations

import asyncio
import logging
from contextlib import suppress
from typing import Any

from aiogram import Bot, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.filters import Command, Filter
from aiogram.fsm.context import FSMContext
from aiogram.types import BufferedInputFile, CallbackQuery, Message
from aiogram.utils.i18n import I18n
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import services.replies as reply_service
from handlers import reply_texts, texts
from handlers.my_tickets import render
from handlers.my_tickets.content import Albums, Content, carries_content, content_of
from handlers.my_tickets.keyboards import (
    Act,
    TicketsCallback,
    card_keyboard,
    list_keyboard,
    store_filter,
)
from handlers.my_tickets.states import MyTickets
from handlers.rich_text import html_to_telegram, plain_to_telegram
from services import my_tickets
from services.db.base import utcnow
from services.merchants import MerchantProfile
from services.my_tickets import PageOutOfRange, TicketLine
from services.queue.base import BodyFormat, ConversationEntry, QueueError, TicketQueue
from services.replies import ReplyKind
from services.rounds import Waker

logger = logging.getLogger(__name__)

state_router = Router(name=__name__ + ".replying")
router = Router(name=__name__)
# Tickets are private: nothing of them is ever shown or taken in a group.
for _router in (state_router, router):
    _router.message.filter(F.chat.type == "private")
    _router.edited_message.filter(F.chat.type == "private")
    _router.callback_query.filter(F.message.chat.type == "private")

# A reply to a bot message this young may come before the message is recorded (bot/delivery.py).
RECORDING_GRACE_SECONDS = 2.0
# Files of the card sent as documents at most, per card page.
CARD_FILES = 10
# What the Bot API lets a bot upload as a document.
DOCUMENT_LIMIT = 50 * 1000 * 1000
# FSM data keys of the reply state (beside the wizard's draft, which they leave alone).
REPLY_TICKET = "reply_ticket"
REPLY_PAUSED = "reply_paused_state"


def _wake(*workers: Waker | None) -> None:
    for worker in workers:
        if worker is not None:
            worker.wake()


def _refused(merchant: MerchantProfile, what: str, value: object) -> None:
    # Forged or stale input: worth a look, never an answer that tells what exists.
    logger.warning("merchant %s asked for %s %s, not theirs: refused", merchant.id, what, value)


async def remember_answer(
    session: AsyncSession, sent: Message, ticket_id: int, accepted: bool
) -> None:
    """The "📨 received #N" answer is a message about the ticket too: a Telegram reply to it
    goes to the ticket, as a reply to any notice of it does."""
    if accepted:
        await my_tickets.remember_message(session, sent.chat.id, sent.message_id, ticket_id)
        await session.commit()


# --- /tickets: the list ---------------------------------------------------------------------------


@router.message(Command("tickets"))
async def show_tickets(message: Message, session: AsyncSession, merchant: MerchantProfile) -> None:
    page = await my_tickets.page_of(session, merchant.id)
    await message.answer(
        render.ticket_list(page, utcnow()),
        reply_markup=list_keyboard(page, 0) if page.total else None,
    )


@router.callback_query(TicketsCallback.filter(F.action == Act.PAGE))
async def on_page(
    query: CallbackQuery,
    callback_data: TicketsCallback,
    session: AsyncSession,
    merchant: MerchantProfile,
) -> None:
    filtered, store_id = store_filter(callback_data.store)
    try:
        page = await my_tickets.page_of(
            session,
            merchant.id,
            page=callback_data.page,
            store_id=store_id,
            filtered=filtered,
        )
    except PageOutOfRange as error:
        _refused(merchant, "the list", error)
        await query.answer(render.stale_page(), show_alert=True)
        return
    await query.answer()
    text = render.ticket_list(page, utcnow())
    keyboard = list_keyboard(page, callback_data.store)
    if isinstance(query.message, Message) and not callback_data.ticket:
        try:
            await query.message.edit_text(text, reply_markup=keyboard)
        except TelegramBadRequest as error:
            # The same page pressed again: "message is not modified" is no error.
            if "message is not modified" not in error.message:
                raise
    elif query.bot is not None:
        await query.bot.send_message(query.from_user.id, text, reply_markup=keyboard)


# --- a ticket's card -------------------------------------------------------------------------


def _entry(entry: ConversationEntry) -> render.Entry:
    if entry.body_format is BodyFormat.HTML:
        html = html_to_telegram(entry.body)
    else:
        html = plain_to_telegram(entry.body.strip())
    return render.Entry(
        by_support=entry.by_support,
        author=entry.author,
        created_at=entry.created_at,
        html=html,
        files=tuple(file.filename for file in entry.attachments),
    )


@router.callback_query(TicketsCallback.filter(F.action == Act.CARD))
async def on_card(
    query: CallbackQuery,
    callback_data: TicketsCallback,
    session: AsyncSession,
    merchant: MerchantProfile,
    queue: TicketQueue,
    bot: Bot,
) -> None:
    line = await my_tickets.ticket_of(session, merchant.id, callback_data.ticket)
    if line is None:
        _refused(merchant, "ticket", callback_data.ticket)
        await query.answer(render.not_yours(), show_alert=True)
        return
    try:
        conversation = await reply_service.read_conversation(
            session, queue, merchant=merchant, ticket_id=line.id, limit=1000
        )
    except reply_service.NotYourTicket:
        _refused(merchant, "ticket", callback_data.ticket)
        await query.answer(render.not_yours(), show_alert=True)
        return
    except QueueError:
        logger.warning("the queue did not give ticket %s's conversation", line.id, exc_info=True)
        conversation = None
    entries = [_entry(entry) for entry in conversation.entries] if conversation else []
    start = callback_data.page
    if not 0 <= start <= max(len(entries) - 1, 0):
        _refused(merchant, "conversation page", start)
        await query.answer(render.stale_page(), show_alert=True)
        return
    await query.answer()
    header = render.card_header(line, utcnow())
    if conversation is None:
        text, more = header + "\n\n" + render.conversation_unavailable(), None
    else:
        text, more = render.card(header, entries, start)
    actions = conversation.actions if conversation else reply_service.actions(line.status)
    keyboard = card_keyboard(line, store=callback_data.store, more_from=more, actions=actions)
    chat_id = query.from_user.id
    sent = await bot.send_message(chat_id, text, reply_markup=keyboard)
    shown = [sent.message_id]
    if conversation is not None:
        shown += await _send_files(
            session, bot, queue, merchant, line, conversation.entries[start : more or None]
        )
    await my_tickets.remember_messages(session, chat_id, shown, line.id)
    await session.commit()


async def _send_files(
    session: AsyncSession,
    bot: Bot,
    queue: TicketQueue,
    merchant: MerchantProfile,
    line: TicketLine,
    entries: list[ConversationEntry],
) -> list[int]:
    """The files of the entries shown, as documents; the message ids sent."""
    sent: list[int] = []
    infos = [info for entry in entries for info in entry.attachments]
    for info in infos[:CARD_FILES]:
        if info.size is not None and (info.size == 0 or info.size > DOCUMENT_LIMIT):
            continue
        try:
            attachment = await reply_service.read_attachment(
                session, queue, merchant=merchant, ticket_id=line.id, attachment_id=info.id
            )
        except (QueueError, reply_service.NotYourTicket):
            logger.warning("file %s of ticket %s could not be read", info.id, line.id)
            continue
        if not attachment.content or len(attachment.content) > DOCUMENT_LIMIT:
            continue
        message = await bot.send_document(
            merchant.telegram_id,
            BufferedInputFile(attachment.content, filename=attachment.filename or "file"),
        )
        sent.append(message.message_id)
    return sent


# --- Reply: the "replying to #N" state -----------------------------------------------------------


@router.callback_query(TicketsCallback.filter(F.action == Act.REPLY))
async def on_reply_button(
    query: CallbackQuery,
    callback_data: TicketsCallback,
    session: AsyncSession,
    merchant: MerchantProfile,
    state: FSMContext,
) -> None:
    line = await my_tickets.ticket_of(session, merchant.id, callback_data.ticket)
    if line is None:
        _refused(merchant, "ticket", callback_data.ticket)
        await query.answer(render.not_yours(), show_alert=True)
        return
    if ReplyKind.REPLY not in reply_service.actions(line.status):
        closed = reply_service.TicketClosed(line.id, line.status)
        await query.answer(reply_texts.not_accepted(closed)[:200], show_alert=True)
        return
    await query.answer()
    current = await state.get_state()
    # A wizard's draft stays as it is: the wizard goes on after the reply.
    paused = current if current != MyTickets.replying.state else None
    if current == MyTickets.replying.state:
        paused = (await state.get_data()).get(REPLY_PAUSED)
    await state.update_data({REPLY_TICKET: line.id, REPLY_PAUSED: paused})
    await state.set_state(MyTickets.replying)
    if query.bot is not None:
        await query.bot.send_message(query.from_user.id, render.reply_prompt(line))


async def _leave_reply(state: FSMContext) -> None:
    data = await state.get_data()
    paused = data.get(REPLY_PAUSED)
    await state.set_data({k: v for k, v in data.items() if k not in (REPLY_TICKET, REPLY_PAUSED)})
    await state.set_state(paused)


@state_router.message(MyTickets.replying, Command("cancel"))
async def cancel_reply(message: Message, state: FSMContext) -> None:
    await _leave_reply(state)
    await message.answer(render.reply_cancelled())


@state_router.message(MyTickets.replying, F.media_group_id)
async def on_reply_album(
    message: Message,
    state: FSMContext,
    merchant: MerchantProfile,
    sessionmaker: async_sessionmaker[AsyncSession],
    albums: Albums,
    i18n: I18n,
    bot: Bot,
    replies: Waker | None = None,
) -> None:
    ticket_id = (await state.get_data()).get(REPLY_TICKET)
    locale = texts.current_locale()
    group = message.media_group_id

    async def complete(content: Content) -> None:
        with i18n.context(), i18n.use_locale(locale):
            async with sessionmaker() as session:
                answer, accepted = await add_content(
                    session,
                    merchant,
                    int(ticket_id or 0),
                    content,
                    key=f"{message.chat.id}:album:{group}",
                    kind=ReplyKind.REPLY,
                    replies=replies,
                )
                if accepted:
                    await _leave_reply(state)
                sent = await bot.send_message(message.chat.id, answer)
                await remember_answer(session, sent, int(ticket_id or 0), accepted)

    albums.add(message, complete)


# Commands are not replies: they go on to their own handlers (/tickets, /quota, /help…) and the
# reply waits.
@state_router.message(MyTickets.replying, F.func(carries_content), ~F.text.startswith("/"))
async def on_reply(
    message: Message,
    state: FSMContext,
    session: AsyncSession,
    merchant: MerchantProfile,
    replies: Waker | None = None,
) -> None:
    ticket_id = int((await state.get_data()).get(REPLY_TICKET) or 0)
    answer, accepted = await add_content(
        session,
        merchant,
        ticket_id,
        content_of(message),
        key=f"{message.chat.id}:{message.message_id}",
        kind=ReplyKind.REPLY,
        replies=replies,
    )
    if accepted:
        await _leave_reply(state)
    sent = await message.answer(answer)
    await remember_answer(session, sent, ticket_id, accepted)


@router.message(MyTickets.replying)
async def on_reply_unsupported(message: Message) -> None:
    """A sticker, a voice message, an unknown command mid-reply."""
    await message.answer(
        _("Please send text, photos or documents as your reply, or /cancel to stop replying.")
    )


async def add_content(
    session: AsyncSession,
    merchant: MerchantProfile,
    ticket_id: int,
    content: Content,
    *,
    key: str,
    kind: ReplyKind,
    replies: Waker | None,
) -> tuple[str, bool]:
    """Adds the content to the ticket through the reply outbox (services/replies.py); what to
    tell the merchant, and whether it was accepted. The confirmation "added to #N" follows as a
    notice once the queue has it."""
    try:
        accepted = await reply_service.add_reply(
            session,
            merchant=merchant,
            ticket_id=ticket_id,
            key=key,
            text=content.text,
            files=content.files,
            kind=kind,
            locale=texts.current_locale(),
        )
    except reply_service.NotYourTicket:
        _refused(merchant, "ticket", ticket_id)
        return render.not_yours(), False
    except reply_service.ReplyNotAccepted as error:
        return reply_texts.not_accepted(error), False
    if content.message_ids:
        # The merchant's own messages are about the ticket too: a reply to them, an edit.
        await my_tickets.remember_messages(
            session, merchant.telegram_id, content.message_ids, ticket_id, by_merchant=True
        )
        await session.commit()
    _wake(replies)
    return reply_texts.received(accepted), True


# --- Close and Reopen ---------------------------------------------------------------------------


async def _status_action(
    query: CallbackQuery,
    callback_data: TicketsCallback,
    session: AsyncSession,
    merchant: MerchantProfile,
    kind: ReplyKind,
    replies: Waker | None,
) -> None:
    try:
        accepted = await reply_service.add_reply(
            session,
            merchant=merchant,
            ticket_id=callback_data.ticket,
            # The press itself: a double tap is one request, a later reopen a new one.
            key=f"{query.from_user.id}:{kind.value}:{query.id}",
            kind=kind,
            locale=texts.current_locale(),
        )
    except reply_service.NotYourTicket:
        _refused(merchant, "ticket", callback_data.ticket)
        await query.answer(render.not_yours(), show_alert=True)
        return
    except reply_service.ReplyNotAccepted as error:
        await query.answer(reply_texts.not_accepted(error)[:200], show_alert=True)
        return
    _wake(replies)
    await query.answer()
    if isinstance(query.message, Message):
        with suppress(TelegramBadRequest):
            await query.message.edit_reply_markup(reply_markup=None)
        sent = await query.message.answer(reply_texts.received(accepted))
        await remember_answer(session, sent, callback_data.ticket, True)


@router.callback_query(TicketsCallback.filter(F.action == Act.CLOSE))
async def on_close(
    query: CallbackQuery,
    callback_data: TicketsCallback,
    session: AsyncSession,
    merchant: MerchantProfile,
    replies: Waker | None = None,
) -> None:
    await _status_action(query, callback_data, session, merchant, ReplyKind.CLOSE, replies)


@router.callback_query(TicketsCallback.filter(F.action == Act.REOPEN))
async def on_reopen(
    query: CallbackQuery,
    callback_data: TicketsCallback,
    session: AsyncSession,
    merchant: MerchantProfile,
    replies: Waker | None = None,
) -> None:
    await _status_action(query, callback_data, session, merchant, ReplyKind.REOPEN, replies)


# --- a Telegram reply to a message about a ticket, an edit after filing -------------------------


async def _replied_ticket(
    message: Message, session: AsyncSession, merchant: MerchantProfile
) -> TicketLine | None:
    replied = message.reply_to_message
    if replied is None:
        return None
    if replied.chat.id != message.chat.id:
        _refused(merchant, "a reply to a message of chat", replied.chat.id)
        return None
    found = await my_tickets.ticket_for_message(
        session, merchant.id, message.chat.id, replied.message_id
    )
    if found is None and replied.from_user is not None and replied.from_user.is_bot:
        # The delivery worker records a notice's message right after Telegram took it: a reply
        # in that very moment may come first. Look again once that moment is over.
        age = message.date - replied.date
        if age.total_seconds() < RECORDING_GRACE_SECONDS:
            await session.commit()  # a new snapshot: see what was committed meanwhile
            await asyncio.sleep(RECORDING_GRACE_SECONDS / 2)
            found = await my_tickets.ticket_for_message(
                session, merchant.id, message.chat.id, replied.message_id
            )
    if found is None:
        if await my_tickets.is_recorded(session, message.chat.id, replied.message_id):
            _refused(merchant, "a reply to message", replied.message_id)
        return None
    return found.ticket


class _RepliesToTicket(Filter):
    """Filter: the message is a Telegram reply to a message about one of the merchant's
    tickets; gives the handler `ticket`."""

    async def __call__(
        self, message: Message, session: AsyncSession, merchant: MerchantProfile
    ) -> bool | dict[str, Any]:
        if message.reply_to_message is None or not carries_content(message):
            return False
        if message.text and message.text.startswith("/"):
            return False
        ticket = await _replied_ticket(message, session, merchant)
        return {"ticket": ticket} if ticket is not None else False


@router.message(F.reply_to_message, F.media_group_id, _RepliesToTicket())
async def on_telegram_reply_album(
    message: Message,
    ticket: TicketLine,
    merchant: MerchantProfile,
    sessionmaker: async_sessionmaker[AsyncSession],
    albums: Albums,
    i18n: I18n,
    bot: Bot,
    replies: Waker | None = None,
) -> None:
    locale = texts.current_locale()
    group = message.media_group_id

    async def complete(content: Content) -> None:
        with i18n.context(), i18n.use_locale(locale):
            async with sessionmaker() as session:
                answer, accepted = await add_content(
                    session,
                    merchant,
                    ticket.id,
                    content,
                    key=f"{message.chat.id}:album:{group}",
                    kind=ReplyKind.REPLY,
                    replies=replies,
                )
                sent = await bot.send_message(message.chat.id, answer)
                await remember_answer(session, sent, ticket.id, accepted)

    albums.add(message, complete)


@router.message(F.reply_to_message, _RepliesToTicket())
async def on_telegram_reply(
    message: Message,
    ticket: TicketLine,
    session: AsyncSession,
    merchant: MerchantProfile,
    replies: Waker | None = None,
) -> None:
    answer, accepted = await add_content(
        session,
        merchant,
        ticket.id,
        content_of(message),
        key=f"{message.chat.id}:{message.message_id}",
        kind=ReplyKind.REPLY,
        replies=replies,
    )
    sent = await message.answer(answer)
    await remember_answer(session, sent, ticket.id, accepted)


@router.edited_message()
async def on_edit(
    message: Message,
    session: AsyncSession,
    merchant: MerchantProfile,
    replies: Waker | None = None,
) -> None:
    """An edit of the merchant's own message that became a request's description or a reply:
    added as a correction, never overwriting what a specialist read. Other edits change
    nothing here."""
    found = await my_tickets.ticket_for_message(
        session, merchant.id, message.chat.id, message.message_id
    )
    if found is None or not found.by_merchant:
        return
    content = content_of(message)
    content.files = []  # an edit changes the text; its file was sent already
    content.message_ids = []
    answer, accepted = await add_content(
        session,
        merchant,
        found.ticket.id,
        content,
        key=f"{message.chat.id}:edit:{message.message_id}:{message.edit_date or 0}",
        kind=ReplyKind.CORRECTION,
        replies=replies,
    )
    sent = await message.answer(answer)
    await remember_answer(session, sent, found.ticket.id, accepted)
