"""The person blocked the bot (or unblocked it): Telegram tells with a my_chat_member update."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import KICKED, ChatMemberUpdatedFilter
from aiogram.types import ChatMemberUpdated
from sqlalchemy.ext.asyncio import AsyncSession

from services import notices

router = Router(name=__name__)


@router.my_chat_member(ChatMemberUpdatedFilter(member_status_changed=KICKED))
async def blocked(event: ChatMemberUpdated, session: AsyncSession) -> None:
    # Notices wait until they write again (bot/middlewares.py clears the mark on any update of
    # theirs, unblocking included), rather than failing one by one.
    await notices.mark_unreachable(session, event.chat.id, "the person blocked the bot")
