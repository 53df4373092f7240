"""A lock per key (a chat), kept only while someone holds or waits for it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class KeyedLocks:
    def __init__(self) -> None:
        self._locks: dict[str, _CountedLock] = {}

    @asynccontextmanager
    async def hold(self, key: str) -> AsyncIterator[None]:
        """Waits (FIFO) for the key's lock; the entry goes when its last user leaves, so a
        million chats seen once leave no million locks behind."""
        lock = self._locks.get(key)
        if lock is None:
            lock = self._locks[key] = _CountedLock()
        lock.users += 1
        try:
            async with lock.lock:
                yield
        finally:
            lock.users -= 1
            if not lock.users:
                del self._locks[key]

    def __len__(self) -> int:
        return len(self._locks)


class _CountedLock:
    __slots__ = ("lock", "users")

    def __init__(self) -> None:
        self.lock = asyncio.Lock()
        self.users = 0
