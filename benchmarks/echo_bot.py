"""A bare aiogram 3 echo bot in webhook mode: the load benchmark's yardstick (bench_load.py).

It makes the same kinds of Bot API calls a wizard step makes and nothing else: a message is
answered with sendMessage (carrying one inline button), a button press with answerCallbackQuery
and editMessageText of the pressed message. No database, no FSM storage, no middlewares.

    BOT_TOKEN=… TELEGRAM_API_URL=http://127.0.0.1:… WEB_PORT=… WEBHOOK_SECRET=… \\
        .venv/bin/python benchmarks/echo_bot.py
"""

from __future__ import annotations

import asyncio
import itertools
import os
import signal

from aiogram import Bot, Dispatcher
from aiogram.client.session.aiohttp import AiohttpSession
from aiogram.client.telegram import TelegramAPIServer
from aiogram.types import CallbackQuery, InlineKeyboardButton, InlineKeyboardMarkup, Message
from aiogram.webhook.aiohttp_server import SimpleRequestHandler, setup_application
from aiohttp import web

PATH = "/telegram/webhook"
KEYBOARD = InlineKeyboardMarkup(
    inline_keyboard=[[InlineKeyboardButton(text="Next", callback_data="next")]]
)
_edits = itertools.count(1)  # each edit's text differs: Telegram refuses "not modified"


def dispatcher() -> Dispatcher:
    dp = Dispatcher()

    # No filters: aiogram runs a magic filter (F.text) in a thread, which is not "bare".
    @dp.message()
    async def echo(message: Message) -> None:
        await message.answer((message.text or "")[:4000], reply_markup=KEYBOARD)

    @dp.callback_query()
    async def pressed(query: CallbackQuery) -> None:
        await query.answer()
        if isinstance(query.message, Message):
            await query.message.edit_text(f"Step {next(_edits)}", reply_markup=KEYBOARD)

    return dp


async def main() -> None:
    port = int(os.environ["WEB_PORT"])
    secret = os.environ["WEBHOOK_SECRET"]
    bot = Bot(
        os.environ["BOT_TOKEN"],
        session=AiohttpSession(api=TelegramAPIServer.from_base(os.environ["TELEGRAM_API_URL"])),
    )
    dp = dispatcher()
    app = web.Application()
    app.router.add_get("/healthz", lambda _: web.Response(text="ok"))
    SimpleRequestHandler(dp, bot, secret_token=secret).register(app, path=PATH)
    setup_application(app, dp, bot=bot)
    runner = web.AppRunner(app, handle_signals=False, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    await bot.set_webhook(
        f"http://127.0.0.1:{port}{PATH}",
        secret_token=secret,
        allowed_updates=dp.resolve_used_update_types(),
    )
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    print(f"echo bot on 127.0.0.1:{port}", flush=True)
    await stop.wait()
    await runner.cleanup()
    await bot.session.close()


if __name__ == "__main__":
    asyncio.run(main())
