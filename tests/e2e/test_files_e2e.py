"""Files in the wizard, as a merchant sends them in Telegram (the real bot, Bot API emulator):
an album is one batch with one answer, captions become text, limits and other kinds of messages
are refused with the reason, and the files reach the queue (builtin and a real RT) as the
ticket's attachments, with the agreement to pay when a modification costs money."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import aiohttp
import pytest
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from bot.sandbox.telegram_emulator import AlbumItem, ChatMessage, SimUser, TelegramEmulator
from services import merchants, modifications, stores
from services.db.engine import create_engine, create_sessionmaker
from services.db.models import BuiltinQueueComment, BuiltinQueueTicket, Role, Ticket
from services.regulation import load_regulation
from tests.e2e.driver import MerchantChat, containing
from tests.helpers.wizard import (
    TEXTS,
    describe_to_files,
    merchant,
    send_and_get_number,
    walk_to_description,
)
from tests.integration.rt_fixture import RtServer, RtSpecialist, rt_server
from tests.integration.test_rt_files import rt_attachments, rt_first_message

__all__ = ["rt_server"]  # the session fixture, imported to be found here

pytestmark = pytest.mark.e2e

QUOTA = load_regulation().policies.quota
PHOTOS = [b"\xff\xd8\xff\xe0 album photo %d" % n for n in (1, 2, 3)]

WORDS = {
    "ru": {
        "three_files": "📎 3 файла: photo-1.jpg, photo-2.jpg, photo-3.jpg",
        "files_button": "📎 Файлы",
        "remove": "🗑 Убрать файлы",
        "attached": "📎 К обращению приложено 3 файла.",
        "caption": "Ошибка видна на первом снимке.",
        "doc_caption": "Журнал за утро.",
        "too_big": "⛔ «video.mp4» весит 21 МБ и не приложен: файл может быть до 20 МБ",
        "eleventh": "⛔ «photo-11.jpg» не приложен: к обращению можно приложить до 10 файлов.",
        "sticker": "⛔ Стикер нельзя приложить: к обращению прикладываются только фотографии",
        "ten_files": "📎 10 файлов: checkout.log",
        "modification": "Доработка",
        "template": "Шаблон письма",
        "pay": "✅ Отправить, подтверждаю оплату 500\xa0₽",  # no gendered «согласен(на)»
        "paid": "💳 Вы согласились оплатить эту доработку: 500\xa0₽",
        "paid_body": "Согласие на платную доработку: 500 RUB. Согласие дано в Telegram: Анна",
    },
    "en": {
        "three_files": "📎 3 files: photo-1.jpg, photo-2.jpg, photo-3.jpg",
        "files_button": "📎 Files",
        "remove": "🗑 Remove the files",
        "attached": "📎 3 files are attached to the request.",
        "caption": "The error shows on the first screenshot.",
        "doc_caption": "The morning's log.",
        "too_big": "⛔ «video.mp4» is 21 MB and is not attached: a file can be up to 20 MB",
        "eleventh": "⛔ «photo-11.jpg» is not attached: a request takes up to 10 files.",
        "sticker": "⛔ A sticker cannot be attached: a request takes photos and documents",
        "ten_files": "📎 10 files: checkout.log",
        "modification": "Modification",
        "template": "E-mail template",
        "pay": "✅ Send, I confirm the payment of 500\xa0RUB",
        "paid": "💳 You agreed to pay 500\xa0RUB for this modification",
        "paid_body": "Agreement to pay for the modification: 500 RUB. Given in Telegram by Анна",
    },
}


async def _files_step(chat: MerchantChat, t: dict[str, str]) -> ChatMessage:
    await chat.say("/start")
    await walk_to_description(chat, t)
    return await describe_to_files(chat, t["description"])


def _album(caption: str) -> list[AlbumItem]:
    return [
        AlbumItem("photo", content, caption=caption if n == 0 else None)
        for n, content in enumerate(PHOTOS)
    ]


async def _answer_to_album(chat: MerchantChat, items: list[AlbumItem], shows: str) -> ChatMessage:
    """Sends the album; waits until the bot's one answer to it shows `shows`."""
    since = chat.emu.mark()
    chat.emu.send_album(chat.user, items)
    prompt = await chat.emu.wait_for_message(
        chat.user, lambda m: bool(m.buttons), since=since, timeout=chat.timeout
    )
    await chat.emu.wait_until(
        lambda: shows in chat.emu.message(chat.user, prompt.message_id).content, timeout=15
    )
    # One answer for the album: a single new message, brought up to date once the files stopped
    # coming (an edit, not one per file).
    sent = [c for c in chat.emu.calls_to("sendMessage") if c.seq > since]
    assert len(sent) == 1, [c.params.get("text") for c in sent]
    answer = chat.emu.message(chat.user, prompt.message_id)
    assert len(answer.versions) == 1, answer.versions
    return answer


