"""The Telegram Bot API emulator, driven by a real aiogram Bot over loopback HTTP."""

from __future__ import annotations

import asyncio
import html
import io
import socket
import struct
import zlib
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import pytest
from aiogram import Bot, Dispatcher, F, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.enums import ParseMode
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramConflictError,
    TelegramForbiddenError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramUnauthorizedError,
)
from aiogram.filters import Command, CommandStart
from aiogram.methods import SendMessage, TelegramMethod
from aiogram.types import (
    BotCommand,
    BotCommandScopeAllPrivateChats,
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
    Update,
)
from aiogram.webhook.aiohttp_server import SimpleRequestHandler
from aiohttp import web

from bot.sandbox.telegram_emulator import (
    POLLING_CONFLICT,
    WEBHOOK_CONFLICT,
    AlbumItem,
    ApiError,
    SimUser,
    TelegramEmulator,
    parse_html,
    utf16_len,
)

TOKEN = "123456:TEST"
ALICE = SimUser(id=1001, first_name="Alice", username="alice", language_code="en")
BORIS = SimUser(id=1002, first_name="Борис", username="boris", language_code="ru")


@pytest.fixture
async def emu() -> AsyncIterator[TelegramEmulator]:
    async with TelegramEmulator(token=TOKEN, bot_username="frontdesk_test_bot") as emulator:
        yield emulator


def make_bot(emu: TelegramEmulator, token: str = TOKEN) -> Bot:
    # Exactly how the real bot is wired (bot/factories.py).
    return Bot(
        token=token,
        session=AiohttpSession(api=TelegramAPIServer.from_base(emu.base_url)),
        default=DefaultBotProperties(parse_mode=ParseMode.HTML),
    )


@pytest.fixture
async def bot(emu: TelegramEmulator) -> AsyncIterator[Bot]:
    async with make_bot(emu) as client:
        yield client


def keyboard(*buttons: tuple[str, str]) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=t, callback_data=d)] for t, d in buttons]
    )


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@asynccontextmanager
async def serving(app: web.Application) -> AsyncIterator[str]:
    """Runs an aiohttp app on loopback; yields its base URL."""
    runner = web.AppRunner(app)
    await runner.setup()
    port = free_port()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        await runner.cleanup()


def tiny_png(width: int, height: int) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    pixels = zlib.compress(b"".join(b"\x00" + b"\x00" * width for _ in range(height)))
    return (
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", pixels) + chunk(b"IEND", b"")
    )


# --------------------------------------------------------------------------- HTML parse mode


def test_parse_html_strips_tags_and_counts_utf16() -> None:
    text, entities = parse_html(
        '😀 <b>bold <i>both</i></b> &lt;tag&gt; &amp; &#33; <a href="https://x.y/?a=1&amp;b=2">'
        'link</a> <pre><code class="language-python">x = 1</code></pre>'
    )
    assert text == "😀 bold both <tag> & ! link x = 1"
    kinds = [(e.type, e.offset, e.length) for e in entities]
    # The emoji takes two UTF-16 code units, so everything after it is shifted by one.
    assert kinds == [
        ("bold", 3, 9),
        ("italic", 8, 4),
        ("text_link", 23, 4),
        ("pre", 28, 5),
    ]
    assert entities[2].url == "https://x.y/?a=1&b=2"
    assert entities[3].language == "python"
    assert utf16_len("😀") == 2


@pytest.mark.parametrize(
    ("source", "reason"),
    [
        ("<b>unclosed", 'Can\'t find end tag corresponding to start tag "b"'),
        ("line<br>break", 'Unsupported start tag "br" at byte offset 4'),
        ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
        ("x</b>", "Unexpected end tag at byte offset 1"),
        ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
        ('<span class="x">s</span>', 'Tag "span" must have class "tg-spoiler"'),
    ],
)
def test_parse_html_rejects_what_telegram_rejects(source: str, reason: str) -> None:
    with pytest.raises(ApiError) as caught:
        parse_html(source)
    assert caught.value.status == 400
    assert caught.value.description.startswith("Bad Request: can't parse entities: " + reason)


def test_parse_html_accepts_telegram_extras() -> None:
    text, entities = parse_html(
        '<tg-spoiler>a</tg-spoiler><span class="tg-spoiler">b</span><u>c</u><s>d</s>'
        "<blockquote expandable>e</blockquote><code>f</code>1 > 0 & fine"
    )
    assert text == "abcdef1 > 0 & fine"
    assert [e.type for e in entities] == [
        "spoiler",
        "spoiler",
        "underline",
        "strikethrough",
        "expandable_blockquote",
        "code",
    ]


