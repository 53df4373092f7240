"""Filters run in the event loop.

aiogram runs a filter that is not a coroutine (every `F.…` magic filter, and plain functions)
through `asyncio.to_thread`: a hop to a worker thread and back for each check of each handler an
update is tried against, which cost a sixth of the bot's CPU under load. Ours are pure checks of
the update, far cheaper than the hop, so the dispatcher's tree is rewired to call them inline.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

from aiogram import Router
from aiogram.dispatcher.event.handler import FilterObject


def run_filters_inline(router: Router) -> int:
    """Makes every synchronous filter of `router` and its sub-routers a coroutine calling it;
    returns how many it changed. Call once, after the routers are included."""
    changed = 0
    for filter_object in _filters(router):
        if not filter_object.awaitable:
            filter_object.callback = _inline(filter_object.callback)
            filter_object.awaitable = True
            changed += 1
    return changed


def _filters(router: Router) -> Iterator[FilterObject]:
    for observer in router.observers.values():
        # A router's own filters (router.message.filter(...)) live in the observer's
        # `_handler`: aiogram has no public way to reach them.
        handlers = [observer._handler, *observer.handlers]
        for handler in handlers:
            yield from handler.filters or []
    for sub_router in router.sub_routers:
        yield from _filters(sub_router)


def _inline(check: Callable[..., Any]) -> Callable[..., Any]:
    # The arguments aiogram passes were chosen from `check`'s own signature (FilterObject.params,
    # computed before this rewiring), so they go through unchanged.
    async def inline(*args: Any, **kwargs: Any) -> Any:
        return check(*args, **kwargs)

    return inline
