"""Synchronous filters (F.…, plain functions) run in the event loop, not in aiogram's worker
thread (bot/inline_filters.py)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

from aiogram import Bot, Dispatcher, F, Router
from aiogram.types import Chat, Message, Update, User

from bot.inline_filters import _filters, run_filters_inline
from bot.sandbox.runner import release_routers
from handlers import get_routers


def message_update(text: str) -> Update:
    return Update(
        update_id=1,
        message=Message(
            message_id=1,
            date=datetime.now(UTC),
            chat=Chat(id=5, type="private"),
            from_user=User(id=5, is_bot=False, first_name="Анна"),
            text=text,
        ),
    )


async def test_sync_filters_run_in_the_event_loops_thread() -> None:
    threads: list[int] = []
    router = Router()

    def private_only(message: Message) -> bool:
        threads.append(threading.get_ident())
        return message.chat.type == "private"

    router.message.filter(private_only)

    @router.message(F.text == "ping", private_only)
    async def ping(message: Message) -> str:
        return "pong"

    dispatcher = Dispatcher()
    dispatcher.include_router(router)
    assert run_filters_inline(dispatcher) == 3
    assert run_filters_inline(dispatcher) == 0  # once is enough: a second call changes nothing

    bot = Bot("42:unit-test-token")  # never called: the handler answers nothing
    result = await dispatcher.feed_update(bot, message_update("ping"))

    assert result == "pong"
    assert threads == [threading.get_ident()] * 2


def test_every_filter_of_the_bots_routers_is_awaitable_once_wired() -> None:
    release_routers()  # an in-process bot of an earlier test on this worker may still hold them
    dispatcher = Dispatcher()
    dispatcher.include_routers(*get_routers())
    try:
        run_filters_inline(dispatcher)
        filters = list(_filters(dispatcher))
        assert len(filters) > 20
        assert all(filter_object.awaitable for filter_object in filters)
    finally:
        release_routers()  # the routers are the modules' own: free them for the next dispatcher
