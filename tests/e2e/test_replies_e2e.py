"""The merchant's reply with a photo, through the real bot application: accepted by
services/replies.py (as the ticket screens will call it), the photo read from Telegram by the
reply worker the application runs (TelegramFileSource over the emulator's getFile/download),
added to the queue — the builtin one, and the real Request Tracker, whose history is checked —
as the requester's message, confirmed in the chat in Russian and English, and never echoed back
by the sync as support's reply. The Telegram side of "Reply" (buttons, reply_to) is the ticket
screens' own test."""

from __future__ import annotations

import asyncio
from typing import cast

import pytest
from sqlalchemy import select

from bot.sandbox.telegram_emulator import TelegramEmulator
from services import merchants, replies
from services.db.engine import create_engine, create_sessionmaker
from services.db.models import Ticket
from services.files import FileKind, FileRef
from services.queue.builtin import BuiltinQueue
from tests.e2e.bot_in_process import InProcessBot
from tests.e2e.driver import MerchantChat, containing
from tests.helpers.rt_faults import rt_correspondence
from tests.helpers.wizard import (
    TEXTS,
    describe,
    merchant,
    send_and_get_number,
    walk_to_description,
)
from tests.integration.rt_fixture import RtServer, rt_server

__all__ = ["rt_server"]  # the session fixture, imported to be found here

pytestmark = pytest.mark.e2e

PHOTO = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01 a photo of the broken checkout"
ADDED = {"ru": "Добавлено к обращению", "en": "Added to request"}
FILES = {"ru": "С 1 файлом.", "en": "With 1 file."}
# A photo sent with no reply under way is a free message: the bot offers to add it somewhere.
OFFER = {"ru": "не зарегистрированное обращение", "en": "not a registered request"}


@pytest.mark.parametrize(
    ("language", "queue"),
    [("ru", "builtin"), ("en", "builtin"), pytest.param("ru", "rt", marks=pytest.mark.rt)],
)
async def test_reply_with_a_photo_reaches_the_queue_and_is_confirmed_in_the_chat(
    emulator: TelegramEmulator,
    start_bot,
    request: pytest.FixtureRequest,
    language: str,
    queue: str,
) -> None:
    t = TEXTS[language]
    env = {"SYNC_INTERVAL_SECONDS": "0.5"}
    rt: RtServer | None = None
    if queue == "rt":
        rt = request.getfixturevalue("rt_server")
        env |= {"QUEUE": "rt", "RT_URL": rt.base_url, "RT_TOKEN": rt.token}
    bot = cast(InProcessBot, await start_bot(env=env))
    chat = MerchantChat(emulator, merchant(language))
    await chat.say("/start")
    await walk_to_description(chat, t)
    review = await describe(chat, t["description"])
    number = await send_and_get_number(chat, review, t)

    since = emulator.mark()
    sent = emulator.send_photo(chat.user, PHOTO, caption="Вот что видит покупатель")
    assert sent.photo is not None
    # Answered before the reply is added here, so that it cannot arrive during the silence below.
    await emulator.wait_for_message(chat.user, containing(OFFER[language]), since=since, timeout=20)
    photo = sent.photo[-1]
    engine = create_engine(bot.env["DATABASE_URL"])
    try:
        sessionmaker = create_sessionmaker(engine)
        async with sessionmaker() as session:
            ticket = await session.scalar(select(Ticket).where(Ticket.queue_ticket_id == number))
            assert ticket is not None
            profile = await merchants.get_or_register(
                session, telegram_id=chat.user.id, full_name="Анна", username="anna_shop"
            )
            since = emulator.mark()
            accepted = await replies.add_reply(
                session,
                merchant=profile,
                ticket_id=ticket.id,
                key=f"{chat.user.id}:{sent.message_id}",
                text=sent.caption or "",
                files=[
                    FileRef(
                        file_id=photo.file_id,
                        file_unique_id=photo.file_unique_id,
                        kind=FileKind.PHOTO,
                        filename=f"photo_{sent.message_id}.jpg",
                        content_type="image/jpeg",
                        size=photo.file_size,
                    )
                ],
            )
        assert accepted.number == number
        assert bot.app is not None
        bot.app.replies.wake()
        confirmation = await emulator.wait_for_message(
            chat.user, containing(ADDED[language], f"#{number}"), since=since, timeout=20
        )
        assert FILES[language] in confirmation.content

        if rt is not None:
            history = await rt_correspondence(rt, number)
            assert [(m["type"], m["creator"]) for m in history] == [
                ("Create", rt.user),
                ("Correspond", rt.user),
            ]
            assert [content for _, content in history[1]["files"]] == [PHOTO]
        else:
            entries = await BuiltinQueue(sessionmaker).conversation(number)
            latest = entries[-1]
            assert (latest.by_support, latest.body) == (False, "Вот что видит покупатель")
            [info] = latest.attachments
            assert (await BuiltinQueue(sessionmaker).attachment(number, info.id)).content == PHOTO
        # The sync reads the ticket again (it changed) and says nothing of the merchant's own.
        since = emulator.mark()
        await asyncio.sleep(2)
        assert [m.content for m in emulator.bot_messages(chat.user.chat_id) if m.seq > since] == []
    finally:
        await engine.dispose()
