"""The buttons under a ticket card for staff (services/staff_actions.card_actions decides, the
keyboard only shows): Record modification only on a modification request, Take only when the
ticket is not the reader's already; the callback data fits Telegram's 64 bytes."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from aiogram.utils.i18n import I18n

from bot.config import locales_dir
from handlers.notices import TextPart, render
from services.notices import Assigned, SlaWarning, TicketCard, Unassigned

NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)


@pytest.fixture
def i18n() -> I18n:
    return I18n(path=locales_dir(), default_locale="ru", domain="messages")


def _card(**changes: object) -> TicketCard:
    fields: dict[str, object] = {
        "number": "1234567",
        "subject": "Доработка",
        "excerpt": "Нужно",
        "store_name": None,
        "store_domain": None,
        "plan": None,
        "request_type": "Доработка",
        "category": "Дизайн",
    }
    return TicketCard.model_validate(fields | changes)


def _buttons(i18n: I18n, body: Assigned | Unassigned | SlaWarning) -> dict[str, str]:
    with i18n.context(), i18n.use_locale("en"):
        parts = render(body, [], now=NOW)
    part = parts[-1]
    assert isinstance(part, TextPart) and part.keyboard is not None
    return {b.text: b.callback_data or "" for r in part.keyboard.inline_keyboard for b in r}


def test_record_modification_only_on_a_modification_request(i18n: I18n) -> None:
    assert "⏱ Record modification" in _buttons(i18n, Assigned(card=_card(modification=True)))
    assert "⏱ Record modification" not in _buttons(i18n, Assigned(card=_card()))


def test_take_only_when_the_ticket_is_not_the_readers_already(i18n: I18n) -> None:
    assert "🙋 Take" not in _buttons(i18n, Assigned(card=_card()))
    unassigned = _buttons(i18n, Unassigned(card=_card()))
    assert unassigned["🙋 Take"] == "sa:t:1234567:0"
    assert {"💬 Reply", "📝 Comment", "✅ Resolve", "👥 Reassign"} <= set(unassigned)


def test_an_sla_warning_carries_the_actions_and_every_callback_fits_64_bytes(i18n: I18n) -> None:
    warning = SlaWarning(
        number="1234567", subject="x", store=None, due=NOW, breached=True, url=None
    )
    buttons = _buttons(i18n, warning)
    assert "💬 Reply" in buttons and "🙋 Take" in buttons
    assert all(len(data.encode()) <= 64 for data in buttons.values())
