"""Which callback queries the current update has answered already.

Telegram takes one answer per callback query; a second is refused ("query is too old … or query
ID is invalid"). The error handler answers a failed button press with an apology, unless the
handler had answered it before it failed: then the apology goes to the chat instead. The
session's request middleware (wired in bot/factories.py) records each answer in the update's
context.
"""

from __future__ import annotations

from contextvars import ContextVar

from aiogram import Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.methods import AnswerCallbackQuery, TelegramMethod
from aiogram.methods.base import Response, TelegramType

_answered: ContextVar[frozenset[str]] = ContextVar("answered_callback_queries", default=frozenset())


def answered(query_id: str) -> bool:
    return query_id in _answered.get()


class RememberCallbackAnswers(BaseRequestMiddleware):
    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        response = await make_request(bot, method)
        if isinstance(method, AnswerCallbackQuery):
            # Set in the update's own task: its error handler, later in that task, sees it.
            _answered.set(_answered.get() | {method.callback_query_id})
        return response
