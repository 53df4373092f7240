"""Pure helpers of the load benchmark (bench_load.py): percentiles, /proc, /metrics, targets,
py-spy's collapsed stacks. No I/O here, so tests/unit/test_loadstats.py covers them."""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

CLOCK_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0-100), linearly interpolated between the closest ranks (numpy's
    default); NaN for no values."""
    if not values:
        return math.nan
    ordered = sorted(values)
    rank = (len(ordered) - 1) * q / 100
    low = math.floor(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def busy_time(intervals: Iterable[tuple[float, float]]) -> float:
    """The length of the union of (start, end) intervals: the time at least one was open."""
    total, reach = 0.0, -math.inf
    for start, end in sorted(intervals):
        if end <= reach:
            continue
        total += end - max(start, reach)
        reach = end
    return total


def cpu_times(stat: str, ticks: int = CLOCK_TICKS) -> tuple[float, float]:
    """(utime, stime) of /proc/PID/stat's text, in seconds. The command name (field 2) is in
    parentheses and may hold spaces and ')', so fields are counted after the last ')'."""
    fields = stat[stat.rindex(")") + 2 :].split()
    # After the name: state is field 3, so utime (14) and stime (15) are at 11 and 12.
    return int(fields[11]) / ticks, int(fields[12]) / ticks


def cpu_seconds(stat: str, ticks: int = CLOCK_TICKS) -> float:
    """utime + stime of /proc/PID/stat's text, in seconds."""
    return sum(cpu_times(stat, ticks))


def rss_bytes(status: str) -> int:
    """VmRSS of /proc/PID/status's text, in bytes (0 when absent: a zombie)."""
    for line in status.splitlines():
        if line.startswith("VmRSS:"):
            value, unit = line.split()[1:3]
            assert unit == "kB", unit
            return int(value) * 1024
    return 0


def metric_total(exposition: str, name: str) -> float:
    """The sum of a metric's samples named `name` (all label sets) in Prometheus' text format;
    NaN when it is not there (a frontdesk without that counter)."""
    values = [
        sample.value
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
        if sample.name == name
    ]
    return sum(values) if values else math.nan


@dataclass(frozen=True)
class Verdict:
    target: str
    value: str
    met: bool | None  # None: not measured

    @property
    def mark(self) -> str:
        return {True: "met", False: "MISSED", None: "n/a"}[self.met]


def at_least(value: float | None, bound: float) -> bool | None:
    return None if value is None or math.isnan(value) else value >= bound


def at_most(value: float | None, bound: float) -> bool | None:
    return None if value is None or math.isnan(value) else value <= bound


# py-spy's frames (--full-filenames) look like "Class.function (/path/to/module.py:123)".
_PACKAGES = {
    "sqlalchemy": "SQLAlchemy",
    "asyncpg": "asyncpg (PostgreSQL driver)",
    "redis": "redis-py",
    "aiogram": "aiogram",
    "magic_filter": "aiogram",
    "aiohttp": "aiohttp",
    "multidict": "aiohttp",
    "yarl": "aiohttp",
    "pydantic": "pydantic",
    "pydantic_core": "pydantic",
    "babel": "babel",
    "limits": "limits (rate limiter)",
    "prometheus_client": "prometheus_client",
    "greenlet": "SQLAlchemy",
}
_STDLIB = {
    "asyncio": "asyncio event loop",
    "selectors": "asyncio event loop",
    "threading": "threads",
    "concurrent": "threads",
    "logging": "logging",
    "json": "json",
    "gettext": "gettext",
}


def frame_path(frame: str) -> str:
    """The file of a frame, without its line number."""
    if "(" not in frame:
        return ""
    path = frame[frame.rfind("(") + 1 :].rstrip(")")
    head, _, line = path.rpartition(":")
    return head if head and line.isdigit() else path


def frame_group(frame: str, root: str = "") -> str:
    """The library a py-spy frame belongs to, by its file's path."""
    path = frame_path(frame)
    if "site-packages/" in path:
        package = path.split("site-packages/", 1)[1].split("/", 1)[0].removesuffix(".py")
        return _PACKAGES.get(package, package)
    if "/lib/python3" in path:
        module = path.split("/lib/python3", 1)[1].split("/", 2)[1].removesuffix(".py")
        return _STDLIB.get(module, f"stdlib {module}")
    for folder in ("bot", "handlers", "services"):
        if f"/{folder}/" in path and (not root or path.startswith(root)):
            return f"frontdesk {folder}/"
    return "other"


