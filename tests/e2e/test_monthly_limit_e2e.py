"""The free plan's monthly limit when admins of one store press Send at the same moment, on
PostgreSQL (where 6 tickets were once filed against a limit of 5): one gets the month's last
ticket, the others the refusal (the real bot, Bot API emulator)."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import func, select

from bot.sandbox.telegram_emulator import SimUser, TelegramEmulator
from services import merchants, stores, tickets
from services.db.engine import create_engine, create_sessionmaker
from services.db.models import Role, Ticket
from services.regulation import load_regulation
from tests.e2e.driver import MerchantChat
from tests.helpers.filing import DRAFT
from tests.helpers.wizard import TEXTS, describe, walk_to_description

pytestmark = pytest.mark.e2e

REGULATION = load_regulation()
REFUSAL = {
    "ru": "поддержка платформы принимает 5 обращений в месяц, и в этом месяце они исчерпаны",
    "en": "the platform's support takes 5 requests a month, and this month's are used",
}


async def _free_store_with_admins(
    url: str, owner: SimUser, admins: list[SimUser], filed: int
) -> int:
    """A free-plan store, its admins, and `filed` tickets its owner filed this month."""
    engine = create_engine(url)
    try:
        async with create_sessionmaker(engine)() as session:
            store_id = await stores.add_store(
                session, domain="free.example.com", name="Free shop", plan="free"
            )
            for user in admins:
                profile = await merchants.get_or_register(
                    session, telegram_id=user.id, full_name=user.first_name, username=None
                )
                await stores.grant(
                    session, merchant_id=profile.id, store_id=store_id, role=Role.ADMIN
                )
            profile = await merchants.get_or_register(
                session, telegram_id=owner.id, full_name=owner.first_name, username=None
            )
            await stores.grant(session, merchant_id=profile.id, store_id=store_id, role=Role.OWNER)
            for number in range(filed):
                await tickets.submit(
                    session,
                    REGULATION.catalog,
                    profile,
                    DRAFT,
                    reference=f"earlier-{number}",
                    locale="ru",
                    queue_name="builtin",
                    store_id=store_id,
                    plan="free",
                    policies=REGULATION.policies,
                )
        return store_id
    finally:
        await engine.dispose()


@pytest.mark.parametrize("language", ["ru", "en"])
async def test_two_admins_press_send_at_once_for_the_months_last_free_ticket(
    emulator: TelegramEmulator, start_bot, postgres_url: str, language: str
) -> None:
    t = TEXTS[language]
    admins = [
        SimUser(id=6_300_001 + n, first_name=f"Admin {n}", language_code=language) for n in range(3)
    ]
    owner = SimUser(id=6_300_000, first_name="Owner", language_code=language)
    emulator.add_user(owner)  # the owner's notices about the month's earlier tickets go there
    store_id = await _free_store_with_admins(postgres_url, owner, admins, filed=4)
    await start_bot(env={"DATABASE_URL": postgres_url})
    chats = [MerchantChat(emulator, user) for user in admins]
    reviews = []
    for chat in chats:
        await walk_to_description(chat, t)
        reviews.append(await describe(chat, t["description"]))

    since = emulator.mark()
    for chat, review in zip(chats, reviews, strict=True):
        emulator.press_button(chat.user, review, text=t["send"])
    await emulator.wait_until(
        lambda: (
            sum(
                1
                for chat in chats
                for m in emulator.bot_messages(chat.user)
                if m.seq > since and t["registered"] in m.content
            )
            >= 1
        ),
        timeout=20,
    )
    await emulator.wait_until(
        lambda: (
            sum(
                1
                for chat, review in zip(chats, reviews, strict=True)
                if REFUSAL[language] in emulator.message(chat.user, review.message_id).content
            )
            == 2
        ),
        timeout=20,
    )
    await asyncio.sleep(1)  # a second registration would have arrived by now

    registered = [
        chat
        for chat in chats
        if any(
            m.seq > since and t["registered"] in m.content for m in emulator.bot_messages(chat.user)
        )
    ]
    assert len(registered) == 1
    engine = create_engine(postgres_url)
    try:
        async with create_sessionmaker(engine)() as session:
            filed = await session.scalar(
                select(func.count()).select_from(Ticket).where(Ticket.store_id == store_id)
            )
    finally:
        await engine.dispose()
    assert filed == 5