# --------------------------------------------------------------------------- basic methods


async def test_get_me(bot: Bot) -> None:
    me = await bot.get_me()
    assert me.id == 123456
    assert me.is_bot is True
    assert me.username == "frontdesk_test_bot"


async def test_send_message_with_inline_keyboard(emu: TelegramEmulator, bot: Bot) -> None:
    emu.add_user(ALICE)
    markup = keyboard(("Yes", "answer:yes"), ("No", "answer:no"))

    sent = await bot.send_message(ALICE.id, "<b>Hello</b>, &lt;Alice&gt;!", reply_markup=markup)

    assert sent.text == "Hello, <Alice>!"
    assert sent.from_user is not None and sent.from_user.is_bot
    assert sent.entities is not None and sent.entities[0].type == "bold"
    assert sent.reply_markup is not None
    assert sent.reply_markup.model_dump() == markup.model_dump()
    record = await emu.wait_for_message(ALICE.id)
    assert record.message_id == sent.message_id
    assert record.text == "Hello, <Alice>!"
    assert record.raw_text == "<b>Hello</b>, &lt;Alice&gt;!"
    assert record.parse_mode == "HTML"
    assert record.reply_markup == markup
    assert [b.callback_data for b in record.buttons] == ["answer:yes", "answer:no"]
    assert record.button_rows == [["Yes"], ["No"]]
    assert emu.last_message(ALICE) is record
    call = emu.calls_to("sendMessage")[-1]
    assert call.ok and call.params["text"] == "<b>Hello</b>, &lt;Alice&gt;!"
    assert isinstance(call.request, SendMessage) and call.request.parse_mode == "HTML"


async def test_send_message_errors(emu: TelegramEmulator, bot: Bot) -> None:
    with pytest.raises(TelegramBadRequest, match="chat not found"):
        await bot.send_message(999, "nobody there")
    emu.add_user(ALICE)
    with pytest.raises(TelegramBadRequest, match="can't parse entities"):
        await bot.send_message(ALICE.id, "<b>unclosed")
    with pytest.raises(TelegramBadRequest, match="can't parse entities: Unsupported start tag"):
        await bot.send_message(ALICE.id, "a<br>b")
    with pytest.raises(TelegramBadRequest, match="message text is empty"):
        await bot.send_message(ALICE.id, "<b> </b>")
    with pytest.raises(TelegramBadRequest, match="message is too long"):
        await bot.send_message(ALICE.id, "x" * 4097)
    with pytest.raises(TelegramBadRequest, match="BUTTON_DATA_INVALID"):
        await bot.send_message(ALICE.id, "long data", reply_markup=keyboard(("B", "x" * 65)))
    assert emu.bot_messages(ALICE) == []
    assert [c.status for c in emu.failed_calls] == [400] * 6


async def test_edit_message_text_and_markup(emu: TelegramEmulator, bot: Bot) -> None:
    emu.add_user(ALICE)
    markup = keyboard(("Go", "go"))
    sent = await bot.send_message(ALICE.id, "Step 1", reply_markup=markup)

    edited = await bot.edit_message_text(
        "<i>Step 2</i>", chat_id=ALICE.id, message_id=sent.message_id, reply_markup=markup
    )
    assert isinstance(edited, Message) and edited.text == "Step 2"
    assert edited.edit_date is not None
    record = emu.message(ALICE, sent.message_id)
    assert (record.text, record.versions, record.reply_markup) == ("Step 2", ["Step 1"], markup)

    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_text(
            "<i>Step 2</i>", chat_id=ALICE.id, message_id=sent.message_id, reply_markup=markup
        )
    # Like Telegram: an edit that does not repeat the keyboard removes it.
    await bot.edit_message_text("Step 3", chat_id=ALICE.id, message_id=sent.message_id)
    assert record.reply_markup is None and record.buttons == []

    await bot.edit_message_reply_markup(
        chat_id=ALICE.id, message_id=sent.message_id, reply_markup=markup
    )
    assert record.reply_markup == markup
    await bot.edit_message_reply_markup(chat_id=ALICE.id, message_id=sent.message_id)
    assert record.reply_markup is None
    with pytest.raises(TelegramBadRequest, match="message is not modified"):
        await bot.edit_message_reply_markup(chat_id=ALICE.id, message_id=sent.message_id)
    with pytest.raises(TelegramBadRequest, match="message to edit not found"):
        await bot.edit_message_text("x", chat_id=ALICE.id, message_id=999)
    user_message = emu.send_text(ALICE, "mine")
    with pytest.raises(TelegramBadRequest, match="message can't be edited"):
        await bot.edit_message_text("x", chat_id=ALICE.id, message_id=user_message.message_id)


