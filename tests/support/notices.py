"""Reading the notices services wrote (services/notices.py), as a test checks them."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm import selectinload

from services import notices
from services.db.models import Notice, NoticeState


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
class ReplySeen:
    """A specialist's reply as frontdesk will tell it: the notice and its files."""

    ticket_id: int | None
    chat_id: int
    locale: str
    number: str
    subject: str
    author: str
    body: str
    html: bool
    attachments: list[tuple[str, str, bytes]]


class NoticeLog:
    """What the sync wrote for merchants, read back from the notice outbox."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self.sessionmaker = sessionmaker

    async def replies(self) -> list[ReplySeen]:
        seen = []
        async with self.sessionmaker() as session:
            rows = await session.scalars(
                select(Notice)
                .where(Notice.kind == notices.NoticeKind.REPLY.value)
                .order_by(Notice.id)
                .options(selectinload(Notice.files))
            )
            for row in rows:
                body = notices.parse_body(row.payload)
                assert isinstance(body, notices.Reply)
                seen.append(
                    ReplySeen(
                        ticket_id=row.ticket_id,
                        chat_id=row.chat_id,
                        locale=row.locale,
                        number=body.number,
                        subject=body.subject,
                        author=body.author,
                        body=body.body,
                        html=body.html,
                        attachments=[(f.filename, f.content_type, f.content) for f in row.files],
                    )
                )
        return seen

    async def statuses(self) -> list[notices.StatusChanged]:
        found = await bodies(self.sessionmaker, notices.NoticeKind.STATUS.value)
        return [body for body in found if isinstance(body, notices.StatusChanged)]

    async def count(self) -> int:
        return len(await written(self.sessionmaker))
