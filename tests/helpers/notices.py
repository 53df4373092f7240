"""Reading the notices services wrote (services/notices.py), as a test checks them."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from services import notices
from services.db.models import Notice, NoticeState
from services.queue.base import Attachment


@dataclass(frozen=True, slots=True)
class Written:
    id: int
    key: str
    kind: str
    chat_id: int
    locale: str
    ticket_id: int | None
    state: NoticeState
    parts_sent: int
    body: notices.Body


async def written(
    sessionmaker: async_sessionmaker[AsyncSession], kind: str | None = None
) -> list[Written]:
    """Every notice written so far (of ``kind`` if given), oldest first."""
    async with sessionmaker() as session:
        query = select(Notice).order_by(Notice.id)
        if kind is not None:
            query = query.where(Notice.kind == kind)
        rows = list(await session.scalars(query))
    return [
        Written(
            id=row.id,
            key=row.key,
            kind=row.kind,
            chat_id=row.chat_id,
            locale=row.locale,
            ticket_id=row.ticket_id,
            state=row.state,
            parts_sent=row.parts_sent,
            body=notices.parse_body(row.payload),
        )
        for row in rows
    ]


async def bodies(sessionmaker: async_sessionmaker[AsyncSession], kind: str) -> list[notices.Body]:
    return [notice.body for notice in await written(sessionmaker, kind)]


@dataclass(frozen=True, slots=True)
class TicketSeen:
    """The ticket a notice is about, as the merchant knows it."""

    ticket_id: int | None
    queue_ticket_id: str
    telegram_id: int
    locale: str
    subject: str


class Seen:
    """A notice the sync wrote: its body's fields, its ticket and its files."""

    def __init__(self, ticket: TicketSeen, notice: notices.Body, files: list[Attachment]) -> None:
        self.ticket = ticket
        self.notice = notice
        self.attachments = files

    def __getattr__(self, name: str) -> Any:
        return getattr(self.notice, name)

    def __repr__(self) -> str:
        return f"Seen({self.notice!r})"


class NoticeLog:
    """What the sync wrote for merchants, read back from the notice outbox."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def _of(self, kind: notices.NoticeKind) -> list[Seen]:
        seen = []
        async with self.sessionmaker() as session:
            rows = await session.scalars(
                select(Notice)
                .where(Notice.kind == kind.value)
                .order_by(Notice.id)
                .options(selectinload(Notice.files))
            )
            for row in rows:
                body = notices.parse_body(row.payload)
                ticket = TicketSeen(
                    ticket_id=row.ticket_id,
                    queue_ticket_id=getattr(body, "number", ""),
                    telegram_id=row.chat_id,
                    locale=row.locale,
                    subject=getattr(body, "subject", ""),
                )
                files = [Attachment(f.filename, f.content_type, f.content) for f in row.files]
                seen.append(Seen(ticket, body, files))
        return seen

    async def replies(self) -> list[Seen]:
        return await self._of(notices.NoticeKind.REPLY)

    async def statuses(self) -> list[Seen]:
        return await self._of(notices.NoticeKind.STATUS)

    async def moves(self) -> list[Seen]:
        return await self._of(notices.NoticeKind.MOVED)

    async def merges(self) -> list[Seen]:
        return await self._of(notices.NoticeKind.MERGED)

    async def deletions(self) -> list[Seen]:
        return await self._of(notices.NoticeKind.DELETED)

    async def count(self) -> int:
        return len(await written(self.sessionmaker))