async def test_delete_message(emu: TelegramEmulator, bot: Bot) -> None:
    emu.add_user(ALICE)
    sent = await bot.send_message(ALICE.id, "temporary", reply_markup=keyboard(("Ok", "ok")))

    assert await bot.delete_message(ALICE.id, sent.message_id) is True

    record = emu.message(ALICE, sent.message_id)
    assert record.deleted
    assert emu.last_message(ALICE) is None
    assert emu.bot_messages(ALICE, include_deleted=True) == [record]
    with pytest.raises(TelegramBadRequest, match="message to delete not found"):
        await bot.delete_message(ALICE.id, sent.message_id)
    with pytest.raises(LookupError, match="deleted"):
        emu.press_button(ALICE, record, "ok")


async def test_callback_query_round_trip(emu: TelegramEmulator, bot: Bot) -> None:
    emu.add_user(ALICE)
    sent = await bot.send_message(ALICE.id, "Pick", reply_markup=keyboard(("A", "pick:a")))

    with pytest.raises(LookupError, match="no inline button"):
        emu.press_button(ALICE, sent, "pick:b")
    query = emu.press_button(ALICE, sent, "pick:a")

    updates = await bot.get_updates(timeout=5)
    assert [u.update_id for u in updates] == [1]
    received = updates[0].callback_query
    assert received is not None
    assert received.id == query.id
    assert received.data == "pick:a"
    assert received.chat_instance
    assert received.from_user.id == ALICE.id and not received.from_user.is_bot
    assert isinstance(received.message, Message)
    assert received.message.message_id == sent.message_id
    assert received.message.reply_markup == sent.reply_markup

    assert await bot.answer_callback_query(received.id, text="Done", show_alert=True)
    answer = await emu.wait_for_callback_answer(query)
    assert (answer.text, answer.show_alert) == ("Done", True)
    assert emu.answered_callbacks == [answer]
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query(received.id)
    with pytest.raises(TelegramBadRequest, match="query is too old"):
        await bot.answer_callback_query("no-such-query")

    by_text = emu.press_button(ALICE, sent.message_id, text="A")
    assert by_text.data == "pick:a"
    stale = emu.press_button(ALICE, sent, "pick:gone", require_button=False)
    assert stale.data == "pick:gone"


async def test_set_my_commands_per_language(emu: TelegramEmulator, bot: Bot) -> None:
    scope = BotCommandScopeAllPrivateChats()
    russian = [BotCommand(command="new", description="Новая заявка")]
    english = [BotCommand(command="new", description="New request")]

    assert await bot.set_my_commands(russian, scope=scope, language_code="ru")
    assert await bot.set_my_commands(english, scope=scope, language_code="en")
    assert await bot.set_my_commands(english, scope=scope)

    assert emu.commands[("all_private_chats", "ru")] == russian
    assert emu.commands[("all_private_chats", "en")] == english
    assert emu.commands[("all_private_chats", "")] == english
    # Objects parsed by a Bot are bound to it, so compare their data, not the models.
    fetched = await bot.get_my_commands(scope=scope, language_code="ru")
    assert [c.model_dump() for c in fetched] == [c.model_dump() for c in russian]
    assert await bot.get_my_commands() == []  # the default scope was never set
    assert emu.visible_commands(BORIS) == russian
    german = SimUser(id=7, first_name="Greta", language_code="de")
    assert emu.visible_commands(german) == english
    setting = await emu.wait_for_call("setMyCommands")
    assert setting.params["language_code"] == "ru"

    with pytest.raises(TelegramBadRequest, match="BOT_COMMAND_INVALID"):
        await bot.set_my_commands([BotCommand(command="New", description="x")])
    with pytest.raises(TelegramBadRequest, match="invalid language code"):
        await bot.set_my_commands(english, language_code="pt_BR")
    assert await bot.delete_my_commands(scope=scope, language_code="ru")
    assert emu.visible_commands(BORIS) == english


