"""Short transactions: an update's database session never holds a connection across a call to
Telegram.

Each update gets one AsyncSession (UpdateSessionMiddleware), published in a context variable so
that the SQL FSM storage shares it and so that ShortTransactionsMiddleware — a request middleware
on the Bot's HTTP session, seen by every Bot API call — can end the session's transaction before
the call goes out. A waiting merchant's update then costs no connection while Telegram answers,
and a crowd shares the pool instead of draining it.

Services own their transactions and commit their writes, so at a Telegram call the session holds
reads only, and ending the transaction is a plain COMMIT of nothing (not a rollback, which would
expire the loaded objects). A session that still holds writes there — objects added or changed
and not flushed, or flushed and not committed — is a bug in the code that wrote them: it is
logged as an error and the transaction is left as it is (still holding its connection), never
committed or rolled back behind that code's back.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING

from aiogram.client.session.middlewares.base import BaseRequestMiddleware, NextRequestMiddlewareType
from aiogram.methods.base import TelegramType
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import ORMExecuteState, Session, SessionTransaction, UOWTransaction

if TYPE_CHECKING:
    from aiogram import Bot
    from aiogram.methods import Response, TelegramMethod

logger = logging.getLogger(__name__)

# session.info key: the open transaction has written (flushed or executed an INSERT, UPDATE or
# DELETE) since it began.
_WROTE = "frontdesk.wrote"
# session.info key: the error about this transaction was logged already.
_REPORTED = "frontdesk.reported"
# session.info key: serialises ending the transaction.
_LOCK = "frontdesk.lock"


class _UpdateScope:
    """The session of the update being handled, while it is being handled. A task started from a
    handler copies the context and may outlive the update: `open` tells it the session is gone."""

    __slots__ = ("open", "session")

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.open = True


_current: ContextVar[_UpdateScope | None] = ContextVar("frontdesk_update_session", default=None)


def update_session() -> AsyncSession | None:
    """The session of the update this code runs for, or None (a worker, start-up, a test)."""
    scope = _current.get()
    return scope.session if scope is not None and scope.open else None


@asynccontextmanager
async def session_for_update(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> AsyncIterator[AsyncSession]:
    """Opens the update's session, tracks its writes and publishes it for the FSM storage and
    the Bot API calls made while the update is handled."""
    if sessionmaker.kw.get("expire_on_commit", True):
        # Ending a read transaction must leave what it loaded usable (no lazy loads in async).
        raise ValueError("the update's sessions need expire_on_commit=False")
    async with sessionmaker() as session:
        track_writes(session)
        scope = _UpdateScope(session)
        token = _current.set(scope)
        try:
            yield session
            if session.in_transaction() and (writes := pending_writes(session)) is not None:
                logger.error("an update ended with %s: they are rolled back", writes)
        finally:
            scope.open = False
            _current.reset(token)


def track_writes(session: AsyncSession) -> None:
    """Records in session.info whether the open transaction has written. ORM flushes show in
    `after_flush`; INSERT/UPDATE/DELETE statements given to session.execute (upserts, bulk
    updates) in `do_orm_execute`. The mark is cleared when the outermost transaction ends."""
    sync_session = session.sync_session

    def after_flush(flushed: Session, _context: UOWTransaction) -> None:
        # Still the pre-flush lists here; a flush of objects without net changes wrote nothing.
        if flushed.new or flushed.deleted or any(flushed.is_modified(o) for o in flushed.dirty):
            flushed.info[_WROTE] = True

    def do_orm_execute(state: ORMExecuteState) -> None:
        if state.is_insert or state.is_update or state.is_delete:
            state.session.info[_WROTE] = True

    def after_transaction_end(ended: Session, transaction: SessionTransaction) -> None:
        if transaction.parent is None:
            ended.info.pop(_WROTE, None)
            ended.info.pop(_REPORTED, None)

    event.listen(sync_session, "after_flush", after_flush)
    event.listen(sync_session, "do_orm_execute", do_orm_execute)
    event.listen(sync_session, "after_transaction_end", after_transaction_end)


def pending_writes(session: AsyncSession) -> str | None:
    """What the session's open transaction has written and not committed, or None."""
    sync_session = session.sync_session
    unflushed = (
        len(sync_session.new)
        + len(sync_session.deleted)
        + sum(1 for o in sync_session.dirty if sync_session.is_modified(o))
    )
    if unflushed:
        return f"{unflushed} unflushed change(s)"
    if sync_session.info.get(_WROTE):
        return "flushed, uncommitted writes"
    return None


async def end_read_transaction(session: AsyncSession, *, before: str) -> bool:
    """Ends the session's transaction if it only read, so its connection goes back to the pool;
    True if the session holds no transaction afterwards. `before` names what is about to happen
    (for the log)."""
    # Two Telegram calls of one update made at once (asyncio.gather) must not both commit.
    async with session.info.setdefault(_LOCK, asyncio.Lock()):
        transaction = session.get_transaction()
        if transaction is None:
            return True
        if not transaction.is_active:
            return False  # a failed flush awaits its owner's rollback; not ours to end
        writes = pending_writes(session)
        if writes is not None:
            if not session.info.get(_REPORTED):
                session.info[_REPORTED] = True
                logger.error(
                    "a transaction with %s is still open at %s: whoever wrote must commit "
                    "first; its connection stays held meanwhile",
                    writes,
                    before,
                )
            return False
        # Reads only: COMMIT ends them; with expire_on_commit=False (checked in
        # session_for_update) the loaded objects stay usable.
        await session.commit()
        return True


class ShortTransactionsMiddleware(BaseRequestMiddleware):
    """Before every Bot API call made while an update is handled: the update's session ends its
    read transaction, so no connection waits for Telegram."""

    async def __call__(
        self,
        make_request: NextRequestMiddlewareType[TelegramType],
        bot: Bot,
        method: TelegramMethod[TelegramType],
    ) -> Response[TelegramType]:
        session = update_session()
        if session is not None:
            await end_read_transaction(session, before=f"Telegram's {method.__api_method__}")
        return await make_request(bot, method)
