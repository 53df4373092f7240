from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from bot.config import DEFAULT_DATABASE_URL, Settings


def _settings(**env: str) -> Settings:
    return Settings.model_validate({"bot_token": "123456:ABC", **env})


def test_embedded_defaults() -> None:
    settings = _settings()
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.redis_url is None
    assert settings.default_locale == "ru"
    assert str(settings.telegram_api_url) == "https://api.telegram.org/"


def test_plain_postgres_url_gets_the_async_driver() -> None:
    assert _settings(database_url="postgresql://u@db/frontdesk").database_url == (
        "postgresql+asyncpg://u@db/frontdesk"
    )


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("bot_token", "not-a-token"),
        ("database_url", "mysql://root@db/x"),
        ("default_locale", "de"),
        ("webhook_path", "no-slash"),
        ("web_port", "70000"),
    ],
)
def test_invalid_setting_is_refused(field: str, value: str) -> None:
    with pytest.raises(ValidationError) as error:
        _settings(**{field: value})
    assert field in str(error.value)


def test_webhook_needs_a_secret() -> None:
    with pytest.raises(ValidationError, match="WEBHOOK_SECRET"):
        _settings(webhook_base_url="https://bot.example.com")


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "bot", *args],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", **env},
        timeout=60,
        cwd="/",
    )


def test_missing_token_exits_with_one_clear_line() -> None:
    result = _cli("run", env={})
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        == "frontdesk: configuration error: BOT_TOKEN: is required but not set"
    )


def test_invalid_setting_exits_with_one_line_naming_it() -> None:
    result = _cli("migrate", env={"BOT_TOKEN": "1:x", "DATABASE_URL": "mysql://db"})
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "frontdesk: configuration error: DATABASE_URL: must be a postgresql:// or sqlite:/// URL"
    ]


def test_updates_handled_at_once_leave_the_workers_their_connections_by_default() -> None:
    assert _settings().update_concurrency == 10 + 20 - 10
    assert _settings(database_pool_size="30", database_max_overflow="0").update_concurrency == 20
    assert _settings(database_pool_size="2", database_max_overflow="0").update_concurrency == 1
    assert _settings(max_concurrent_updates="40").update_concurrency == 40
