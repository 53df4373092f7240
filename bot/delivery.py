"""The delivery worker: sends the notices services wrote (services/notices.py) to Telegram.

It claims due notices with leases, like the filing worker: the oldest pending notice of each chat
only, so a chat's notices arrive in the order they were written ("accepted" before the number),
and many chats are served at once. A notice is rendered in its recipient's language
(handlers/notices.py) and sent part by part; each part sent is recorded at once, so a crash or a
failure at part N resumes at part N and never repeats the parts already delivered (only the part
in flight at a crash can arrive twice: Telegram has no idempotency key).

What Telegram answers decides what happens next:
- 429: the notice waits `retry_after` (that chat only; the others go on);
- 5xx, network: retried with capped exponential backoff and jitter, never given up;
- 403 (blocked, deactivated), "chat not found": the chat is marked unreachable and its notices
  wait, undelivered, until the person writes again (bot/middlewares.py);
- any other refusal (a 400 for a message frontdesk built wrong): retried a few times, then the
  notice is marked failed and logged as an error for an operator.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramNotFound,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import BufferedInputFile
from aiogram.utils.i18n import I18n
from sqlalchemy import Select, and_, bindparam, exists, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import aliased

from bot.telegram_limits import caller_reschedules
from handlers.notices import FileInfo, Part, TextPart, render
from services import my_tickets, notices
from services.db.base import UTCDateTime, utcnow
from services.db.dialect import rowcount
from services.db.models import Notice, NoticeFile, NoticeState, TelegramChat
from services.outbox import RetryPolicy
from services.rounds import Rounds

logger = logging.getLogger(__name__)

# A refusal that is not about the chat nor the load: a bug of ours, or a message Telegram will
# never take. Tried this many times, then the notice is marked failed.
MAX_REFUSALS = 5
_UNREACHABLE_DESCRIPTIONS = ("chat not found", "user not found", "peer_id_invalid")


@dataclass(frozen=True, slots=True)
class _Claimed:
    id: int
    chat_id: int
    ticket_id: int | None
    locale: str
    payload: dict[str, object]
    parts_sent: int
    attempts: int
    lease: datetime
    files: tuple[FileInfo, ...]
    created_at: datetime


class NoticeDelivery:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        bot: Bot,
        i18n: I18n,
        *,
        retry: RetryPolicy | None = None,
        lease: timedelta = timedelta(minutes=2),
        batch: int = 100,
        concurrency: int = 32,
        idle_interval: float = 1.0,
        clock: Callable[[], datetime] = utcnow,
        on_sent: Callable[[datetime, datetime], None] | None = None,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._bot = bot
        # Told (written at, sent at) for each notice sent in full: the notification lag metric.
        self._on_sent = on_sent or (lambda _created, _sent: None)
        self._i18n = i18n
        self._retry = retry or RetryPolicy(base=timedelta(seconds=1), cap=timedelta(minutes=5))
        self._lease = lease
        self._batch = batch
        self._due = self._due_query()
        self._slots = asyncio.Semaphore(concurrency)
        self._clock = clock
        self._rounds = Rounds("delivery", self.run_once, idle_interval=idle_interval)

    def wake(self) -> None:
        """A notice was just written: send it now rather than at the next poll."""
        self._rounds.wake()

    async def run(self) -> None:
        """Until cancelled. A failure of one round is logged and the next round goes on."""
        await self._rounds.run()

    async def run_once(self) -> int:
        """Claims the due notices (one per chat) and sends them; the number claimed."""
        claimed = await self._claim()
        if claimed:
            await asyncio.gather(*(self._guarded(notice) for notice in claimed))
        return len(claimed)

    async def _guarded(self, notice: _Claimed) -> None:
        async with self._slots:
            try:
                await self._deliver(notice)
            except asyncio.CancelledError:
                raise
            except Exception as error:  # a bug with one notice must not stop the others
                logger.exception("delivering notice %s crashed", notice.id)
                await self._retry_later(notice, notice.lease, error)

    def _due_query(self) -> Select[int]:
        """The notices due now (`:now`), built once: the claim runs at every wake and poll."""
        now = bindparam("now", type_=UTCDateTime())
        earlier = aliased(Notice)
        return (
            select(Notice.id)
            .where(
                Notice.state == NoticeState.PENDING,
                Notice.next_attempt_at <= now,
                or_(Notice.claimed_until.is_(None), Notice.claimed_until < now),
                # Head of the line: a chat's notices go out in the order they were written.
                ~exists().where(
                    earlier.chat_id == Notice.chat_id,
                    earlier.state == NoticeState.PENDING,
                    earlier.id < Notice.id,
                ),
                ~exists().where(
                    and_(
                        TelegramChat.chat_id == Notice.chat_id,
                        TelegramChat.unreachable_since.is_not(None),
                    )
                ),
            )
            .order_by(Notice.next_attempt_at, Notice.id)
            .limit(self._batch)
            .with_for_update(skip_locked=True, of=Notice)  # PostgreSQL; SQLite serialises
        )

    async def _claim(self) -> list[_Claimed]:
        now = self._clock()
        async with self._sessionmaker.begin() as session:
            ids = list(await session.scalars(self._due, {"now": now}))
            if not ids:
                return []
            lease = now + self._lease
            # Conditional, so two workers on SQLite cannot both take the same row.
            taken = await session.execute(
                update(Notice)
                .where(
                    Notice.id.in_(ids),
                    or_(Notice.claimed_until.is_(None), Notice.claimed_until < now),
                )
                .values(claimed_until=lease)
                .returning(
                    Notice.id,
                    Notice.chat_id,
                    Notice.ticket_id,
                    Notice.locale,
                    Notice.payload,
                    Notice.parts_sent,
                    Notice.attempts,
                    Notice.created_at,
                )
            )
            rows = list(taken)
            files: dict[int, list[FileInfo]] = {}
            file_rows = await session.execute(
                # The sizes only: the bytes are read when that part is sent.
                select(
                    NoticeFile.notice_id,
                    NoticeFile.position,
                    NoticeFile.filename,
                    NoticeFile.content_type,
                    func.length(NoticeFile.content),
                )
                .where(NoticeFile.notice_id.in_([row.id for row in rows]))
                .order_by(NoticeFile.notice_id, NoticeFile.position)
            )
            for notice_id, position, filename, content_type, size in file_rows:
                files.setdefault(notice_id, []).append(
                    FileInfo(position, filename, content_type, size=int(size or 0))
                )
        claimed = [
            _Claimed(
                id=row.id,
                chat_id=row.chat_id,
                ticket_id=row.ticket_id,
                locale=row.locale,
                payload=dict(row.payload),
                parts_sent=row.parts_sent,
                attempts=row.attempts,
                lease=lease,
                files=tuple(files.get(row.id, ())),
                created_at=row.created_at,
            )
            for row in rows
        ]
        return sorted(claimed, key=lambda notice: notice.id)

    async def _deliver(self, notice: _Claimed) -> None:
        locale = self._locale(notice.locale)
        with self._i18n.context(), self._i18n.use_locale(locale):
            parts = render(
                notices.parse_body(notice.payload),
                notice.files,
                now=self._clock(),
                ticket_id=notice.ticket_id,
            )
        lease = notice.lease
        for index in range(notice.parts_sent, len(parts)):
            try:
                message_id = await self._send(notice, parts[index])
            except TelegramRetryAfter as error:
                await self._release(
                    notice,
                    lease,
                    at=self._clock() + timedelta(seconds=max(1, error.retry_after)),
                    error=error,
                    counted=False,
                )
                return
            except TelegramMigrateToChat as error:
                await self._unreachable(notice, lease, f"migrated to {error.migrate_to_chat_id}")
                return
            except (TelegramForbiddenError, TelegramNotFound) as error:
                await self._unreachable(notice, lease, error.message)
                return
            except TelegramBadRequest as error:
                if any(text in error.message.lower() for text in _UNREACHABLE_DESCRIPTIONS):
                    await self._unreachable(notice, lease, error.message)
                    return
                await self._refused(notice, lease, error)
                return
            except (TelegramNetworkError, TelegramServerError) as error:
                await self._retry_later(notice, lease, error)
                return
            except TelegramAPIError as error:
                await self._refused(notice, lease, error)
                return
            renewed = await self._record_part(
                notice, lease, index + 1, done=index + 1 == len(parts), message_id=message_id
            )
            if renewed is None:
                logger.warning(
                    "lease on notice %s lapsed while sending; left to its owner", notice.id
                )
                return
            lease = renewed
        if notice.parts_sent >= len(parts):  # nothing left to send (resumed after the last part)
            await self._record_part(notice, lease, notice.parts_sent, done=True)

    async def _send(self, notice: _Claimed, part: Part) -> int:
        """Sends the part; the id of the message Telegram made of it."""
        if isinstance(part, TextPart):
            with caller_reschedules():  # a 429 comes back at once: the notice is rescheduled
                sent = await self._bot.send_message(
                    notice.chat_id, part.html, reply_markup=part.keyboard
                )
            return sent.message_id
        content = await self._content(notice.id, part.position)
        document = BufferedInputFile(content, filename=part.filename)
        with caller_reschedules():
            sent = await self._bot.send_document(notice.chat_id, document)
        return sent.message_id

    async def _content(self, notice_id: int, position: int) -> bytes:
        async with self._sessionmaker() as session:
            content = await session.scalar(
                select(NoticeFile.content).where(
                    NoticeFile.notice_id == notice_id, NoticeFile.position == position
                )
            )
        return content or b""

    def _locale(self, locale: str) -> str:
        return locale if locale in self._i18n.available_locales else self._i18n.default_locale

    # --- recording what happened, each only while the lease is still ours ----------------------

    async def _record_part(
        self,
        notice: _Claimed,
        lease: datetime,
        parts_sent: int,
        *,
        done: bool,
        message_id: int | None = None,
    ) -> datetime | None:
        now = self._clock()
        values: dict[str, object] = {"parts_sent": parts_sent}
        if done:
            values |= {"state": NoticeState.SENT, "sent_at": now, "claimed_until": None}
        else:
            values["claimed_until"] = now + self._lease
        async with self._sessionmaker.begin() as session:
            recorded = await session.execute(
                update(Notice)
                .where(Notice.id == notice.id, Notice.claimed_until == lease)
                .values(**values)
            )
            if message_id is not None and notice.ticket_id is not None:
                # A Telegram reply to this message goes to the ticket (handlers/my_tickets).
                await my_tickets.remember_message(
                    session, notice.chat_id, message_id, notice.ticket_id
                )
        if rowcount(recorded) != 1:
            return None
        if done:
            self._on_sent(notice.created_at, now)
        return now + self._lease if not done else now

    async def _release(
        self,
        notice: _Claimed,
        lease: datetime,
        *,
        at: datetime,
        error: BaseException,
        counted: bool = True,
        state: NoticeState = NoticeState.PENDING,
    ) -> None:
        values: dict[str, object] = {
            "claimed_until": None,
            "next_attempt_at": at,
            "last_error": f"{type(error).__name__}: {error}"[:2000],
            "state": state,
        }
        if counted:
            values["attempts"] = Notice.attempts + 1
        async with self._sessionmaker.begin() as session:
            await session.execute(
                update(Notice)
                .where(Notice.id == notice.id, Notice.claimed_until == lease)
                .values(**values)
            )

    async def _retry_later(self, notice: _Claimed, lease: datetime, error: BaseException) -> None:
        delay = self._retry.delay(notice.attempts + 1)
        logger.warning(
            "notice %s to chat %s not delivered (attempt %d), retrying in %.1f s: %s",
            notice.id,
            notice.chat_id,
            notice.attempts + 1,
            delay.total_seconds(),
            error,
        )
        await self._release(notice, lease, at=self._clock() + delay, error=error)

    async def _refused(self, notice: _Claimed, lease: datetime, error: TelegramAPIError) -> None:
        if notice.attempts + 1 >= MAX_REFUSALS:
            logger.error(
                "notice %s to chat %s refused by Telegram %d times, given up: %s",
                notice.id,
                notice.chat_id,
                notice.attempts + 1,
                error,
            )
            await self._release(
                notice, lease, at=self._clock(), error=error, state=NoticeState.FAILED
            )
            return
        await self._retry_later(notice, lease, error)

    async def _unreachable(self, notice: _Claimed, lease: datetime, reason: str) -> None:
        logger.info("chat %s is unreachable (%s): its notices wait", notice.chat_id, reason)
        async with self._sessionmaker() as session:
            await notices.mark_unreachable(
                session, notice.chat_id, reason, ticket_id=notice.ticket_id
            )
        await self._release(
            notice, lease, at=self._clock(), error=RuntimeError(reason), counted=False
        )