async def _queue_files(database_url: str, number: str) -> tuple[str, list[tuple[str, bytes]]]:
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            ticket = await session.scalar(
                select(BuiltinQueueTicket)
                .where(BuiltinQueueTicket.id == int(number))
                .options(
                    selectinload(BuiltinQueueTicket.comments).selectinload(
                        BuiltinQueueComment.attachments
                    )
                )
            )
            assert ticket is not None
            first = ticket.comments[0]
            return first.body, [(a.filename, a.content) for a in first.attachments]
    finally:
        await engine.dispose()


@pytest.mark.parametrize("language", ["ru", "en"])
@pytest.mark.parametrize(
    ("fsm", "mode"), [("sql", "polling"), ("redis", "polling"), ("sql", "webhook")]
)
async def test_an_album_of_three_photos_is_one_batch_filed_as_three_attachments(
    emulator: TelegramEmulator,
    start_bot,
    request: pytest.FixtureRequest,
    language: str,
    fsm: str,
    mode: str,
) -> None:
    """An album's updates are handled concurrently (aiogram's tasks, the webhook's background
    handling): none of its files is lost, with the SQL or the Redis FSM."""
    t, w = TEXTS[language], WORDS[language]
    env = request.getfixturevalue("redis_env") if fsm == "redis" else {}
    bot = await start_bot(env=env, webhook=mode == "webhook")
    chat = MerchantChat(emulator, merchant(language))
    await _files_step(chat, t)

    prompt = await _answer_to_album(chat, _album(w["caption"]), w["three_files"])
    assert t["done"] in [b.text for b in prompt.buttons]
    review = await chat.press(prompt, t["done"])
    assert t["review"] in review.content and w["three_files"] in review.content
    assert w["caption"] in review.content  # the caption is kept as text: in the description
    # Back to the files from the review, and back again: nothing lost.
    files_again = await chat.press(review, w["files_button"])
    assert t["files_prompt"] in files_again.raw_text and w["three_files"] in files_again.content
    review = await chat.press(files_again, t["done"])
    assert w["three_files"] in review.content

    number = await send_and_get_number(chat, review, t)
    registered = emulator.last_message(chat.user)
    assert registered is not None and w["attached"] in registered.content
    body, files = await _queue_files(bot.env["DATABASE_URL"], number)
    # The largest size of each photo, not Telegram's thumbnail.
    assert files == [(f"photo-{n}.jpg", c) for n, c in enumerate(PHOTOS, start=1)]
    assert body == t["description"] + "\n\n" + w["caption"]
    assert emulator.failed_calls == []


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_a_document_with_a_caption_and_the_limits_of_the_files_step(
    emulator: TelegramEmulator, start_bot, language: str
) -> None:
    t, w = TEXTS[language], WORDS[language]
    bot = await start_bot()
    chat = MerchantChat(emulator, merchant(language))
    await _files_step(chat, t)

    since = emulator.mark()
    emulator.send_document(chat.user, "wrong.txt", b"not this one")
    wrong = await emulator.wait_for_message(chat.user, containing("wrong.txt"), since=since)
    cleared = await chat.press(wrong, w["remove"])
    assert "wrong.txt" not in cleared.content and t["skip"] in [b.text for b in cleared.buttons]

    since = emulator.mark()
    emulator.send_document(chat.user, "checkout.log", b"09:00 500\n", caption=w["doc_caption"])
    answer = await emulator.wait_for_message(chat.user, lambda m: bool(m.buttons), since=since)
    assert "checkout.log" in answer.content

    since = emulator.mark()
    emulator.send_document(chat.user, "video.mp4", b"\0" * (21 * 1024 * 1024))
    too_big = await emulator.wait_for_message(chat.user, containing(w["too_big"]), since=since)
    assert "video.mp4" not in too_big.content.split("\n\n")[2]  # not in the list of files

    sticker = await _send_other(chat, "sticker", w["sticker"])
    assert sticker.buttons  # the step goes on

    album = [AlbumItem("photo", b"\xff\xd8 photo %d" % n) for n in range(2, 11)]
    await _answer_to_album(chat, album, w["ten_files"])
    since = emulator.mark()
    emulator.send_photo(chat.user, b"\xff\xd8 one too many")
    await emulator.wait_for_message(chat.user, containing(w["eleventh"]), since=since)

    prompt = emulator.last_message(chat.user)
    assert prompt is not None
    review = await chat.press(prompt, t["done"])
    assert w["ten_files"] in review.content
    number = await send_and_get_number(chat, review, t)
    body, files = await _queue_files(bot.env["DATABASE_URL"], number)
    assert len(files) == 10 and files[0] == ("checkout.log", b"09:00 500\n")
    assert body == t["description"] + "\n\n" + w["doc_caption"]