async def test_send_chat_action_close_and_log_out(emu: TelegramEmulator, bot: Bot) -> None:
    emu.add_user(ALICE)
    assert await bot.send_chat_action(ALICE.id, "typing") is True
    with pytest.raises(TelegramBadRequest, match="wrong parameter action"):
        await bot.send_chat_action(ALICE.id, "dancing")
    assert await bot.close() is True
    assert await bot.log_out() is True
    assert [c.method for c in emu.calls if c.ok] == ["sendChatAction", "close", "logOut"]


# --------------------------------------------------------------------------- errors like Telegram


class FooBar(TelegramMethod[bool]):
    __returning__ = bool
    __api_method__ = "fooBar"


async def test_unknown_method_is_404(emu: TelegramEmulator, bot: Bot) -> None:
    with pytest.raises(TelegramNotFound, match="Not Found"):
        await bot(FooBar())
    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{emu.base_url}/bot{TOKEN}/fooBar") as response,
    ):
        assert response.status == 404
        assert await response.json() == {"ok": False, "error_code": 404, "description": "Not Found"}


async def test_wrong_token_is_401(emu: TelegramEmulator) -> None:
    async with make_bot(emu, token="654321:WRONG") as stranger:
        with pytest.raises(TelegramUnauthorizedError, match="Unauthorized"):
            await stranger.get_me()
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{emu.base_url}/bot654321:WRONG/getMe") as response,
    ):
        assert response.status == 401
        assert await response.json() == {
            "ok": False,
            "error_code": 401,
            "description": "Unauthorized",
        }


async def test_injected_errors(emu: TelegramEmulator, bot: Bot) -> None:
    emu.add_user(ALICE)
    emu.inject_error("sendMessage", 429, "Too Many Requests: retry after 3", retry_after=3)

    with pytest.raises(TelegramRetryAfter) as caught:
        await bot.send_message(ALICE.id, "first")
    assert caught.value.retry_after == 3
    await bot.send_message(ALICE.id, "second")
    assert [m.text for m in emu.bot_messages(ALICE)] == ["second"]


async def test_blocked_user_is_403(emu: TelegramEmulator, bot: Bot) -> None:
    emu.add_user(ALICE)
    emu.block_bot(ALICE)
    with pytest.raises(TelegramForbiddenError, match="bot was blocked by the user"):
        await bot.send_message(ALICE.id, "hello?")
    with pytest.raises(RuntimeError, match="blocked the bot"):
        emu.send_text(ALICE, "hi")
    updates = await bot.get_updates()
    assert updates[0].my_chat_member is not None
    assert updates[0].my_chat_member.new_chat_member.status == "kicked"
    emu.unblock_bot(ALICE)
    await bot.send_message(ALICE.id, "welcome back")


# --------------------------------------------------------------------------- raw HTTP encodings


async def test_json_urlencoded_multipart_and_query_parameters(emu: TelegramEmulator) -> None:
    emu.add_user(ALICE)
    markup = {"inline_keyboard": [[{"text": "A", "callback_data": "a"}]]}
    url = f"{emu.base_url}/bot{TOKEN}"
    form = aiohttp.FormData()
    form.add_field("chat_id", str(ALICE.id))
    form.add_field("text", "multipart")
    form.add_field("reply_markup", '{"inline_keyboard": [[{"text": "M", "callback_data": "m"}]]}')
    async with aiohttp.ClientSession() as http:
        requests = [
            http.post(
                f"{url}/sendMessage",
                json={"chat_id": ALICE.id, "text": "json object", "reply_markup": markup},
            ),
            http.post(
                f"{url}/sendMessage",
                json={"chat_id": ALICE.id, "text": "json string", "reply_markup": str(markup)},
            ),
            http.post(
                f"{url}/SENDMESSAGE",  # method names are case-insensitive
                data={"chat_id": str(ALICE.id), "text": "[urlencoded]", "parse_mode": "HTML"},
            ),
            http.post(f"{url}/sendMessage", data=form),
            http.get(f"{url}/sendMessage", params={"chat_id": ALICE.id, "text": "query"}),
            http.post(f"{url}/sendMessage", json={"text": "no chat"}),
        ]
        statuses = []
        for request in requests:
            async with request as response:
                statuses.append((response.status, await response.json()))

    assert [status for status, _ in statuses] == [200, 400, 200, 200, 200, 400]
    # A Python repr is not JSON: Telegram-like 400 with a description.
    assert statuses[1][1]["description"].startswith("Bad Request: can't parse reply_markup")
    assert statuses[5][1] == {
        "ok": False,
        "error_code": 400,
        "description": "Bad Request: chat_id is empty",
    }
    messages = emu.bot_messages(ALICE)
    assert [m.text for m in messages] == ["json object", "[urlencoded]", "multipart", "query"]
    assert [b.callback_data for m in messages for b in m.buttons] == ["a", "m"]
    assert emu.calls[2].method == "sendMessage"
    for _, body in statuses:
        if body["ok"]:
            Message.model_validate(body["result"])


