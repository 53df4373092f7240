from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import ValidationError

from bot.config import DEFAULT_DATABASE_URL, Settings, telegram_token_problem


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


@pytest.mark.parametrize(
    "token",
    [
        "123456789:AA...",  # the old README's example
        "123456789:AA…",
        "<token from @BotFather>",
        "YOUR_TOKEN_FROM_BOTFATHER",  # the README's example
        "123456789: AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
        "123456789:",
        ":AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
        "bot123456789:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw",
    ],
)
def test_a_placeholder_token_is_refused_by_the_format_check(token: str) -> None:
    with pytest.raises(ValidationError) as error:
        _settings(bot_token=token)
    assert [problem["loc"] for problem in error.value.errors()] == [("bot_token",)]
    assert "the token @BotFather gave" in str(error.value)


def test_a_token_of_botfathers_shape_passes_the_format_check() -> None:
    token = "110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw_-x"
    assert _settings(bot_token=token).bot_token.get_secret_value() == token


def test_a_shortened_token_is_refused_only_for_telegrams_own_server() -> None:
    short = "123456789:AAHdqTcvCH1vG"
    problem = telegram_token_problem(_settings(bot_token=short))
    assert problem is not None and "too short" in problem
    local = _settings(bot_token=short, telegram_api_url="http://127.0.0.1:8081")
    assert telegram_token_problem(local) is None
    whole = _settings(bot_token="110201543:AAHdqTcvCH1vGWJxfSeofSAs0K5PALDsaw1")
    assert telegram_token_problem(whole) is None


@pytest.mark.parametrize(
    ("secret", "reason"),
    [
        ("x", "at least 16 characters"),
        ("fifteen-chars-x", "at least 16 characters"),
        ("with spaces in it ok", "only A-Z, a-z, 0-9, _ and -"),
        ("secret:with:colons:x", "only A-Z, a-z, 0-9, _ and -"),
        ("x" * 257, "at most 256 characters"),
    ],
)
def test_a_guessable_or_malformed_webhook_secret_is_refused(secret: str, reason: str) -> None:
    with pytest.raises(ValidationError) as error:
        _settings(webhook_base_url="https://bot.example.com", webhook_secret=secret)
    assert [problem["loc"] for problem in error.value.errors()] == [("webhook_secret",)]
    assert reason in str(error.value)


def test_a_webhook_secret_of_telegrams_alphabet_is_accepted() -> None:
    for secret in ("0123456789abcdef", "A-z_09-" * 36 + "abcd"):
        settings = _settings(webhook_base_url="https://bot.example.com", webhook_secret=secret)
        assert settings.webhook_secret is not None
        assert settings.webhook_secret.get_secret_value() == secret


@pytest.mark.parametrize(
    "url", ["127.0.0.1:6379", "http://127.0.0.1:6379/0", "redis://127.0.0.1:port/0"]
)
def test_a_malformed_redis_url_is_refused(url: str) -> None:
    with pytest.raises(ValidationError) as error:
        _settings(redis_url=url)
    assert [problem["loc"] for problem in error.value.errors()] == [("redis_url",)]


def test_redis_urls_of_every_form_are_accepted() -> None:
    for url in ("redis://127.0.0.1:6379/0", "rediss://:pw@cache:6380/1", "unix:///run/redis.sock"):
        assert _settings(redis_url=url).redis_url == url
    assert _settings(redis_url="").redis_url is None
