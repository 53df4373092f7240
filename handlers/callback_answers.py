"""A button press's answer (answerCallbackQuery): once, and in the webhook's response.

Telegram takes one answer per callback query; a second is refused ("query is too old … or query
ID is invalid"). The error handler answers a failed press with an apology, unless the handler
had answered it before it failed: then the apology goes to the chat instead (`answered`).

In webhook mode Telegram carries out one method returned in the webhook's response, which saves
a Bot API call: a press's answer is held (`CallbackAnswers`, the session's request middleware)
and returned by `AnswerInResponse`, the update's outer middleware, as the update's result. The
webhook's handler (bot/app.py) marks its updates with `answers_in_response`; in polling mode
answers go out as they are made.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import Any, cast

from aiogram import BaseMiddleware, Bot
from aiogram.client.session.middlewares.base import (
    BaseRequestMiddleware,
    NextRequestMiddlewareType,
)
from aiogram.methods import AnswerCallbackQuery, TelegramMethod
from aiogram.methods.base import TelegramType
from aiogram.types import TelegramObject, Update

_answered: ContextVar[frozenset[str]] = ContextVar("answered_callback_queries", default=frozenset())
# True while a webhook request that can carry a method in its response is being handled.
answers_in_response: ContextVar[bool] = ContextVar("answers_in_response", default=False)
# The press's answer held for the response, while the update's handler runs.
_held: ContextVar[list[AnswerCallbackQuery] | None] = ContextVar("held_answer", default=None)


def answered(query_id: str) -> bool:
    return query_id in _answered.get()


class CallbackAnswers(BaseRequestMiddleware):
    """Records each answer in the update's context (its own task: the error handler, later in
    that task, sees it); holds the first one for the webhook's response when it can."""

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Any:
        answer = method if isinstance(method, AnswerCallbackQuery) else None
        if answer is None:
            return await make_request(bot, method)
        held = _held.get()
        if held is not None and not held:
            held.append(answer)
            _answered.set(_answered.get() | {answer.callback_query_id})
            return cast(TelegramType, True)  # what Telegram answers; it carries it out later
        result = await make_request(bot, method)
        _answered.set(_answered.get() | {answer.callback_query_id})
        return result


Handler = Callable[[TelegramObject, dict[str, Any]], Awaitable[Any]]


class AnswerInResponse(BaseMiddleware):
    """Returns a press's held answer as the update's result, for the webhook's response."""

    async def __call__(self, handler: Handler, event: TelegramObject, data: dict[str, Any]) -> Any:
        if (
            not answers_in_response.get()
            or not isinstance(event, Update)
            or event.callback_query is None
        ):
            return await handler(event, data)
        held: list[AnswerCallbackQuery] = []
        token = _held.set(held)
        before = _answered.get()
        try:
            result = await handler(event, data)
        except BaseException:
            # The held answer is dropped with the failure: the error handler answers the press
            # (with its apology) itself.
            _answered.set(before)
            raise
        finally:
            _held.reset(token)
        if not held:
            return result
        if isinstance(result, TelegramMethod):  # a handler's own method takes the response
            bot = data["bot"]
            await bot(held[0])
            return result
        return held[0]