async def test_reply_markup_as_json_string(emu: TelegramEmulator) -> None:
    emu.add_user(ALICE)
    async with (
        aiohttp.ClientSession() as http,
        http.post(
            f"{emu.base_url}/bot{TOKEN}/sendMessage",
            json={
                "chat_id": ALICE.id,
                "text": "str markup",
                "reply_markup": '{"inline_keyboard": [[{"text": "S", "callback_data": "s"}]]}',
            },
        ) as response,
    ):
        assert response.status == 200
    last = emu.last_message(ALICE)
    assert last is not None and [b.callback_data for b in last.buttons] == ["s"]


# --------------------------------------------------------------------------- getUpdates


async def test_get_updates_long_poll_delivers_user_text(emu: TelegramEmulator, bot: Bot) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    poll = asyncio.create_task(bot.get_updates(timeout=10))
    await emu.wait_until(lambda: emu.polling)
    assert not poll.done()

    sent = emu.send_text(ALICE, "/start hello")
    updates = await poll

    assert loop.time() - started < 5  # answered at once, not at the end of the timeout
    assert len(updates) == 1
    message = updates[0].message
    assert message is not None and message.text == "/start hello"
    assert message.message_id == sent.message_id
    assert message.from_user is not None and message.from_user.language_code == "en"
    assert message.chat.type == "private" and message.chat.id == ALICE.id
    assert message.entities is not None
    assert [(e.type, e.offset, e.length) for e in message.entities] == [("bot_command", 0, 6)]

    # Unconfirmed updates come again; an offset past them confirms and drops them.
    assert [u.update_id for u in await bot.get_updates()] == [updates[0].update_id]
    assert await bot.get_updates(offset=updates[0].update_id + 1) == []
    assert emu.pending_updates == []


