"""docker-compose.yml, read without Docker (none runs on CI): the services, their order, their
health checks, and that every variable handed to frontdesk is one of its settings."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.config import Settings

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = {name.upper() for name in Settings.model_fields}
# Variables docker-compose.yml itself reads from .env, not settings of the bot.
COMPOSE_ONLY = {"POSTGRES_PASSWORD", "FRONTDESK_IMAGE", "WEBHOOK_PUBLISHED_PORTS"}
FRONTDESK_SERVICES = ("migrate", "webhook", "worker")


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((ROOT / "docker-compose.yml").read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


def test_the_services_are_postgres_redis_migrate_webhook_and_worker(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert set(services) == {"postgres", "redis", "migrate", "webhook", "worker"}
    assert services["postgres"]["image"] == "postgres:15"
    assert services["redis"]["image"] == "redis:7"
    assert services["migrate"]["command"] == ["frontdesk", "migrate"]
    assert services["webhook"]["command"] == ["frontdesk", "run", "--webhook"]
    assert services["worker"]["command"] == ["frontdesk", "worker"]


def test_the_bot_starts_after_the_migration_completed_and_its_peers_are_healthy(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    for name in ("webhook", "worker"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"},
            "postgres": {"condition": "service_healthy"},
            "redis": {"condition": "service_healthy"},
        }
    assert services["migrate"]["depends_on"]["postgres"] == {"condition": "service_healthy"}
    assert services["migrate"]["restart"] == "no"  # a one-shot, never restarted when done


def test_the_bot_leaves_the_migration_to_the_migrate_service(compose: dict[str, Any]) -> None:
    for name in FRONTDESK_SERVICES:
        assert compose["services"][name]["environment"]["MIGRATE_ON_START"] == "false"


def test_webhook_replicas_leave_the_background_loops_to_the_workers(
    compose: dict[str, Any],
) -> None:
    # Several processes share PostgreSQL and Redis (docs/deploy.md, "Several processes").
    services = compose["services"]
    assert services["webhook"]["environment"]["RUN_WORKERS"] == "false"
    assert services["webhook"]["environment"]["REDIS_URL"]  # dedupe and locks across replicas
    assert "RUN_WORKERS" not in services["worker"]["environment"]
    assert services["webhook"]["deploy"]["replicas"] >= 1
    assert services["worker"]["deploy"]["replicas"] >= 1
    # One published port per replica: a range as long as the replicas.
    (published,) = services["webhook"]["ports"]
    first, last = re.search(r"(\d+)-(\d+)}?:8080$", published).groups()  # type: ignore[union-attr]
    assert int(last) - int(first) + 1 == services["webhook"]["deploy"]["replicas"]


@pytest.mark.parametrize("service", ["postgres", "redis", "webhook", "worker"])
def test_long_running_services_have_a_healthcheck(compose: dict[str, Any], service: str) -> None:
    check = compose["services"][service]["healthcheck"]
    assert check["test"] and not check.get("disable")
    assert check["interval"] and check["retries"] >= 1


def test_data_lives_in_volumes(compose: dict[str, Any]) -> None:
    assert set(compose["volumes"]) == {"postgres-data", "redis-data"}
    assert "postgres-data:/var/lib/postgresql/data" in compose["services"]["postgres"]["volumes"]
    assert "redis-data:/data" in compose["services"]["redis"]["volumes"]


def test_every_variable_given_to_frontdesk_is_one_of_its_settings(
    compose: dict[str, Any],
) -> None:
    for name in FRONTDESK_SERVICES:
        service = compose["services"][name]
        assert service["env_file"] == ".env"
        assert set(service["environment"]) - SETTINGS == set(), name


def test_every_variable_the_file_interpolates_is_a_setting_or_its_own() -> None:
    text = (ROOT / "docker-compose.yml").read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    assert used and used - SETTINGS - COMPOSE_ONLY == set()


def test_env_example_names_only_settings_and_commits_no_secret() -> None:
    lines = (ROOT / ".env.example").read_text(encoding="utf-8").splitlines()
    entries = dict(
        line.lstrip("# ").split("=", 1)
        for line in lines
        if re.match(r"^#? ?[A-Z_][A-Z0-9_]*=", line)
    )
    assert set(entries) - SETTINGS - COMPOSE_ONLY == set()
    assert COMPOSE_ONLY <= set(entries)
    for secret in ("BOT_TOKEN", "WEBHOOK_SECRET", "POSTGRES_PASSWORD", "RT_TOKEN"):
        assert entries[secret] == "", secret
    # What the file sets itself is not for .env (it would be overridden anyway).
    assert not {"DATABASE_URL", "REDIS_URL", "MIGRATE_ON_START"} & set(entries)
