"""Several processes, as settings: one process by default; SQLite refuses to be several."""

from __future__ import annotations

import pytest

from bot.config import Settings
from bot.startup import StartupError, check_processes

POSTGRES = "postgresql://frontdesk@db/frontdesk"
REDIS = "redis://redis:6379/0"


def _settings(**env: str) -> Settings:
    return Settings.model_validate({"bot_token": "123456:ABC", **env})


def test_one_process_runs_everything_by_default() -> None:
    settings = _settings()
    assert (settings.run_workers, settings.web_reuse_port) == (True, False)
    check_processes(settings, worker=False)


@pytest.mark.parametrize(
    ("env", "worker", "setting"),
    [
        ({}, True, "DATABASE_URL"),
        ({"run_workers": "false"}, False, "RUN_WORKERS"),
        ({"web_reuse_port": "true", "redis_url": REDIS}, False, "WEB_REUSE_PORT"),
    ],
    ids=["worker", "no-workers", "reuse-port"],
)
def test_sqlite_is_one_process(env: dict[str, str], worker: bool, setting: str) -> None:
    with pytest.raises(StartupError) as refused:
        check_processes(_settings(**env), worker=worker)
    assert refused.value.setting == setting
    assert "SQLite" in refused.value.problem
    assert "PostgreSQL" in refused.value.action


def test_webhook_processes_sharing_a_port_need_redis() -> None:
    settings = _settings(database_url=POSTGRES, web_reuse_port="true", run_workers="false")
    with pytest.raises(StartupError) as refused:
        check_processes(settings, worker=False)
    assert refused.value.setting == "WEB_REUSE_PORT"
    assert "REDIS_URL" in refused.value.problem


@pytest.mark.parametrize("worker", [False, True])
def test_postgres_and_redis_may_be_any_number_of_processes(worker: bool) -> None:
    settings = _settings(
        database_url=POSTGRES, redis_url=REDIS, web_reuse_port="true", run_workers="false"
    )
    check_processes(settings, worker=worker)
