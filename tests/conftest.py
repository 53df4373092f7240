"""Shared fixtures: real PostgreSQL and Redis of this machine, and the embedded SQLite default.

Every test gets a migrated database of its own: on PostgreSQL the worker's database, migrated
once per session and emptied before each test; on SQLite a copy of a template migrated once per
session. Tests of the migrations themselves take `fresh_database_url` (an empty database). Every
test gets its own Redis key prefix. Where a server is down the test is skipped, unless
FRONTDESK_REQUIRE_SERVICES=1 (set by .ci/run), where it fails: CI never silently skips the real
parts.
"""

from __future__ import annotations

import os
import socket
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.db.engine import create_engine, create_sessionmaker
from tests.helpers.databases import (
    POSTGRES_ADMIN_URL,
    REDIS_URL,
    PostgresDatabases,
    copy_sqlite,
    migrate_sqlite,
    run_async,
)
from tests.helpers.databases import (
    sqlite_url as sqlite_url_of,
)
from tests.helpers.forked_cli import ForkServer

REQUIRE_SERVICES = os.environ.get("FRONTDESK_REQUIRE_SERVICES") == "1"


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_server(name: str, host: str, port: int) -> None:
    if _reachable(host, port):
        return
    message = f"{name} is not reachable at {host}:{port}"
    if REQUIRE_SERVICES:
        pytest.fail(message + " (FRONTDESK_REQUIRE_SERVICES=1)")
    pytest.skip(message)


@pytest.fixture(scope="session")
def postgres() -> PostgresDatabases:
    require_server("PostgreSQL", "127.0.0.1", 5432)
    return PostgresDatabases(POSTGRES_ADMIN_URL)


@pytest.fixture(scope="session")
def migrated_postgres(postgres: PostgresDatabases) -> Iterator[str]:
    """This worker's PostgreSQL database, migrated once."""
    url = run_async(postgres.create_migrated())
    yield url
    run_async(postgres.drop(url.rsplit("/", 1)[1]))


@pytest.fixture
def postgres_url(postgres: PostgresDatabases, migrated_postgres: str) -> str:
    """A migrated PostgreSQL database with every table empty. (A plain fixture, so that async
    fixtures can ask for it with request.getfixturevalue.)"""
    run_async(postgres.reset(migrated_postgres))
    return migrated_postgres


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "frontdesk.sqlite3"
    run_async(migrate_sqlite(path))
    return path


@pytest.fixture
def sqlite_url(sqlite_template: Path, tmp_path: Path) -> str:
    """A migrated SQLite database of this test alone (tmp_path/frontdesk.sqlite3)."""
    path = tmp_path / "frontdesk.sqlite3"
    copy_sqlite(sqlite_template, path)
    return sqlite_url_of(path)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest) -> str:
    """Both databases frontdesk supports, migrated: every storage test runs on each."""
    return str(request.getfixturevalue(f"{request.param}_url"))


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
async def fresh_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """Both databases, empty (no schema at all): for the tests of the migrations."""
    if request.param == "sqlite":
        yield sqlite_url_of(tmp_path / "fresh.sqlite3")
        return
    databases: PostgresDatabases = request.getfixturevalue("postgres")
    name = await databases.create()
    try:
        yield databases.url_for(name)
    finally:
        await databases.drop(name)


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(database_url)
    try:
        yield engine
    finally:
        await engine.dispose()


@pytest.fixture
def sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_sessionmaker(engine)


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A Redis key prefix of this test alone, deleted afterwards."""
    require_server("Redis", "127.0.0.1", 6379)
    from redis import Redis

    prefix = "frontdesk-test-" + uuid.uuid4().hex[:12]
    yield prefix
    with Redis.from_url(REDIS_URL) as client:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)


# What each fixture needs, as a marker: `-m "not postgres"` (scripts/test --fast) then leaves out
# every test that uses the server, marked by hand or not.
_MARKERS_OF_FIXTURES = {
    "postgres": "postgres",
    "migrated_postgres": "postgres",
    "postgres_url": "postgres",
    "redis_prefix": "redis",
    "rt_server": "rt",
}


# The longest files (`--durations`), handed out to the xdist workers first so that none of them
# ends the run alone on a minute-long test: the crowds of 200, a thousand chats, the processes.
# (With `--dist loadgroup` the xdist_groups go before them, the largest first: the RT fault tests,
# then the crowds of 200, one after another on one worker.)
LONG_FIRST = (
    "tests/e2e/test_crowd_e2e.py",
    "tests/e2e/test_processes_e2e.py",
    "tests/e2e/test_notices_e2e.py",
    "tests/integration/test_delivery_limits.py",
    "tests/e2e/test_telegram_limits_e2e.py",
    "tests/e2e/test_links_e2e.py",
    "tests/e2e/test_modification_restrictions_e2e.py",
    "tests/e2e/test_sandbox_browser.py",
    "tests/e2e/test_fuzz_updates_e2e.py",
    "tests/e2e/test_my_tickets_e2e.py",
    "tests/integration/test_sync.py",
    "tests/unit/test_rich_text.py",
)


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        for fixture, marker in _MARKERS_OF_FIXTURES.items():
            if fixture in fixtures:
                item.add_marker(marker)
        if "e2e" in item.path.parts:
            item.add_marker("e2e")
    # Whole files move, in LONG_FIRST's order, each kept together; the rest keep theirs. The
    # same order on every worker, as xdist requires.
    rank = {path: index for index, path in enumerate(LONG_FIRST)}
    items.sort(key=lambda item: rank.get(item.nodeid.split("::", 1)[0], len(rank)))


# Hypothesis (the fuzz suite, tests/e2e/test_fuzz_updates_e2e.py): derandomized by default, so a
# run in CI is reproducible and a failure prints the blob that replays it; no example database
# in the checkout. HYPOTHESIS_PROFILE=explore draws new examples on every run.
def _hypothesis_profiles() -> None:
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, print_blob=True, database=None, deadline=None)
    settings.register_profile("explore", print_blob=True, deadline=None)
    settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


_hypothesis_profiles()


@pytest.fixture(scope="session")
def fork_server() -> Iterator[ForkServer | None]:
    """`python -m bot …` forked from a process that has imported frontdesk and aiogram once
    (tests/helpers/forked_cli.py): a real process without the seconds of importing. None with
    FRONTDESK_TEST_FORK=0: every such test then starts a plain `python -m bot`."""
    if os.environ.get("FRONTDESK_TEST_FORK") == "0":
        yield None
        return
    server = ForkServer.start()
    yield server
    server.stop()
