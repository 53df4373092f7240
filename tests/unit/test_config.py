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


def test_staff_groups_map_catalog_codes_to_group_chats() -> None:
    settings = _settings(staff_groups='{"system_error": -1001234567890, "*": -42}')
    assert settings.staff_groups == {"system_error": -1001234567890, "*": -42}
    assert _settings().staff_groups == {}


@pytest.mark.parametrize(
    "value",
    [
        "system_error=-100",  # not JSON
        "[-100]",  # not an object
        '{"system_error": 5000}',  # a person's chat, not a group's
        '{"system_error": "-100"}',  # not a number
        '{"": -100}',
    ],
)
def test_bad_staff_groups_are_refused_naming_the_setting(value: str) -> None:
    with pytest.raises(ValidationError) as error:
        _settings(staff_groups=value)
    assert [problem["loc"] for problem in error.value.errors()] == [("staff_groups",)]


def test_staff_group_code_unknown_to_the_catalog_stops_start_up_with_one_line() -> None:
    result = _cli(
        "run", env={"BOT_TOKEN": "1:x", "STAFF_GROUPS": '{"system_eror": -100, "*": -200}'}
    )
    assert result.returncode == 2
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [
        "frontdesk: configuration error: STAFF_GROUPS: unknown code 'system_eror' (a key is a "
        "request type or category code of the catalog, or *)"
    ]


def test_bad_staff_groups_json_exits_with_one_line_naming_it() -> None:
    result = _cli("migrate", env={"BOT_TOKEN": "1:x", "STAFF_GROUPS": "{system_error: -100}"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        'frontdesk: configuration error: STAFF_GROUPS: must be a JSON object, e.g. {"system_error":'
        ' -1001234567890, "*": -1009876543210}'
    ]


def test_queue_ticket_url_is_a_web_address_with_the_number() -> None:
    template = "https://rt.example.com/Ticket/Display.html?id={id}"
    assert _settings(queue_ticket_url=template).queue_ticket_url == template
    for bad in ("https://rt.example.com/Ticket/Display.html", "ftp://rt/{id}", "rt/{id}"):
        with pytest.raises(ValidationError) as error:
            _settings(queue_ticket_url=bad)
        assert "queue_ticket_url" in str(error.value)
