"""A specialist's actions from Telegram through the real bot and the Bot API emulator, on the
builtin queue (issue 9, point 3): the assignment card carries the buttons; Reply (text and a
document) reaches the merchant with the file and is in the queue by the specialist; Resolve (after
a confirmation) tells the merchant; a lead takes a new ticket from its card; /reply works as a
command; and a merchant forging a staff button or sending a staff command gets nothing
staff-only."""

from __future__ import annotations

import asyncio
import time
from typing import cast

import pytest

from bot.sandbox.telegram_emulator import AlbumItem, TelegramEmulator
from services import merchants, stores, tickets
from services.db.engine import create_engine, create_sessionmaker
from services.db.models import Role, StaffRole, Ticket, TicketStatus
from services.queue.builtin import BuiltinQueue
from services.queue.console import BuiltinConsole
from services.regulation import load_regulation
from services.tickets import Draft
from tests.e2e.bot_in_process import InProcessBot
from tests.e2e.driver import MerchantChat, containing
from tests.e2e.test_staff_e2e import staff_link
from tests.helpers.wizard import (
    TEXTS,
    describe,
    merchant,
    send_and_get_number,
    walk_to_description,
)

pytestmark = pytest.mark.e2e

ENV = {"SYNC_INTERVAL_SECONDS": "1"}
ACCEPTED = "Принято:"
REGULATION = load_regulation()
MODIFICATION = Draft("modification", "template", "Поправить шапку", "Сдвинуть логотип влево.")


async def _queue_ticket(sqlite_url: str, number: str, *, owner: str | None = None):  # type: ignore[no-untyped-def]
    engine = create_engine(sqlite_url)
    try:
        queue = BuiltinQueue(create_sessionmaker(engine))
        if owner is not None:
            await BuiltinConsole(queue, "petrova").set_owner(number, owner)
        return await queue.get_ticket(number), await queue.conversation(number)
    finally:
        await engine.dispose()


async def _file_ticket(emulator: TelegramEmulator, user_id: int) -> tuple[MerchantChat, str]:
    t = TEXTS["ru"]
    shopper = MerchantChat(emulator, merchant("ru", user_id))
    await shopper.say("/start")
    await walk_to_description(shopper, t)
    review = await describe(shopper, t["description"])
    return shopper, await send_and_get_number(shopper, review, t)


async def test_specialist_replies_with_a_document_and_resolves_from_the_assignment_card(
    emulator: TelegramEmulator, start_bot, sqlite_url: str
) -> None:
    await start_bot(env=ENV)
    specialist = MerchantChat(emulator, merchant("ru", 5_800_001))
    await specialist.say(f"/start {await staff_link(sqlite_url, 'ivanov', StaffRole.SPECIALIST)}")
    shopper, number = await _file_ticket(emulator, 5_800_002)

    since = emulator.mark()
    await _queue_ticket(sqlite_url, number, owner="ivanov")
    card = await emulator.wait_for_message(
        specialist.user, containing(f"📌 Вам назначена заявка #{number}:"), since=since, timeout=20
    )
    labels = [b.text for b in card.buttons]
    assert {"💬 Ответить", "📝 Комментарий", "✅ Решить", "👥 Переназначить"} <= set(labels)
    assert "🙋 Взять" not in labels  # the ticket is theirs already
    assert "⏱ Записать доработку" not in labels  # not a modification request

    prompt = await specialist.press_for_new(card, "💬 Ответить")
    assert f"#{number}" in prompt.content
    since = emulator.mark()
    emulator.send_document(
        specialist.user,
        "fix.pdf",
        b"%PDF-1.4 the fix",
        "Исправили, проверьте.",
        mime_type="application/pdf",
    )
    accepted = await emulator.wait_for_message(specialist.user, since=since, timeout=15)
    assert ACCEPTED in accepted.content
    reply = await emulator.wait_for_message(
        shopper.user, containing("💬 Ответ поддержки", f"#{number}"), timeout=20
    )
    assert "Исправили, проверьте." in reply.content
    document = await emulator.wait_for_message(
        shopper.user, lambda m: m.file is not None, timeout=20
    )
    assert document.file is not None and document.file.content == b"%PDF-1.4 the fix"
    await emulator.wait_for_message(
        specialist.user, containing("✅ Ваш ответ по заявке", f"#{number}"), timeout=20
    )
    _ticket, entries = await _queue_ticket(sqlite_url, number)
    assert entries[-1].by_support and entries[-1].author == "ivanov"

    confirm = await specialist.press_for_new(card, "✅ Решить")
    assert f"Решить заявку #{number}?" in confirm.content
    edited = await specialist.press(confirm, "Да, решить")
    assert ACCEPTED in edited.content
    await emulator.wait_for_message(
        shopper.user, containing(f"✅ Обращение #{number}", "решено"), timeout=20
    )
    ticket, _entries = await _queue_ticket(sqlite_url, number)
    assert ticket.status is TicketStatus.RESOLVED
    assert emulator.failed_calls == []


