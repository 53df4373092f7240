"""The load benchmark's pure helpers (benchmarks/loadstats.py); the benchmark itself is not a
test (it takes minutes and both cores)."""

from __future__ import annotations

import math

import pytest

from benchmarks.loadstats import (
    INCLUSIVE,
    Verdict,
    at_least,
    at_most,
    busy_time,
    cpu_seconds,
    cpu_times,
    frame_group,
    metric_total,
    percentile,
    rss_bytes,
    summarize_collapsed,
)


def test_percentiles_interpolate_between_ranks_like_numpy() -> None:
    values = [0.4, 0.1, 0.3, 0.2, 0.5]
    assert percentile(values, 50) == pytest.approx(0.3)
    assert percentile(values, 0) == pytest.approx(0.1)
    assert percentile(values, 100) == pytest.approx(0.5)
    assert percentile(values, 95) == pytest.approx(0.48)
    assert percentile([7.0], 99) == 7.0
    assert math.isnan(percentile([], 50))


def test_busy_time_is_the_union_of_the_intervals() -> None:
    assert busy_time([(0, 1), (0.5, 2), (3, 4), (3.5, 3.6)]) == pytest.approx(3.0)
    assert busy_time([]) == 0.0


# A process named with a space and a parenthesis, as /proc/PID/stat can show it.
STAT = (
    "4242 (python -m (bot)) S 1 4242 4242 0 -1 4194560 51234 0 12 0 "
    "1250 375 0 0 20 0 3 0 123456 456789012 61234 18446744073709551615"
)


def test_cpu_time_is_utime_plus_stime_counted_after_the_name() -> None:
    assert cpu_times(STAT, ticks=100) == (12.5, 3.75)
    assert cpu_seconds(STAT, ticks=100) == pytest.approx(16.25)


def test_rss_is_read_from_vmrss_in_bytes() -> None:
    status = "Name:\tpython\nVmPeak:\t  900000 kB\nVmRSS:\t  251904 kB\nThreads:\t3\n"
    assert rss_bytes(status) == 251904 * 1024
    assert rss_bytes("Name:\tzombie\n") == 0


EXPOSITION = """# HELP frontdesk_db_statements_total SQL statements sent.
# TYPE frontdesk_db_statements_total counter
frontdesk_db_statements_total 1234.0
# HELP frontdesk_updates_total Telegram updates handled.
# TYPE frontdesk_updates_total counter
frontdesk_updates_total{type="message"} 10.0
frontdesk_updates_total{type="callback_query"} 5.0
"""


def test_a_counter_is_read_from_the_metrics_page_summed_over_its_labels() -> None:
    assert metric_total(EXPOSITION, "frontdesk_db_statements_total") == 1234.0
    assert metric_total(EXPOSITION, "frontdesk_updates_total") == 15.0
    assert math.isnan(metric_total(EXPOSITION, "frontdesk_missing_total"))


def test_targets_are_met_missed_or_not_measured() -> None:
    assert at_least(0.6, 0.5) is True and at_least(0.4, 0.5) is False
    assert at_most(4.0, 4.0) is True and at_most(4.1, 4.0) is False
    assert at_least(math.nan, 0.5) is None and at_most(None, 1) is None
    assert Verdict("x", "y", None).mark == "n/a" and Verdict("x", "y", False).mark == "MISSED"


ROOT = "/work/frontdesk"
SITE = "/work/frontdesk/.venv/lib/python3.11/site-packages"
PROFILE = [
    # An update's SQL: a frontdesk handler down to asyncpg writing to its socket.
    f"_run (/usr/lib/python3.11/asyncio/events.py:80);"
    f"step (/work/frontdesk/handlers/wizard.py:120);"
    f"AsyncSession.execute ({SITE}/sqlalchemy/ext/asyncio/session.py:652);"
    f"_SelectorSocketTransport.write (/usr/lib/python3.11/asyncio/selector_events.py:1057) 6",
    # A Bot API call, in aiogram's session.
    f"step (/work/frontdesk/handlers/wizard.py:130);"
    f"AiohttpSession.make_request ({SITE}/aiogram/client/session/aiohttp.py:177);"
    f"BaseModel.model_validate ({SITE}/pydantic/main.py:732) 3",
    # frontdesk's own code on CPU.
    "render (/work/frontdesk/bot/app.py:10) 1",
]


def test_a_py_spy_profile_is_summed_by_library_and_by_what_the_stack_passes_through() -> None:
    profile = summarize_collapsed([*PROFILE, "", "garbage"], ROOT)
    # The socket write's samples count in all, not on CPU (the process waits for the CPU there).
    assert (profile.total, profile.on_cpu) == (10, 4)
    assert dict(profile.by_leaf) == {"pydantic": 3, "frontdesk bot/": 1}
    labels = [label for label, _ in INCLUSIVE]
    sql, api, writes = labels[0], labels[4], labels[-1]
    assert profile.inclusive_all[sql] == 6 and profile.inclusive_all[writes] == 6
    assert profile.inclusive == {api: 3}
    assert dict(profile.by_function) == {"step (handlers/wizard.py)": 3, "render (bot/app.py)": 1}
    assert frame_group(f"f ({SITE}/multidict/_multidict.py:1)") == "aiohttp"
    assert frame_group("f (/usr/lib/python3.11/logging/__init__.py:1)") == "logging"
    assert frame_group("f (/work/frontdesk/services/tickets.py:1)", ROOT) == "frontdesk services/"