async def _send_other(chat: MerchantChat, kind: str, refusal: str) -> ChatMessage:
    since = chat.emu.mark()
    chat.emu.send_other(chat.user, kind)
    return await chat.emu.wait_for_message(chat.user, containing(refusal), since=since)


async def _seed_spent_allowance(database_url: str, user: SimUser) -> None:
    """The merchant is an admin of a combo store whose 4 free modifications are used."""
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            profile = await merchants.get_or_register(
                session, telegram_id=user.id, full_name=user.first_name, username=user.username
            )
            store_id = await stores.add_store(
                session, domain=f"spent-{user.id}.example.com", name="Spent", plan="combo"
            )
            await stores.grant(session, merchant_id=profile.id, store_id=store_id, role=Role.ADMIN)
            for _ in range(4):
                await modifications.record_modification(
                    session,
                    QUOTA,
                    store_id=store_id,
                    plan="combo",
                    minutes=10,
                    specialist="Иван",
                    done_at=datetime.now(UTC),
                )
    finally:
        await engine.dispose()


@pytest.fixture
async def specialist(rt_server: RtServer) -> AsyncIterator[RtSpecialist]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=30)) as session:
        yield RtSpecialist(session, rt_server)


@pytest.mark.rt
@pytest.mark.parametrize("language", ["ru", "en"])
async def test_a_paid_modification_with_an_album_reaches_rt_with_the_agreement(
    emulator: TelegramEmulator,
    start_bot,
    rt_server: RtServer,
    specialist: RtSpecialist,
    sqlite_url: str,
    language: str,
) -> None:
    t, w = TEXTS[language], WORDS[language]
    user = merchant(language, user_id=5_200_001 if language == "ru" else 5_200_002)
    await _seed_spent_allowance(sqlite_url, user)
    bot = await start_bot(
        env={"QUEUE": "rt", "RT_URL": rt_server.base_url, "RT_TOKEN": rt_server.token}
    )
    chat = MerchantChat(emulator, user)

    types = await chat.say("/new", until=lambda m: bool(m.buttons))
    categories = await chat.press(types, w["modification"])
    await chat.press(categories, w["template"])
    await chat.say(t["subject"])
    await describe_to_files(chat, t["description"])
    prompt = await _answer_to_album(chat, _album(w["caption"]), w["three_files"])
    review = await chat.press(prompt, t["done"])
    assert review.buttons[0].text == w["pay"]

    registered = emulator.wait_for_message(
        user, containing(t["registered"]), since=emulator.mark(), timeout=30
    )
    await chat.press_for_new(review, w["pay"], until=containing(t["accepted"]))
    notice = (await registered).content
    assert w["paid"] in notice and w["attached"] in notice
    number = notice.split("#", 1)[1].split()[0].strip(".")

    assert await rt_attachments(specialist, number) == [
        (f"photo-{n}.jpg", "image/jpeg", c) for n, c in enumerate(PHOTOS, start=1)
    ]
    [agreement] = (await specialist.custom_fields(number))["PaidAgreement"]
    assert agreement.startswith(f"500 RUB; Анна (telegram {user.id}); ")
    body = await rt_first_message(specialist, number)
    assert body.startswith(t["description"] + "\n\n" + w["caption"])
    assert w["paid_body"] in body

    engine = create_engine(bot.env["DATABASE_URL"])
    try:
        async with create_sessionmaker(engine)() as session:
            ticket = await session.scalar(select(Ticket))
            assert ticket is not None
            assert (ticket.paid_amount, ticket.paid_currency, ticket.paid_by_name) == (
                500,
                "RUB",
                "Анна",
            )
            # RT's Due is the first-reaction deadline the merchant was told, to the minute.
            told = ticket.first_reaction_due
            assert told is not None
            rt_due = (await specialist.call("GET", f"ticket/{number}"))["Due"]
            shown = datetime.fromisoformat(rt_due.replace("Z", "+00:00"))
            assert shown.replace(second=0) == told.astimezone(UTC).replace(second=0, microsecond=0)
    finally:
        await engine.dispose()
    await asyncio.sleep(0)
