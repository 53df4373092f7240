"""Settings of the sync back from the queue and of /queue/events."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from bot.config import Settings


def _settings(**env: str) -> Settings:
    return Settings.model_validate({"bot_token": "123456:ABC", **env})


def test_sync_is_on_every_30_seconds_and_the_push_endpoint_off_by_default() -> None:
    settings = _settings()
    assert settings.sync_enabled is True
    assert settings.sync_interval_seconds == 30
    assert settings.sync_overlap_seconds == 60
    assert settings.queue_events_secret is None


def test_sync_settings_are_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BOT_TOKEN", "123456:ABC")
    monkeypatch.setenv("SYNC_ENABLED", "false")
    monkeypatch.setenv("SYNC_INTERVAL_SECONDS", "1")
    monkeypatch.setenv("QUEUE_EVENTS_SECRET", "0123456789abcdef0123")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.sync_enabled is False
    assert settings.sync_interval_seconds == 1
    assert settings.queue_events_secret is not None
    assert settings.queue_events_secret.get_secret_value() == "0123456789abcdef0123"
    assert "0123456789abcdef0123" not in repr(settings)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("sync_interval_seconds", "0"),
        ("sync_overlap_seconds", "-1"),
        ("queue_events_secret", "short"),
    ],
)
def test_bad_sync_setting_is_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as error:
        _settings(**{field: value})
    assert field in str(error.value)
