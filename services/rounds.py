"""The loop of a background worker (filing, notice delivery): rounds back to back while there is
work, a nap while there is none, cut short when new work is announced."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Protocol

logger = logging.getLogger(__name__)


class Waker(Protocol):
    """A background worker that can be told there is work now (a `Rounds`, or what announces the
    work to another process's)."""

    def wake(self) -> None: ...


class Rounds:
    def __init__(
        self, name: str, run_once: Callable[[], Awaitable[int]], *, idle_interval: float
    ) -> None:
        self._name = name
        self._run_once = run_once
        self._idle_interval = idle_interval
        self._wake = asyncio.Event()

    def wake(self) -> None:
        """There is work now: start the next round at once rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Until cancelled. A failed round is logged and the next one goes on."""
        while True:
            # Cleared before the round, so work announced during it is not slept through.
            self._wake.clear()
            try:
                processed = await self._run_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("%s round failed; retrying", self._name)
                processed = 0
            if processed == 0:
                try:
                    await asyncio.wait_for(self._wake.wait(), self._idle_interval)
                except TimeoutError:
                    pass