async def test_a_lead_takes_a_new_ticket_a_command_replies_and_a_merchant_gets_nothing_staff_only(
    emulator: TelegramEmulator, start_bot, sqlite_url: str
) -> None:
    await start_bot(env=ENV)
    lead = MerchantChat(emulator, merchant("ru", 5_800_011))
    await lead.say(f"/start {await staff_link(sqlite_url, 'petrova', StaffRole.LEAD)}")
    shopper, number = await _file_ticket(emulator, 5_800_012)
    card = await emulator.wait_for_message(
        lead.user, containing(f"🆕 Новая заявка #{number},"), timeout=20
    )
    assert "🙋 Взять" in [b.text for b in card.buttons]

    # The merchant forges the lead's buttons: the stale-button answer, nothing done.
    for data in (f"sa:v:{number}:0", f"sa:y:{number}:0", f"sa:t:{number}:0"):
        alert = await shopper.press_stale(shopper.emu.bot_messages(shopper.user)[-1], data)
        assert alert is not None and "устарела" in alert
    answer = await shopper.say(f"/reply {number} Вы мне ничего не должны")
    assert ACCEPTED not in answer.content
    ticket, entries = await _queue_ticket(sqlite_url, number)
    assert ticket.status is not TicketStatus.RESOLVED and ticket.owner is None
    assert not [e for e in entries if e.by_support]

    taken = await lead.press_for_new(card, "🙋 Взять")
    assert ACCEPTED in taken.content
    await emulator.wait_for_message(
        lead.user, containing(f"✅ Заявка #{number}", "теперь ваша"), timeout=20
    )
    ticket, _entries = await _queue_ticket(sqlite_url, number)
    assert ticket.owner == "petrova"

    answer = await lead.say(f"/reply {number} Уже смотрим.")
    assert ACCEPTED in answer.content
    reply = await emulator.wait_for_message(
        shopper.user, containing("💬 Ответ поддержки", f"#{number}"), timeout=20
    )
    assert "Уже смотрим." in reply.content

    # An album after Reply is one reply with every file.
    await lead.press_for_new(card, "💬 Ответить")
    since = emulator.mark()
    emulator.send_album(
        lead.user,
        [
            AlbumItem(
                "document", b"one", caption="Два файла", filename="a.txt", mime_type="text/plain"
            ),
            AlbumItem("document", b"two", filename="b.txt", mime_type="text/plain"),
        ],
    )
    await emulator.wait_for_message(lead.user, containing(ACCEPTED), since=since, timeout=15)
    await emulator.wait_for_message(
        shopper.user, containing("💬 Ответ поддержки", "Два файла"), since=since, timeout=20
    )
    await emulator.wait_until(
        lambda: (
            len([m for m in emulator.bot_messages(shopper.user) if m.seq > since and m.file]) == 2
        ),
        timeout=20,
    )
    _ticket, entries = await _queue_ticket(sqlite_url, number)
    [album] = [e for e in entries if "Два файла" in e.body]
    assert album.by_support and len(album.attachments) == 2
    await asyncio.sleep(1.0)
    accepted = [
        m for m in emulator.bot_messages(lead.user) if m.seq > since and ACCEPTED in m.content
    ]
    assert len(accepted) == 1
    assert emulator.failed_calls == []


async def test_record_modification_from_the_card_free_then_paid_at_the_quote(
    emulator: TelegramEmulator, start_bot, sqlite_url: str
) -> None:
    bot = cast(InProcessBot, await start_bot(env=ENV))
    specialist = MerchantChat(emulator, merchant("ru", 5_800_021))
    await specialist.say(f"/start {await staff_link(sqlite_url, 'ivanov', StaffRole.SPECIALIST)}")
    shop = MerchantChat(emulator, merchant("ru", 5_800_022))
    await shop.say("/start")
    engine = create_engine(bot.env["DATABASE_URL"])
    try:
        sessionmaker = create_sessionmaker(engine)
        async with sessionmaker() as session:
            profile = await merchants.get_or_register(
                session, telegram_id=shop.user.id, full_name="Анна", username="anna_shop"
            )
            store_id = await stores.add_store(
                session, domain="lavka.example.com", name="Лавка", plan="site"
            )
            await stores.grant(session, merchant_id=profile.id, store_id=store_id, role=Role.OWNER)
            await session.commit()
            filed = await tickets.submit(
                session,
                REGULATION.catalog,
                profile,
                MODIFICATION,
                reference="e2e-staff-modification",
                locale="ru",
                queue_name="builtin",
                store_id=store_id,
                plan="site",
            )
        number = None
        deadline = time.monotonic() + 20
        while number is None:
            assert time.monotonic() < deadline, "the ticket was not registered"
            await asyncio.sleep(0.2)
            async with sessionmaker() as session:
                number = (await session.get_one(Ticket, filed.id)).queue_ticket_id
    finally:
        await engine.dispose()

    since = emulator.mark()
    await _queue_ticket(sqlite_url, number, owner="ivanov")
    card = await emulator.wait_for_message(
        specialist.user, containing(f"📌 Вам назначена заявка #{number}:"), since=since, timeout=20
    )
    prompt = await specialist.press_for_new(card, "⏱ Записать доработку")
    assert f"#{number}" in prompt.content and "Сколько минут" in prompt.content
    assert "Пришлите целое число" in (await specialist.say("десять")).content
    free = await specialist.say("10")
    assert f"Записано в #{number}" in free.content and "осталось 3 из 4" in free.content
    await emulator.wait_for_message(
        shop.user, containing("бесплатная доработка", f"#{number}"), timeout=15
    )

    await specialist.press_for_new(card, "⏱ Записать доработку")
    asked = await specialist.say("40")
    assert "пришлите цену в рублях" in asked.content
    paid = await specialist.say("700")
    assert "платно" in paid.content and "700" in paid.content
    # /cancel leaves the question: the next number is no modification.
    await specialist.press_for_new(card, "⏱ Записать доработку")
    assert "ничего не отправлено" in (await specialist.say("/cancel")).content
    assert emulator.failed_calls == []
