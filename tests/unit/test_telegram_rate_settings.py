"""TELEGRAM_*_RATE settings: Telegram's limits by default, `limits` rate strings, refused early
when they do not parse."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.config import Settings


def _settings(**env: str) -> Settings:
    return Settings.model_validate({"bot_token": "123456:ABC", **env})


def test_defaults_are_telegrams_limits() -> None:
    settings = _settings()
    assert settings.telegram_global_rate == "30 per second"
    assert settings.telegram_chat_rate == "1 per second"
    assert settings.telegram_group_rate == "20 per minute"


def test_a_shrunk_window_is_accepted() -> None:
    assert _settings(telegram_group_rate="20 per 2 seconds").telegram_group_rate == (
        "20 per 2 seconds"
    )


@pytest.mark.parametrize(
    "field", ["telegram_global_rate", "telegram_chat_rate", "telegram_group_rate"]
)
def test_a_rate_that_does_not_parse_is_refused(field: str) -> None:
    with pytest.raises(ValidationError, match="30 per second"):
        _settings(**{field: "thirty a second"})