async def test_get_updates_timeout_limit_and_negative_offset(
    emu: TelegramEmulator, bot: Bot
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    assert await bot.get_updates(timeout=1) == []
    assert loop.time() - started >= 0.9

    for text in ("one", "two", "three"):
        emu.send_text(ALICE, text)
    limited = await bot.get_updates(limit=2)
    assert [u.message.text for u in limited if u.message] == ["one", "two"]
    last = await bot.get_updates(offset=-1)
    assert [u.message.text for u in last if u.message] == ["three"]
    assert len(emu.pending_updates) == 1


async def test_newer_get_updates_terminates_older(emu: TelegramEmulator, bot: Bot) -> None:
    first = asyncio.create_task(bot.get_updates(timeout=10))
    await emu.wait_until(lambda: emu.polling)
    second = asyncio.create_task(bot.get_updates(timeout=10))

    with pytest.raises(TelegramConflictError, match="terminated by other getUpdates"):
        await first
    emu.send_text(ALICE, "hi")
    assert len(await second) == 1
    assert emu.calls_to("getUpdates")[0].description == POLLING_CONFLICT


async def test_allowed_updates_filter(emu: TelegramEmulator, bot: Bot) -> None:
    emu.add_user(ALICE)
    sent = await bot.send_message(ALICE.id, "x", reply_markup=keyboard(("B", "b")))
    assert await bot.get_updates(allowed_updates=["message"]) == []

    emu.press_button(ALICE, sent, "b")
    emu.send_text(ALICE, "text")

    updates = await bot.get_updates()
    assert [u.event_type for u in updates] == ["message"]
    assert [u.event_type for u in emu.filtered_updates] == ["callback_query"]


# --------------------------------------------------------------------------- webhook


@asynccontextmanager
async def webhook_receiver(
    reply: Callable[[web.Request], Awaitable[web.Response]] | None = None,
) -> AsyncIterator[tuple[str, list[tuple[dict[str, str], dict[str, Any]]]]]:
    received: list[tuple[dict[str, str], dict[str, Any]]] = []

    async def handle(request: web.Request) -> web.Response:
        received.append((dict(request.headers), await request.json()))
        return await reply(request) if reply else web.json_response({})

    app = web.Application()
    app.router.add_post("/webhook", handle)
    async with serving(app) as base:
        yield base + "/webhook", received


async def test_webhook_delivery_with_secret(emu: TelegramEmulator, bot: Bot) -> None:
    async with webhook_receiver() as (url, received):
        assert await bot.set_webhook(url, secret_token="s3cret-token")

        with pytest.raises(TelegramConflictError) as conflict:
            await bot.get_updates()
        assert conflict.value.message == WEBHOOK_CONFLICT
        sent = emu.send_text(ALICE, "via webhook")
        delivery = await emu.wait_for_delivery()

        assert delivery.ok and delivery.status == 200 and delivery.url == url
        headers, body = received[0]
        assert headers["X-Telegram-Bot-Api-Secret-Token"] == "s3cret-token"
        update = Update.model_validate(body)
        assert update.update_id == delivery.update_id
        assert update.message is not None and update.message.text == "via webhook"
        assert update.message.message_id == sent.message_id
        info = await bot.get_webhook_info()
        assert (info.url, info.pending_update_count) == (url, 0)

    async with (
        aiohttp.ClientSession() as http,
        http.post(f"{emu.base_url}/bot{TOKEN}/getUpdates") as response,
    ):
        assert response.status == 409
        assert await response.json() == {
            "ok": False,
            "error_code": 409,
            "description": WEBHOOK_CONFLICT,
        }

    assert await bot.delete_webhook()
    emu.send_text(ALICE, "polling again")
    assert [u.message.text for u in await bot.get_updates() if u.message] == ["polling again"]


async def test_webhook_failures_are_recorded(emu: TelegramEmulator, bot: Bot) -> None:
    async def fail(_: web.Request) -> web.Response:
        return web.Response(status=500)

    async with webhook_receiver(fail) as (url, _):
        await bot.set_webhook(url)
        emu.send_text(ALICE, "boom")
        delivery = await emu.wait_for_delivery()
        assert delivery.status == 500 and not delivery.ok
        info = await bot.get_webhook_info()
        assert info.last_error_message is not None and "500" in info.last_error_message

    dead_url = f"http://127.0.0.1:{free_port()}/webhook"
    await bot.set_webhook(dead_url)
    emu.send_text(ALICE, "nobody listens")
    refused = await emu.wait_for_delivery()
    assert refused.status is None and refused.error

    with pytest.raises(TelegramBadRequest, match="loopback"):
        await bot.set_webhook("https://example.com/hook")


async def test_webhook_delivers_chats_concurrently_and_each_chat_in_order(
    emu: TelegramEmulator, bot: Bot
) -> None:
    """Like Telegram: up to max_connections deliveries at once, a chat's updates one at a time."""
    emu.add_user(BORIS)
    open_now = 0
    most_open = 0
    order: list[tuple[int, str]] = []

    async def slow(request: web.Request) -> web.Response:
        nonlocal open_now, most_open
        body = await request.json()
        open_now += 1
        most_open = max(most_open, open_now)
        await asyncio.sleep(0.05)
        open_now -= 1
        order.append((body["message"]["chat"]["id"], body["message"]["text"]))
        return web.json_response({})

    async with webhook_receiver(slow) as (url, _):
        await bot.set_webhook(url, max_connections=2)
        for n in range(4):
            emu.send_text(ALICE, f"a{n}")
            emu.send_text(BORIS, f"b{n}")
        for _ in range(8):  # each answered after its entry in `order`
            assert (await emu.wait_for_delivery()).ok

    assert most_open == 2  # the two chats at once, never more than max_connections
    assert [text for chat, text in order if chat == ALICE.id] == ["a0", "a1", "a2", "a3"]
    assert [text for chat, text in order if chat == BORIS.id] == ["b0", "b1", "b2", "b3"]


async def test_webhook_reply_method_is_executed(emu: TelegramEmulator) -> None:
    async def reply(request: web.Request) -> web.Response:
        update = await request.json()
        chat_id = update["message"]["chat"]["id"]
        return web.json_response({"method": "sendMessage", "chat_id": chat_id, "text": "pong"})

    async with webhook_receiver(reply) as (url, _), make_bot(emu) as client:
        await client.set_webhook(url, drop_pending_updates=True)
        emu.send_text(ALICE, "ping")
        answer = await emu.wait_for_message(ALICE)
    assert answer.text == "pong"
    assert emu.calls_to("sendMessage")[0].via == "webhook-reply"


async def test_dispatcher_webhook_round_trip(emu: TelegramEmulator, bot: Bot) -> None:
    """aiogram's own webhook handler, answering in the webhook response (multipart)."""
    router = Router()

    @router.message(Command("ping"))
    async def ping(message: Message) -> SendMessage:
        return message.answer("<b>pong</b>")

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    app = web.Application()
    SimpleRequestHandler(
        dispatcher, bot, secret_token="hook-secret", handle_in_background=False
    ).register(app, path="/webhook")
    async with serving(app) as base:
        await bot.set_webhook(
            base + "/webhook",
            secret_token="hook-secret",
            allowed_updates=dispatcher.resolve_used_update_types(),
        )
        emu.send_text(ALICE, "/ping")
        answer = await emu.wait_for_message(ALICE)
        assert (answer.text, answer.raw_text) == ("pong", "<b>pong</b>")
        assert (await emu.wait_for_delivery()).status == 200

        await bot.set_webhook(base + "/webhook", secret_token="wrong-secret")
        emu.send_text(ALICE, "/ping")
        assert (await emu.wait_for_delivery()).status == 401


# --------------------------------------------------------------------------- files


async def test_send_document_and_photo(emu: TelegramEmulator, bot: Bot) -> None:
    emu.add_user(ALICE)
    sent = await bot.send_document(
        ALICE.id, BufferedInputFile(b"%PDF-1.4 report", filename="report.pdf"), caption="<i>Q3</i>"
    )

    assert sent.document is not None and sent.document.file_name == "report.pdf"
    assert sent.caption == "Q3"
    record = await emu.wait_for_message(ALICE)
    assert record.file is not None
    assert (record.file.filename, record.file.content) == ("report.pdf", b"%PDF-1.4 report")
    assert record.file.mime_type == "application/pdf"
    assert (record.caption, record.raw_caption, record.content) == ("Q3", "<i>Q3</i>", "Q3")

    again = await bot.send_document(ALICE.id, sent.document.file_id)
    assert again.document is not None and again.document.file_id == sent.document.file_id
    with pytest.raises(TelegramBadRequest, match="wrong file identifier"):
        await bot.send_document(ALICE.id, "no-such-file-id")
    with pytest.raises(TelegramBadRequest, match="failed to get HTTP URL content"):
        await bot.send_document(ALICE.id, "https://example.com/x.pdf")

    photo = await bot.send_photo(ALICE.id, BufferedInputFile(tiny_png(3, 2), filename="p.png"))
    assert photo.photo is not None and (photo.photo[-1].width, photo.photo[-1].height) == (3, 2)
    with pytest.raises(TelegramBadRequest, match="IMAGE_PROCESS_FAILED"):
        await bot.send_photo(ALICE.id, BufferedInputFile(b"not an image", filename="x.jpg"))


async def test_user_document_get_file_and_download(emu: TelegramEmulator, bot: Bot) -> None:
    emu.send_document(ALICE, "screenshot.txt", b"error 500 at checkout", caption="see attached")

    updates = await bot.get_updates()
    message = updates[0].message
    assert message is not None and message.document is not None
    assert message.caption == "see attached"
    assert message.document.file_name == "screenshot.txt"
    assert message.document.mime_type == "text/plain"
    file = await bot.get_file(message.document.file_id)
    assert file.file_size == len(b"error 500 at checkout") and file.file_path

    downloaded = await bot.download_file(file.file_path)
    assert isinstance(downloaded, io.BytesIO)
    assert downloaded.getvalue() == b"error 500 at checkout"
    target = io.BytesIO()
    await bot.download(message.document, destination=target)
    assert target.getvalue() == b"error 500 at checkout"
    with pytest.raises(TelegramBadRequest, match="invalid file_id"):
        await bot.get_file("nope")

    emu.send_photo(ALICE, tiny_png(4, 5), caption="photo")
    photo_update = (await bot.get_updates(offset=updates[0].update_id + 1))[0]
    assert photo_update.message is not None and photo_update.message.photo is not None
    assert (photo_update.message.photo[0].width, photo_update.message.photo[0].height) == (4, 5)


async def test_an_album_is_one_update_per_item_with_one_media_group_id(
    emu: TelegramEmulator, bot: Bot
) -> None:
    emu.send_album(
        ALICE,
        [
            AlbumItem("photo", tiny_png(40, 30), caption="the error"),
            AlbumItem("document", b"log", filename="checkout.log"),
        ],
    )
    emu.send_other(ALICE, "sticker")

    updates = await bot.get_updates()
    photo, document, sticker = (u.message for u in updates)
    assert photo is not None and document is not None and sticker is not None
    assert photo.media_group_id and photo.media_group_id == document.media_group_id
    assert photo.caption == "the error" and document.caption is None
    # A thumbnail first, then the photo itself, as Telegram sends them.
    assert photo.photo is not None and [(p.width, p.height) for p in photo.photo] == [
        (90, 68),
        (40, 30),
    ]
    full = await bot.download_file((await bot.get_file(photo.photo[-1].file_id)).file_path or "")
    assert isinstance(full, io.BytesIO) and full.getvalue() == tiny_png(40, 30)
    assert document.document is not None and document.document.file_name == "checkout.log"
    assert sticker.sticker is not None and sticker.media_group_id is None


# --------------------------------------------------------------------------- waiting helpers


async def test_wait_for_message_walks_forward_and_explains_timeouts(
    emu: TelegramEmulator, bot: Bot
) -> None:
    emu.add_user(ALICE)
    waiter = asyncio.create_task(emu.wait_for_message(ALICE, lambda m: m.text == "third"))
    for text in ("first", "second", "third", "fourth"):
        await bot.send_message(ALICE.id, text)

    assert (await waiter).text == "third"
    assert (await emu.wait_for_message(ALICE)).text == "fourth"
    mark = emu.mark()
    with pytest.raises(TimeoutError, match="no new bot message in chat 1001"):
        await emu.wait_for_message(ALICE, timeout=0.2)
    assert (await emu.wait_for_message(ALICE, since=0)).text == "first"
    await bot.send_message(ALICE.id, "fifth")
    assert (await emu.wait_for_message(ALICE, since=mark)).text == "fifth"

    call = await emu.wait_for_call("sendMessage", lambda c: c.params["text"] == "second")
    assert call.ok
    assert (await emu.wait_for_call("sendmessage")).params["text"] == "third"


# --------------------------------------------------------------------------- the full loop


async def test_dispatcher_polling_loop(emu: TelegramEmulator, bot: Bot) -> None:
    router = Router()

    @router.message(CommandStart())
    async def start(message: Message) -> None:
        await message.answer("Welcome!", reply_markup=keyboard(("Help", "help")))

    @router.message(F.text)
    async def echo(message: Message) -> None:
        await message.answer(f"echo: {html.escape(message.text or '')}")

    @router.callback_query(F.data == "help")
    async def help_pressed(query: CallbackQuery) -> None:
        await query.answer("Opening help")
        if isinstance(query.message, Message):
            await query.message.edit_text("Help: send any text.")

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    polling = asyncio.create_task(
        dispatcher.start_polling(bot, handle_signals=False, close_bot_session=False)
    )
    try:
        await emu.wait_until(lambda: emu.polling)
        assert sorted(emu.allowed_updates or []) == ["callback_query", "message"]

        emu.send_text(BORIS, "/start")
        welcome = await emu.wait_for_message(BORIS)
        assert welcome.text == "Welcome!"

        query = emu.press_button(BORIS, welcome, "help")
        answer = await emu.wait_for_callback_answer(query)
        assert answer.text == "Opening help"
        await emu.wait_until(lambda: welcome.text == "Help: send any text.")
        assert welcome.buttons == []

        emu.send_text(BORIS, "<3 & co")
        echo_reply = await emu.wait_for_message(BORIS)
        assert echo_reply.text == "echo: <3 & co"
        assert echo_reply.raw_text == "echo: &lt;3 &amp; co"
    finally:
        await dispatcher.stop_polling()
        await asyncio.wait_for(polling, 10)
    assert not emu.failed_calls


async def test_on_call_sees_each_call_arrive_and_can_hold_it(
    emu: TelegramEmulator, bot: Bot
) -> None:
    arrived: list[str] = []

    async def on_call(method: str) -> None:
        arrived.append(method)
        if method == "sendMessage":
            await asyncio.sleep(0.3)  # a Telegram slow for this call alone

    user = SimUser(id=5001, first_name="Анна")
    emu.add_user(user)
    emu.on_call = on_call
    loop = asyncio.get_running_loop()
    started = loop.time()
    await bot.send_message(chat_id=user.id, text="Здравствуйте")
    assert loop.time() - started >= 0.3
    await bot.get_me()
    assert arrived == ["sendMessage", "getMe"]
