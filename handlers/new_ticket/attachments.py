"""The wizard's files step (NewTicket.adding_files): photos, documents and albums, after the
description and before the review.

- A photo is taken at its largest size; a document as sent. Each within the Bot API's 20 MB
  download limit, at most services.files.MAX_FILES a request (services.files.refusal_for).
- A caption is kept as text: appended to the description (a paragraph of its own), so the
  specialist reads it with the problem it explains, and the review shows it.
- An album arrives as one update per file, with one media_group_id. aiogram handles a chat's
  updates one after the other (the FSM's event isolation: an in-process lock per chat with the
  SQL storage, a Redis lock with Redis), so each file is appended to the draft saved by the one
  before and none is lost (in the order sent: with Redis they may be handled out of order). The
  album gets one answer: its first file sends the step's prompt at once, and once the album's
  files stop arriving that prompt is edited once to show them all (count, names, refusals).
- Anything else (a sticker, a voice message, a location...) is refused with the reason.
"""

from __future__ import annotations

import asyncio
import logging
from bisect import bisect
from collections.abc import Awaitable, Callable

from aiogram import Bot, Dispatcher, F, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.fsm.context import FSMContext
from aiogram.types import Message
from aiogram.utils.i18n import gettext as _
from sqlalchemy.ext.asyncio import AsyncSession

from handlers.new_ticket import Wizard, render
from handlers.new_ticket import draft as drafts
from handlers.new_ticket.draft import FileNote, WizardData
from handlers.new_ticket.states import NewTicket
from services.files import FileKind, FileRef, FileRefusal, refusal_for
from services.merchants import MerchantProfile
from services.regulation import Regulation

router = Router(name=__name__)
logger = logging.getLogger(__name__)

# How long an album's answer waits for its next file: Telegram delivers an album's updates within
# a fraction of a second.
ALBUM_SETTLE_SECONDS = 1.0


def file_of(message: Message, position: int) -> FileRef | None:
    """The photo or document of the message, None for anything else."""
    if message.photo:
        photo = max(message.photo, key=lambda size: (size.width * size.height, size.file_size or 0))
        return FileRef(
            file_id=photo.file_id,
            file_unique_id=photo.file_unique_id,
            kind=FileKind.PHOTO,
            # Telegram gives photos no name: number them as the merchant sees them in the list.
            filename=f"photo-{position}.jpg",
            content_type="image/jpeg",
            size=photo.file_size,
        )
    if message.document:
        document = message.document
        return FileRef(
            file_id=document.file_id,
            file_unique_id=document.file_unique_id,
            kind=FileKind.DOCUMENT,
            filename=document.file_name or "document",
            content_type=document.mime_type or "application/octet-stream",
            size=document.file_size,
        )
    return None


def _number_photos(files: list[FileRef]) -> None:
    """Photos are named by their place in the list, as the merchant sees it."""
    for position, ref in enumerate(files, start=1):
        if ref.kind is FileKind.PHOTO:
            ref.filename = f"photo-{position}.jpg"


@router.message(NewTicket.adding_files, F.text, ~F.text.startswith("/"))
async def text_at_files(message: Message) -> None:
    await message.answer(
        _(
            "At this step I take photos and documents. Press <b>Done</b> (or <b>Skip</b>) "
            "to go on; to change the description, press <b>« Back</b>."
        )
    )


@router.message(NewTicket.adding_files, ~F.text)
async def on_file(
    message: Message,
    state: FSMContext,
    regulation: Regulation,
    session: AsyncSession,
    merchant: MerchantProfile,
    bot: Bot,
    dispatcher: Dispatcher,
) -> None:
    data = await drafts.load(state) or WizardData()
    album = message.media_group_id
    # One answer per album: its later files edit the prompt its first file sent.
    same_album = album is not None and album == data.album_id and data.prompt_message_id
    if not same_album:
        data.album_id, data.file_notes = album, []
    ids = data.file_message_ids
    if len(ids) != len(data.files):  # a draft saved before the ids were kept
        ids[:] = list(range(-len(data.files), 0))
    place = bisect(ids, message.message_id)
    ref = file_of(message, place + 1)
    if ref is None:
        data.file_notes.append(FileNote(reason=FileRefusal.UNSUPPORTED, name=message.content_type))
    else:
        refusal = refusal_for(data.files, ref)
        if refusal is None:
            data.files.insert(place, ref)
            ids.insert(place, message.message_id)
            _number_photos(data.files)
        else:
            data.file_notes.append(FileNote(reason=refusal, name=ref.filename, size=ref.size))
    caption = (message.caption or "").strip()
    if caption:
        data.description = "\n\n".join(part for part in (data.description, caption) if part)
    wizard = Wizard(state, regulation, session, merchant)
    if not same_album or data.prompt_message_id is None:
        await wizard.show(message, data, NewTicket.adding_files, edit=False)
        return
    await drafts.save(state, data)
    # The album's later files arrive within a second: the prompt is brought up to date once they
    # stop, not once per file (each edit counts against Telegram's message a second per chat).
    answers = AlbumAnswers.of(dispatcher)
    isolation = dispatcher.fsm.events_isolation
    prompt_id = data.prompt_message_id

    async def refresh() -> None:
        # Under the chat's lock, as an update: a press of Done meanwhile has moved on.
        async with isolation.lock(key=state.key):
            current = await drafts.load(state)
            if (
                await state.get_state() != NewTicket.adding_files.state
                or current is None
                or current.album_id != album
                or current.prompt_message_id != prompt_id
            ):
                return
            text, keyboard = render.step(
                regulation.catalog, current, NewTicket.adding_files, render.StepView()
            )
            try:
                await bot.edit_message_text(
                    text, chat_id=message.chat.id, message_id=prompt_id, reply_markup=keyboard
                )
            except TelegramBadRequest as error:
                # "message is not modified" (a duplicate in the album) is no error.
                if "not modified" not in error.message:
                    raise

    answers.schedule((bot.id, message.chat.id), refresh)


class AlbumAnswers:
    """The answers to albums being received, one per chat: each new file of an album postpones
    its chat's refresh, which runs once `delay` passes without one. Kept per dispatcher."""

    def __init__(self, delay: float = ALBUM_SETTLE_SECONDS) -> None:
        self.delay = delay
        self._latest: dict[tuple[int, int], int] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    @classmethod
    def of(cls, dispatcher: Dispatcher) -> AlbumAnswers:
        """The dispatcher's own, made at its first album; its pending refreshes end with it."""
        answers = dispatcher.workflow_data.get("album_answers")
        if not isinstance(answers, AlbumAnswers):
            answers = dispatcher.workflow_data["album_answers"] = cls()
            dispatcher.shutdown.register(answers.close)
        return answers

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def schedule(self, chat: tuple[int, int], refresh: Callable[[], Awaitable[None]]) -> None:
        generation = self._latest.get(chat, 0) + 1
        self._latest[chat] = generation
        task = asyncio.create_task(self._later(chat, generation, refresh))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _later(
        self, chat: tuple[int, int], generation: int, refresh: Callable[[], Awaitable[None]]
    ) -> None:
        await asyncio.sleep(self.delay)
        if self._latest.get(chat) != generation:
            return  # a later file of the album will refresh
        try:
            await refresh()
        except Exception:
            logger.exception("the answer to an album in chat %s was not brought up to date", chat)
        finally:
            if self._latest.get(chat) == generation:
                del self._latest[chat]