def _names(frames: list[str]) -> list[str]:
    return [frame.split(" (", 1)[0] for frame in frames]


def _any_path(frames: list[str], *parts: str) -> bool:
    return any(part in frame_path(frame) for frame in frames for part in parts)


# Inclusive buckets: a sample counts towards each whose test its stack passes (they overlap).
INCLUSIVE: tuple[tuple[str, Callable[[list[str]], bool]], ...] = (
    (
        "SQL: SQLAlchemy + asyncpg (incl. their socket writes)",
        lambda f: _any_path(f, "site-packages/sqlalchemy/", "site-packages/asyncpg/"),
    ),
    (
        "  of which the pool's pre-ping (a round trip at each checkout)",
        lambda f: "AsyncAdapt_asyncpg_connection._async_ping" in _names(f),
    ),
    (
        "Redis: redis-py (FSM storage, lock, limiter)",
        lambda f: _any_path(f, "site-packages/redis/"),
    ),
    ("  of which the Telegram limiter (limits)", lambda f: _any_path(f, "site-packages/limits/")),
    ("Bot API calls: aiogram's session", lambda f: "AiohttpSession.make_request" in _names(f)),
    (
        "Update parsing: Update.model_validate of the webhook's JSON",
        lambda f: (
            "Dispatcher.feed_raw_update" in _names(f) and "Dispatcher.feed_update" not in _names(f)
        ),
    ),
    (
        "Sync filters run in threads (aiogram's to_thread) and the threads",
        lambda f: "to_thread" in _names(f) or "Thread._bootstrap" in _names(f),
    ),
    (
        "pydantic building schemas at run time",
        lambda f: any(n in ("traverse_schema", "complete_model_class") for n in _names(f)),
    ),
    ("logging", lambda f: _any_path(f, "/logging/")),
    (
        "socket writes (send: the kernel's loopback TCP)",
        lambda f: _names(f)[-1] == "_SelectorSocketTransport.write",
    ),
)


# A leaf in a socket write is mostly a process waiting for the CPU: on loopback, send() wakes the
# peer (PostgreSQL, Redis, the emulator), which preempts the sender; py-spy samples it as busy
# while the process's utime + stime do not grow (its kernel share stays ~10 %).
OFF_CPU_LEAVES = ("_SelectorSocketTransport.write",)


@dataclass
class Profile:
    total: int = 0  # all samples
    on_cpu: int = 0  # without those whose leaf is in OFF_CPU_LEAVES
    by_leaf: list[tuple[str, int]] = field(default_factory=list)  # on-CPU, by library
    inclusive: dict[str, int] = field(default_factory=dict)  # on-CPU
    inclusive_all: dict[str, int] = field(default_factory=dict)  # all samples
    by_function: list[tuple[str, int]] = field(default_factory=list)  # innermost frontdesk frame


def summarize_collapsed(lines: Iterable[str], root: str = "") -> Profile:
    """py-spy's raw (collapsed) output: "frame;frame;…;leaf count" a line."""
    profile = Profile()
    by_leaf: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    inclusive_all: Counter[str] = Counter()
    by_function: Counter[str] = Counter()
    for line in lines:
        stack, _, count_text = line.rstrip().rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        profile.total += count
        tests = [label for label, test in INCLUSIVE if test(frames)]
        for label in tests:
            inclusive_all[label] += count
        if frames[-1].split(" (", 1)[0] in OFF_CPU_LEAVES:
            continue
        profile.on_cpu += count
        by_leaf[frame_group(frames[-1], root)] += count
        for label in tests:
            inclusive[label] += count
        own = [
            frame
            for frame in frames
            if frame_group(frame, root).startswith("frontdesk ")
            and not frame_path(frame).endswith(("/bot/cli.py", "/bot/__main__.py"))
        ]
        if own:
            name, path = own[-1].split(" (", 1)[0], frame_path(own[-1])
            by_function[f"{name} ({'/'.join(path.split('/')[-2:])})"] += count
        else:
            by_function["(no frontdesk frame: event loop, aiohttp, aiogram's dispatch)"] += count
    profile.by_leaf = by_leaf.most_common()
    profile.inclusive = dict(inclusive)
    profile.inclusive_all = dict(inclusive_all)
    profile.by_function = by_function.most_common()
    return profile
