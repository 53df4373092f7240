"""A specialist's actions from Telegram through the real bot and the Bot API emulator, on the
builtin queue (issue 9, point 3): the assignment card carries the buttons; Reply (text and a
document) reaches the merchant with the file and is in the queue by the specialist; Resolve (after
a confirmation) tells the merchant; a lead takes a new ticket from its card; /reply works as a
command; and a merchant forging a staff button or sending a staff command gets nothing
staff-only."""

from __future__ import annotations

import pytest

from services.db.engine import create_engine, create_sessionmaker
from services.db.models import StaffRole, TicketStatus
from services.queue.builtin import BuiltinQueue
from services.queue.console import BuiltinConsole
from tests.e2e.driver import MerchantChat, containing
from tests.e2e.telegram_emulator import TelegramEmulator
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
    assert emulator.failed_calls == []
