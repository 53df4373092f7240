"""Load benchmark: frontdesk against a bare aiogram echo bot, both real processes in webhook mode
against the project's Bot API emulator; prints figures next to issue 11's targets.

    .venv/bin/python benchmarks/bench_load.py            # full run, ~6 min on 2 cores
    .venv/bin/python benchmarks/bench_load.py --quick    # ~1.5 min
    .venv/bin/python benchmarks/bench_load.py --profile /tmp/frontdesk.txt   # + py-spy profile

Needs PostgreSQL (127.0.0.1:5432, trust; the bench re-creates database `frontdesk_bench`) and
Redis (127.0.0.1:6379, database 11, flushed). The emulator and the simulated merchants run in
this process; their CPU is not the bots'. For each N concurrent merchants each bot gets the same
sequence of update kinds (message, 2 presses, 2 messages, 3 presses), in interleaved repetitions
(echo, frontdesk, echo, frontdesk, …): frontdesk's merchants walk the whole wizard (/new, type,
category, subject, description, Done, files skipped, Send) and wait for the registration notice.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import math
import os
import secrets
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import redis.asyncio as aioredis

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.loadstats import (  # noqa: E402
    INCLUSIVE,
    Verdict,
    at_least,
    at_most,
    busy_time,
    cpu_seconds,
    cpu_times,
    metric_total,
    percentile,
    rss_bytes,
    summarize_collapsed,
)
from bot.sandbox.telegram_emulator import ChatMessage, SimUser, TelegramEmulator  # noqa: E402

FRONTDESK_TOKEN = "7100001:bench-frontdesk-token"
ECHO_TOKEN = "7100002:bench-echo-token"
BOT_USERNAME = "frontdesk_bench_bot"
API_KEY = "bench-platform-key-0123456789"
FSM_PREFIX = "fsm"
FRONTDESK_MERCHANTS = 6_000_001  # first user id; the echo bot's chats are in their own emulator
ECHO_MERCHANTS = 7_000_001

# What the bot shows in Russian (tests/helpers/wizard.py has both languages).
TECHNICAL = "Технический вопрос"
SYSTEM_ERROR = "Ошибка в работе платформы"
SUBJECT_PROMPT = "Напишите <b>тему</b>"
DESCRIPTION_PROMPT = "Опишите проблему"
DONE = "✅ Готово"
SKIP = "Пропустить »"
SEND = "✅ Отправить"
ACCEPTED = "Обращение принято"
REGISTERED = "зарегистрировано в официальной тикетной системе под номером"
LINKED = "привязан к магазину"
SUBJECT = "Ошибка 500 при оформлении заказа"
SHORT_DESCRIPTION = "Шаги: добавить товар в корзину, нажать «Оформить». Видна ошибка 500."
_PARAGRAPH = (
    "Покупатели не могут оформить заказ: после нажатия кнопки «Оформить» страница долго "
    "загружается, а затем показывает ошибку 500. Проблема появилась вчера вечером, после "
    "обновления темы оформления; в мобильной версии сайта то же самое. "
)
LONG_DESCRIPTION = (_PARAGRAPH * (3500 // len(_PARAGRAPH) + 1))[:3500]
LONG_EVERY = 4  # every 4th merchant describes the problem in 3,500 characters

# Issue 11's targets (measured on this machine, in one run).
TARGET_RATIO = 0.5
TARGET_P99_FACTOR = 2.0
TARGET_CPU_MS = 4.0
TARGET_TWO_PROCESSES = 1.5
TARGET_REDIS_BYTES = 2048


@dataclass(frozen=True)
class Plan:
    sizes: tuple[int, ...]
    repetitions: int
    walks_alone: int  # walks one after the other at N = 1 (each repetition)
    redis_wizards: int  # K merchants stopped after the long description
    two_processes_n: int
    two_processes_reps: int
    step_timeout: float
    notice_timeout: float


FULL = Plan((1, 50, 200), 3, 10, 20, 200, 1, 30.0, 60.0)
QUICK = Plan((1, 50), 1, 5, 5, 50, 1, 20.0, 40.0)


# --------------------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def proc_cpu(pid: int) -> float:
    try:
        return cpu_seconds(Path(f"/proc/{pid}/stat").read_text())
    except (OSError, ValueError):
        return math.nan


def proc_system(pid: int) -> float:
    """stime alone: the kernel's share (loopback TCP to PostgreSQL, Redis, the emulator)."""
    try:
        return cpu_times(Path(f"/proc/{pid}/stat").read_text())[1]
    except (OSError, ValueError):
        return math.nan


def proc_rss(pid: int) -> int:
    try:
        return rss_bytes(Path(f"/proc/{pid}/status").read_text())
    except OSError:
        return 0


class Process:
    """A bot as a child process; its log in `log_path`."""

    def __init__(
        self, name: str, args: list[str], env: dict[str, str], log_path: Path, cwd: Path = ROOT
    ) -> None:
        self.name, self.args, self.env, self.log_path, self.cwd = name, args, env, log_path, cwd
        self.process: asyncio.subprocess.Process | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    @property
    def exited(self) -> bool:
        return self.process is not None and self.process.returncode is not None

    async def start(self) -> None:
        log = self.log_path.open("ab")
        self.process = await asyncio.create_subprocess_exec(
            *self.args, cwd=self.cwd, env=self.env, stdout=log, stderr=log
        )
        log.close()

    def log_tail(self, chars: int = 3000) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return text[-chars:]

    async def stop(self) -> None:
        if self.process is None or self.process.returncode is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            await asyncio.wait_for(self.process.wait(), 20)
        except TimeoutError:
            self.process.kill()
            await self.process.wait()


async def wait_ready(
    process: Process, url: str, emu: TelegramEmulator, timeout: float = 60
) -> None:
    """Until `url` answers 200 and the emulator has the bot's webhook; RuntimeError if the
    process exits first."""
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as http:
        while time.monotonic() < deadline:
            if process.exited:
                raise RuntimeError(f"{process.name} exited:\n{process.log_tail()}")
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(url) as response:
                    if response.status == 200 and emu.webhook is not None:
                        return
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{process.name} did not become ready:\n{process.log_tail()}")


def listening_inodes(port: int) -> set[str]:
    """Socket inodes listening on 127.0.0.1/0.0.0.0:`port` (IPv4), from /proc/net/tcp."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        fields = line.split()
        if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:
            inodes.add(fields[9])
    return inodes


def socket_inodes(pid: int) -> set[str]:
    inodes = set()
    with contextlib.suppress(OSError):
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            with contextlib.suppress(OSError):
                link = os.readlink(fd)
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
    return inodes


async def wait_listening(process: Process, port: int, timeout: float = 60) -> None:
    """Until the process listens on `port` itself, or exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not process.exited:
        if listening_inodes(port) & socket_inodes(process.pid):
            await asyncio.sleep(1)  # its set_webhook and workers start
            return
        await asyncio.sleep(0.2)
    if not process.exited:
        raise TimeoutError(f"{process.name} never listened on {port}:\n{process.log_tail()}")


async def drop_webhook_connections(emu: TelegramEmulator) -> None:
    """Makes the emulator open new webhook connections. Like Telegram it keeps them open, and the
    ones opened while one process listened all lead to that process; a deployment starts its
    processes before Telegram connects. (The emulator has no public call for this.)"""
    old = emu._http
    assert old is not None
    emu._http = aiohttp.ClientSession(timeout=old.timeout)
    await old.close()


def handled(process: Process) -> int:
    """Updates the process logged as handled (aiogram's INFO line "Update id=… is handled")."""
    if not process.log_path.exists():
        return 0
    return process.log_path.read_text(errors="replace").count(" is handled.")


def checkout_python(checkout: Path) -> str:
    """The checkout's own virtualenv if it has one, else this interpreter."""
    own = checkout / ".venv" / "bin" / "python"
    return str(own) if own.exists() else sys.executable


async def reuse_port_supported(checkout: Path) -> bool:
    """Whether the checkout's Settings know WEB_REUSE_PORT (issue 11 point 2, branch wt/multi)."""
    probe = await asyncio.create_subprocess_exec(
        checkout_python(checkout),
        "-c",
        "from bot.config import Settings; print('web_reuse_port' in Settings.model_fields)",
        cwd=checkout,
        stdout=asyncio.subprocess.PIPE,
    )
    out, _ = await probe.communicate()
    return out.strip() == b"True"


# --------------------------------------------------------------------------- chats


class Chats:
    """Routes what the bots do in each chat (the emulator's observers) to the merchant waiting
    for it, with the time the emulator saw it: a step's latency is from the update posted to
    the bot's answer observed by the emulator."""

    def __init__(self, emu: TelegramEmulator) -> None:
        self._waiting: dict[int, list[tuple[Callable[[ChatMessage, bool], bool], Any]]] = {}
        emu.observers.append(self._observe)

    def _observe(self, record: ChatMessage, changed: bool) -> None:
        if not record.from_bot:
            return
        now = time.perf_counter()
        waiting = self._waiting.get(record.chat_id)
        if not waiting:
            return
        for entry in list(waiting):
            predicate, future = entry
            if not future.done() and predicate(record, changed):
                future.set_result((record, now))
                waiting.remove(entry)

    def expect(
        self, chat_id: int, predicate: Callable[[ChatMessage, bool], bool]
    ) -> asyncio.Future[tuple[ChatMessage, float]]:
        future: asyncio.Future[tuple[ChatMessage, float]] = (
            asyncio.get_running_loop().create_future()
        )
        self._waiting.setdefault(chat_id, []).append((predicate, future))
        return future

    def forget(self, chat_id: int) -> None:
        for _, future in self._waiting.pop(chat_id, []):
            future.cancel()


def new_message(check: Callable[[ChatMessage], bool] = lambda _: True) -> Any:
    return lambda record, changed: not changed and check(record)


def edit_of(message_id: int, check: Callable[[ChatMessage], bool] = lambda _: True) -> Any:
    return lambda record, changed: changed and record.message_id == message_id and check(record)


def has_button(text: str) -> Callable[[ChatMessage], bool]:
    return lambda record: any(button.text == text for button in record.buttons)


def containing(fragment: str) -> Callable[[ChatMessage], bool]:
    return lambda record: fragment in (record.raw_text or record.content)


@dataclass
class Rep:
    """One repetition of one bot at one N."""

    bot: str
    n: int
    updates: int = 0
    walks: int = 0
    failed: int = 0
    latencies: list[float] = field(default_factory=list)
    by_step: dict[int, list[float]] = field(default_factory=dict)  # the walk's 1st, 2nd… step
    # Each step's (posted, answered or given up): updates/s counts the time at least one was
    # open, so the wait for registration notices between walks (N = 1) is not counted.
    intervals: list[tuple[float, float]] = field(default_factory=list)
    wall: float = 0.0
    cpu: float = 0.0  # of the bot's process(es), over the repetition and its notices
    system: float = 0.0  # of which in the kernel
    driver_cpu: float = 0.0  # of this process: the emulator and the simulated merchants
    statements: float = math.nan
    api_calls: int = 0
    api_methods: Counter[str] = field(default_factory=Counter)
    errors: list[str] = field(default_factory=list)


class Merchant:
    """One simulated person in one emulator; counts updates and times each step."""

    def __init__(
        self, emu: TelegramEmulator, chats: Chats, user: SimUser, rep: Rep, timeout: float
    ) -> None:
        self.emu, self.chats, self.user, self.rep, self.timeout = emu, chats, user, rep, timeout
        self.last_answer = 0.0
        self.step = 0  # of the current walk

    async def _step(self, post: Callable[[], object], predicate: Any) -> ChatMessage:
        future = self.chats.expect(self.user.id, predicate)
        began = time.perf_counter()
        post()
        self.rep.updates += 1
        try:
            record, at = await asyncio.wait_for(future, self.timeout)
        except TimeoutError:
            self.chats.forget(self.user.id)
            self.rep.intervals.append((began, time.perf_counter()))
            raise TimeoutError(f"no answer within {self.timeout}s") from None
        self.rep.latencies.append(at - began)
        self.step += 1
        self.rep.by_step.setdefault(self.step, []).append(at - began)
        self.rep.intervals.append((began, at))
        self.last_answer = at
        return record

    async def say(self, text: str, predicate: Any) -> ChatMessage:
        return await self._step(lambda: self.emu.send_text(self.user, text), predicate)

    async def press(self, message: ChatMessage, text: str, predicate: Any) -> ChatMessage:
        return await self._step(
            lambda: self.emu.press_button(self.user, message, text=text), predicate
        )


async def frontdesk_to_description(merchant: Merchant, description: str) -> ChatMessage:
    """/new → (store) → type → category → subject → description: the status with "Done"."""
    first = await merchant.say("/new", new_message(lambda m: bool(m.buttons)))
    types = first
    if not has_button(TECHNICAL)(first):  # several stores: the first one
        types = await merchant.press(
            first, first.buttons[0].text, edit_of(first.message_id, has_button(TECHNICAL))
        )
    categories = await merchant.press(
        types, TECHNICAL, edit_of(types.message_id, has_button(SYSTEM_ERROR))
    )
    await merchant.press(
        categories, SYSTEM_ERROR, edit_of(categories.message_id, containing(SUBJECT_PROMPT))
    )
    await merchant.say(SUBJECT, new_message(containing(DESCRIPTION_PROMPT)))
    return await merchant.say(description, new_message(has_button(DONE)))


async def frontdesk_walk(merchant: Merchant, description: str, notice_timeout: float) -> float:
    """The whole wizard; returns when the registration notice arrived (the last step's answer
    time is `merchant.last_answer`)."""
    status = await frontdesk_to_description(merchant, description)
    files = await merchant.press(status, DONE, edit_of(status.message_id, has_button(SKIP)))
    review = await merchant.press(files, SKIP, edit_of(files.message_id, has_button(SEND)))
    notice = merchant.chats.expect(merchant.user.id, new_message(containing(REGISTERED)))
    await merchant.press(review, SEND, new_message(containing(ACCEPTED)))
    answered = merchant.last_answer
    try:
        await asyncio.wait_for(notice, notice_timeout)
    except TimeoutError:
        merchant.chats.forget(merchant.user.id)
        raise TimeoutError(f"no registration notice within {notice_timeout}s") from None
    return answered


async def echo_walk(merchant: Merchant, description: str, _notice_timeout: float) -> float:
    """The same update kinds as the wizard: message, press, press, message, message, press,
    press, press."""
    answer = await merchant.say("/new", new_message(has_button("Next")))
    for _ in range(2):
        answer = await merchant.press(answer, "Next", edit_of(answer.message_id))
    await merchant.say(SUBJECT, new_message(has_button("Next")))
    answer = await merchant.say(description, new_message(has_button("Next")))
    for _ in range(3):
        answer = await merchant.press(answer, "Next", edit_of(answer.message_id))
    return merchant.last_answer


# --------------------------------------------------------------------------- the bench


@dataclass
class Bot:
    name: str
    emu: TelegramEmulator
    chats: Chats
    processes: list[Process]
    base_url: str
    first_user: int
    walk: Callable[[Merchant, str, float], Any]
    metrics: bool = False  # reads frontdesk_db_statements_total from /metrics

    def user(self, index: int) -> SimUser:
        return SimUser(
            id=self.first_user + index,
            first_name="Анна",
            username=f"shop{index}",
            language_code="ru",
        )

    @property
    def pids(self) -> list[int]:
        return [process.pid for process in self.processes if not process.exited]


async def scrape_statements(http: aiohttp.ClientSession, bot: Bot) -> float:
    if not bot.metrics or len(bot.processes) != 1:
        return math.nan  # with two processes on one port a scrape reaches either
    async with http.get(bot.base_url + "/metrics") as response:
        return metric_total(await response.text(), "frontdesk_db_statements_total")


async def run_rep(
    http: aiohttp.ClientSession, bot: Bot, n: int, plan: Plan, *, walks_each: int = 1
) -> Rep:
    rep = Rep(bot.name, n)
    cpu_before = sum(proc_cpu(pid) for pid in bot.pids)
    system_before = sum(proc_system(pid) for pid in bot.pids)
    driver_before = proc_cpu(os.getpid())
    calls_before = len(bot.emu.calls)
    statements_before = await scrape_statements(http, bot)

    async def one(index: int) -> None:
        merchant = Merchant(bot.emu, bot.chats, bot.user(index), rep, plan.step_timeout)
        for walk in range(walks_each):
            description = (
                LONG_DESCRIPTION if (index + walk) % LONG_EVERY == 0 else SHORT_DESCRIPTION
            )
            rep.walks += 1
            merchant.step = 0
            try:
                await bot.walk(merchant, description, plan.notice_timeout)
            except Exception as error:  # a failed walk: counted, and the merchant goes on
                rep.failed += 1
                if len(rep.errors) < 5:
                    rep.errors.append(f"merchant {index}: {type(error).__name__}: {error}")

    await asyncio.gather(*(one(index) for index in range(n)))
    rep.wall = busy_time(rep.intervals)
    rep.cpu = sum(proc_cpu(pid) for pid in bot.pids) - cpu_before
    rep.system = sum(proc_system(pid) for pid in bot.pids) - system_before
    rep.driver_cpu = proc_cpu(os.getpid()) - driver_before
    calls = bot.emu.calls[calls_before:]
    # Requests the bot made; a method it returned in a webhook response costs it no request.
    rep.api_calls = sum(1 for call in calls if call.via == "http")
    rep.api_methods = Counter(
        call.method if call.via == "http" else f"{call.method} (in response)" for call in calls
    )
    rep.statements = await scrape_statements(http, bot) - statements_before
    return rep


async def link_merchants(http: aiohttp.ClientSession, bot: Bot, count: int) -> None:
    """The platform's path: POST /api/links, then `/start <token>` in the merchant's chat."""

    async def link(index: int) -> None:
        payload = {
            "store_id": f"bench-{index}",
            "name": f"Магазин {index}",
            "domain": f"shop-{index}.example.com",
            "plan": "premium",
            "role": "owner",
            "email": f"owner{index}@example.com",
        }
        async with http.post(
            bot.base_url + "/api/links", json=payload, headers={"X-Api-Key": API_KEY}
        ) as response:
            body = await response.json()
            if response.status != 201:
                raise RuntimeError(f"POST /api/links: {response.status} {body}")
        rep = Rep("link", 1)
        merchant = Merchant(bot.emu, bot.chats, bot.user(index), rep, 30)
        await merchant.say(f"/start {body['token']}", new_message(containing(LINKED)))

    for start in range(0, count, 50):
        await asyncio.gather(*(link(index) for index in range(start, min(start + 50, count))))


async def redis_per_wizard(bot: Bot, redis_url: str, first: int, count: int) -> dict[str, Any]:
    """K merchants stop after the long description; the FSM keys of their chats in Redis,
    MEMORY USAGE summed ÷ K (the per-chat lock, transient, left out)."""
    rep = Rep("redis", count)
    merchants = [
        Merchant(bot.emu, bot.chats, bot.user(first + index), rep, 30) for index in range(count)
    ]
    outcomes = await asyncio.gather(
        *(frontdesk_to_description(m, LONG_DESCRIPTION) for m in merchants),
        return_exceptions=True,
    )
    # Only the merchants who got as far as the description count (a failed one has no draft).
    merchants = [
        m
        for m, outcome in zip(merchants, outcomes, strict=True)
        if not isinstance(outcome, BaseException)
    ]
    count = len(merchants) or 1
    client = aioredis.from_url(redis_url)
    total, keys, ttls, names = 0, 0, set(), set()
    try:
        for merchant in merchants:
            pattern = f"{FSM_PREFIX}:*{merchant.user.id}*"
            async for key in client.scan_iter(match=pattern, count=1000):
                name = key.decode()
                if name.endswith(":lock") or name.startswith(f"{FSM_PREFIX}:limits"):
                    continue  # the per-chat lock and the limiter's windows are not the draft
                names.add(name.replace(str(merchant.user.id), "<chat>"))
                total += int(await client.memory_usage(key, samples=0) or 0)
                ttls.add(int(await client.ttl(key)))
                keys += 1
    finally:
        await client.aclose()
    return {
        "bytes_per_wizard": total / count,
        "keys_per_wizard": keys / count,
        "ttl_seconds": sorted(ttls),
        "keys": sorted(names),
        "description_chars": len(LONG_DESCRIPTION),
    }


@dataclass
class Summary:
    bot: str
    n: int
    updates: int
    walks: int
    failed: int
    ups: float
    p50: float
    p95: float
    p99: float
    step_p50: dict[int, float]  # ms, by the step's place in the walk
    cpu_ms: float
    kernel_share: float
    driver_cpu_ms: float
    sql: float
    api: float
    rss_mb: float
    errors: list[str]
    api_methods: dict[str, float] = field(default_factory=dict)  # calls per update

    @classmethod
    def of(cls, reps: list[Rep], rss: int) -> Summary:
        updates = sum(r.updates for r in reps)
        wall = sum(r.wall for r in reps)
        latencies = [value for r in reps for value in r.latencies]
        return cls(
            bot=reps[0].bot,
            n=reps[0].n,
            updates=updates,
            walks=sum(r.walks for r in reps),
            failed=sum(r.failed for r in reps),
            ups=updates / wall if wall else math.nan,
            p50=percentile(latencies, 50) * 1000,
            p95=percentile(latencies, 95) * 1000,
            p99=percentile(latencies, 99) * 1000,
            step_p50={
                step: percentile([v for r in reps for v in r.by_step.get(step, [])], 50) * 1000
                for step in sorted({step for r in reps for step in r.by_step})
            },
            cpu_ms=sum(r.cpu for r in reps) / updates * 1000 if updates else math.nan,
            kernel_share=sum(r.system for r in reps) / sum(r.cpu for r in reps) * 100
            if sum(r.cpu for r in reps)
            else math.nan,
            driver_cpu_ms=sum(r.driver_cpu for r in reps) / updates * 1000 if updates else math.nan,
            sql=sum(r.statements for r in reps) / updates if updates else math.nan,
            api=sum(r.api_calls for r in reps) / updates if updates else math.nan,
            rss_mb=rss / 2**20,
            errors=[e for r in reps for e in r.errors][:5],
            api_methods={
                method: count / updates
                for method, count in sum((r.api_methods for r in reps), Counter()).most_common()
            }
            if updates
            else {},
        )


def fmt(value: float, digits: int = 1) -> str:
    return "—" if value is None or math.isnan(value) else f"{value:,.{digits}f}"


def report(
    summaries: dict[tuple[str, int], Summary],
    plan: Plan,
    two: dict[str, Any],
    redis: dict[str, Any],
    machine: str,
) -> list[Verdict]:
    print(f"\n== Load benchmark ({machine})")
    rows = (
        ("updates/s", "ups", 1),
        ("step p50, ms", "p50", 1),
        ("step p95, ms", "p95", 1),
        ("step p99, ms", "p99", 1),
        ("CPU ms / update", "cpu_ms", 2),
        ("  of which kernel, %", "kernel_share", 0),
        ("SQL statements / update", "sql", 2),
        ("Bot API requests / update", "api", 2),
        ("RSS, MB", "rss_mb", 0),
        ("driver+emulator CPU ms/upd", "driver_cpu_ms", 2),
    )
    verdicts: list[Verdict] = []
    for n in plan.sizes:
        echo, front = summaries[("echo", n)], summaries[("frontdesk", n)]
        print(
            f"\nN = {n} ({front.walks} frontdesk walks, {front.updates} updates; "
            f"{echo.walks} echo walks, {echo.updates} updates)"
        )
        print(f"  {'':<26}{'echo':>12}{'frontdesk':>12}{'ratio':>9}")
        for label, attr, digits in rows:
            e, f = getattr(echo, attr), getattr(front, attr)
            ratio = f / e if e and not math.isnan(e) and not math.isnan(f) else math.nan
            print(f"  {label:<26}{fmt(e, digits):>12}{fmt(f, digits):>12}{fmt(ratio, 2):>9}")
        for method in (
            "sendMessage",
            "editMessageText",
            "answerCallbackQuery",
            "answerCallbackQuery (in response)",
        ):
            e, f = echo.api_methods.get(method, 0.0), front.api_methods.get(method, 0.0)
            print(f"  {'  ' + method:<26}{fmt(e, 2):>12}{fmt(f, 2):>12}")
        print(f"  {'failed walks':<26}{echo.failed:>12}{front.failed:>12}")
        for summary in (echo, front):
            steps = "  ".join(f"{step}: {fmt(ms, 0)}" for step, ms in summary.step_p50.items())
            print(f"  {summary.bot} p50 by step, ms: {steps}")
        for error in front.errors + echo.errors:
            print(f"    ! {error}")
        ratio = front.ups / echo.ups if echo.ups else math.nan
        if n >= 50:
            verdicts.append(
                Verdict(
                    f"N={n}: frontdesk updates/s ≥ {TARGET_RATIO}× echo",
                    f"{fmt(ratio, 2)}×",
                    at_least(ratio, TARGET_RATIO),
                )
            )
        p99_ratio = front.p99 / echo.p99 if echo.p99 else math.nan
        verdicts.append(
            Verdict(
                f"N={n}: step p99 ≤ {TARGET_P99_FACTOR:g}× echo's",
                f"{fmt(front.p99, 0)} ms vs {fmt(echo.p99, 0)} ms = {fmt(p99_ratio, 1)}×",
                at_most(p99_ratio, TARGET_P99_FACTOR),
            )
        )
        verdicts.append(
            Verdict(
                f"N={n}: ≤ {TARGET_CPU_MS:g} ms CPU per update",
                f"{fmt(front.cpu_ms, 2)} ms",
                at_most(front.cpu_ms, TARGET_CPU_MS),
            )
        )
    top = max(plan.sizes)
    verdicts.append(
        Verdict(
            f"N={top}: zero failed walks",
            str(summaries[("frontdesk", top)].failed),
            summaries[("frontdesk", top)].failed == 0,
        )
    )
    print(f"\n1 vs 2 frontdesk processes (N = {plan.two_processes_n}, WEB_REUSE_PORT=true)")
    if two.get("available"):
        one_s, two_s = two["one"], two["two"]
        factor = two_s.ups / one_s.ups if one_s.ups else math.nan
        print(f"  {'':<26}{'1 process':>12}{'2 processes':>13}")
        for label, attr, digits in rows[:6]:
            print(
                f"  {label:<26}{fmt(getattr(one_s, attr), digits):>12}"
                f"{fmt(getattr(two_s, attr), digits):>13}"
            )
        print(f"  {'failed walks':<26}{one_s.failed:>12}{two_s.failed:>13}")
        print(f"  updates handled by each process (their logs): {two['handled']}")
        verdicts.append(
            Verdict(
                f"2 processes ≥ {TARGET_TWO_PROCESSES}× one",
                f"{fmt(factor, 2)}×",
                at_least(factor, TARGET_TWO_PROCESSES),
            )
        )
    else:
        print(f"  2 processes: not available ({two.get('reason')})")
        verdicts.append(
            Verdict(f"2 processes ≥ {TARGET_TWO_PROCESSES}× one", "not available", None)
        )
    print(
        f"\nRedis per wizard in progress ({redis['description_chars']}-character Russian "
        f"description, K = {plan.redis_wizards}): {fmt(redis['bytes_per_wizard'], 0)} bytes in "
        f"{fmt(redis['keys_per_wizard'], 1)} keys {redis['keys']}; "
        f"TTL {redis['ttl_seconds']} (-1: none)"
    )
    verdicts.append(
        Verdict(
            f"≤ {TARGET_REDIS_BYTES} bytes of Redis per wizard",
            f"{fmt(redis['bytes_per_wizard'], 0)} bytes",
            at_most(redis["bytes_per_wizard"], TARGET_REDIS_BYTES),
        )
    )
    print("\nTargets (issue 11):")
    for verdict in verdicts:
        print(f"  [{verdict.mark:>6}] {verdict.target:<44} {verdict.value}")
    return verdicts


def progress(label: str, rep: Rep) -> None:
    ups = rep.updates / rep.wall if rep.wall else math.nan
    cpu = rep.cpu / rep.updates * 1000 if rep.updates else math.nan
    print(
        f"{label} {ups:8.1f} updates/s  {cpu:6.2f} CPU ms/update  failed {rep.failed}/{rep.walks}",
        flush=True,
    )


def load_line() -> str:
    load = os.getloadavg()
    return f"load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}"


def machine_line() -> str:
    load = os.getloadavg()
    return f"{os.cpu_count()} CPUs, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f} at start"


async def fresh_database(admin_url: str, name: str) -> None:
    connection = await asyncpg.connect(admin_url)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


def frontdesk_env(
    emu: TelegramEmulator, port: int, database_url: str, redis_url: str, *, reuse: bool
) -> dict[str, str]:
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "BOT_TOKEN": FRONTDESK_TOKEN,
        "TELEGRAM_API_URL": emu.base_url,
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "QUEUE": "builtin",
        "WEB_HOST": "127.0.0.1",
        "WEB_PORT": str(port),
        "WEBHOOK_BASE_URL": f"http://127.0.0.1:{port}",
        "WEBHOOK_SECRET": "bench-webhook-secret-" + secrets.token_hex(8),
        "PLATFORM_API_KEY": API_KEY,
        "BOT_USERNAME": BOT_USERNAME,
        # Simulated merchants press at machine speed: Telegram's one message a second per chat,
        # 30 a second overall, and the flood control would measure waiting, not work. The
        # limiter still runs (its Redis windows are part of the cost of an update).
        "TELEGRAM_CHAT_RATE": "1000 per second",
        "TELEGRAM_GLOBAL_RATE": "100000 per second",
        "FLOOD_MESSAGES": "100000",
        "TICKETS_PER_HOUR": "100000",
    }
    if reuse:
        env["WEB_REUSE_PORT"] = "true"
    return env


def frontdesk_process(name: str, env: dict[str, str], logs: Path, checkout: Path) -> Process:
    args = [checkout_python(checkout), "-m", "bot", "run", "--webhook"]
    return Process(name, args, env, logs / f"{name}.log", cwd=checkout)


async def start_frontdesk(
    name: str, env: dict[str, str], logs: Path, emu: TelegramEmulator, checkout: Path
) -> Process:
    process = frontdesk_process(name, env, logs, checkout)
    await process.start()
    await wait_ready(process, f"http://127.0.0.1:{env['WEB_PORT']}/healthz", emu)
    return process


def find_py_spy() -> str | None:
    beside = Path(sys.executable).parent / "py-spy"
    return str(beside) if beside.exists() else shutil.which("py-spy")


def read_lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


async def profile_rep(
    http: aiohttp.ClientSession, bot: Bot, plan: Plan, out: Path
) -> dict[str, Any] | None:
    """One more frontdesk repetition at N = 50 under py-spy (not in the figures above)."""
    spy = find_py_spy()
    if spy is None:
        print("\nprofile: py-spy not found (.venv/bin/pip install py-spy)")
        return None
    args = [spy, "record", "--pid", str(bot.pids[0]), "--rate", "250", "--format", "raw"]
    args += ["--full-filenames", "--nonblocking", "--output", str(out)]
    recorder = await asyncio.create_subprocess_exec(
        *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    await asyncio.sleep(1.0)
    rep = await run_rep(http, bot, min(50, max(plan.sizes)), plan)
    recorder.send_signal(signal.SIGINT)
    _, stderr = await recorder.communicate()
    lines = read_lines(out)
    if not lines:
        print(f"\nprofile: py-spy wrote nothing: {stderr.decode(errors='replace')[-500:]}")
        return None
    profile = summarize_collapsed(lines, str(ROOT))
    total, on_cpu = profile.total, profile.on_cpu or 1
    off = total - profile.on_cpu
    print(
        f"\nProfile of frontdesk (py-spy at 250 Hz, N = {rep.n}, {rep.updates} updates, "
        f"{total} samples; {off} of them ({off / total:.0%}) "
        "in socket writes, mostly waiting for the CPU after waking the peer: left out below)"
    )
    print("  on CPU, by the library running (self time):")
    for group, count in profile.by_leaf[:12]:
        print(f"    {count / on_cpu:6.1%}  {group}")
    print("  on CPU, inclusive (the sample's stack passes through; they overlap):")
    for label, _ in INCLUSIVE[:-1]:
        print(f"    {profile.inclusive.get(label, 0) / on_cpu:6.1%}  {label}")
    print("  on CPU, by the innermost frontdesk function:")
    for name, count in profile.by_function[:12]:
        print(f"    {count / on_cpu:6.1%}  {name}")
    return {
        "file": str(out),
        "updates": rep.updates,
        "samples": total,
        "on_cpu": profile.on_cpu,
        "by_leaf": profile.by_leaf,
        "inclusive": profile.inclusive,
        "inclusive_all": profile.inclusive_all,
        "by_function": profile.by_function[:30],
    }


async def main(args: argparse.Namespace) -> int:
    plan = QUICK if args.quick else FULL
    if args.sizes:
        sizes = tuple(sorted(set(args.sizes)))
        plan = replace(plan, sizes=sizes, two_processes_n=max(sizes))
    if args.repetitions:
        plan = replace(plan, repetitions=args.repetitions)
    machine = machine_line()
    logs = Path(tempfile.mkdtemp(prefix="frontdesk-bench-"))
    print(f"logs in {logs}; {machine}", flush=True)
    database_url = args.postgres.rsplit("/", 1)[0] + "/" + args.database
    await fresh_database(args.postgres, args.database)
    client = aioredis.from_url(args.redis)
    await client.flushdb()
    await client.aclose()
    reuse = await reuse_port_supported(args.checkout)
    port, echo_port = free_port(), free_port()
    summaries: dict[tuple[str, int], Summary] = {}
    two: dict[str, Any] = {}
    processes: list[Process] = []
    async with (
        TelegramEmulator(token=FRONTDESK_TOKEN, bot_username=BOT_USERNAME) as front_emu,
        TelegramEmulator(token=ECHO_TOKEN, bot_username="echo_bench_bot") as echo_emu,
        aiohttp.ClientSession() as http,
    ):
        try:
            env = frontdesk_env(
                front_emu,
                port,
                "postgresql+asyncpg://" + database_url.split("://", 1)[1],
                args.redis,
                reuse=reuse,
            )
            front_process = await start_frontdesk(
                "frontdesk-1", env, logs, front_emu, args.checkout
            )
            processes.append(front_process)
            echo_env = {
                "PATH": env["PATH"],
                "BOT_TOKEN": ECHO_TOKEN,
                "TELEGRAM_API_URL": echo_emu.base_url,
                "WEB_PORT": str(echo_port),
                "WEBHOOK_SECRET": "bench-echo-secret-0123456789",
            }
            echo_process = Process(
                "echo",
                [sys.executable, str(ROOT / "benchmarks" / "echo_bot.py")],
                echo_env,
                logs / "echo.log",
            )
            await echo_process.start()
            processes.append(echo_process)
            await wait_ready(echo_process, f"http://127.0.0.1:{echo_port}/healthz", echo_emu)
            front = Bot(
                "frontdesk",
                front_emu,
                Chats(front_emu),
                [front_process],
                f"http://127.0.0.1:{port}",
                FRONTDESK_MERCHANTS,
                frontdesk_walk,
                metrics=True,
            )
            echo = Bot(
                "echo",
                echo_emu,
                Chats(echo_emu),
                [echo_process],
                f"http://127.0.0.1:{echo_port}",
                ECHO_MERCHANTS,
                echo_walk,
            )
            top = max(plan.sizes)
            began = time.monotonic()
            await link_merchants(http, front, top + plan.redis_wizards)
            print(
                f"linked {top + plan.redis_wizards} merchants in {time.monotonic() - began:.1f} s"
            )
            # Warm-up (not measured): connections, caches, lazy imports.
            await run_rep(http, echo, 10, plan)
            await run_rep(http, front, 10, plan)
            rss = {("echo", n): 0 for n in plan.sizes} | {("frontdesk", n): 0 for n in plan.sizes}
            reps: dict[tuple[str, int], list[Rep]] = {key: [] for key in rss}
            for n in plan.sizes:
                walks_each = plan.walks_alone if n == 1 else 1
                for repetition in range(plan.repetitions):
                    for bot in (echo, front):
                        rep = await run_rep(http, bot, n, plan, walks_each=walks_each)
                        reps[(bot.name, n)].append(rep)
                        rss[(bot.name, n)] = max(rss[(bot.name, n)], *map(proc_rss, bot.pids))
                        progress(f"N={n:<4} rep {repetition + 1} {bot.name:<9}", rep)
                for name in ("echo", "frontdesk"):
                    summaries[(name, n)] = Summary.of(reps[(name, n)], rss[(name, n)])

            redis = await redis_per_wizard(front, args.redis, top, plan.redis_wizards)

            profile = None
            if args.profile is not None:
                profile = await profile_rep(http, front, plan, args.profile)

            # 1 vs 2 processes, back to back at the same N.
            n2 = plan.two_processes_n
            if not reuse:
                two = {"available": False, "reason": "WEB_REUSE_PORT unsupported"}
            else:
                one_reps = []
                for _ in range(plan.two_processes_reps):
                    one_reps.append(await run_rep(http, front, n2, plan))
                    progress(f"N={n2:<4} 1 process         ", one_reps[-1])
                second = frontdesk_process("frontdesk-2", env, logs, args.checkout)
                await second.start()
                processes.append(second)
                await wait_listening(second, port)
                await drop_webhook_connections(front_emu)
                if second.exited:
                    two = {
                        "available": False,
                        "reason": "WEB_REUSE_PORT unsupported: "
                        + second.log_tail(300).strip().splitlines()[-1],
                    }
                else:
                    front.processes.append(second)
                    handled_before = [handled(p) for p in front.processes]
                    two_reps = []
                    for _ in range(plan.two_processes_reps):
                        two_reps.append(await run_rep(http, front, n2, plan))
                        progress(f"N={n2:<4} 2 processes       ", two_reps[-1])
                    shares = [
                        handled(p) - before
                        for p, before in zip(front.processes, handled_before, strict=True)
                    ]
                    two = {
                        "available": True,
                        "one": Summary.of(one_reps, max(map(proc_rss, front.pids[:1]))),
                        "two": Summary.of(two_reps, sum(map(proc_rss, front.pids))),
                        "handled": shares,
                    }
        finally:
            for process in reversed(processes):
                await process.stop()
    machine += f"; {load_line()} at the end"
    verdicts = report(summaries, plan, two, redis, machine)
    if args.json is not None:
        out = {
            "machine": machine,
            "plan": plan.__dict__,
            "summaries": [s.__dict__ for s in summaries.values()],
            "two_processes": {
                k: (v.__dict__ if isinstance(v, Summary) else v) for k, v in two.items()
            },
            "redis": redis,
            "profile": profile,
            "targets": [v.__dict__ | {"mark": v.mark} for v in verdicts],
        }
        args.json.write_text(json.dumps(out, indent=2, ensure_ascii=False, default=str))
        print(f"\nfigures written to {args.json}")
    print(f"bots' logs: {logs}")
    return 0


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="frontdesk vs a bare aiogram echo bot under N concurrent merchants "
        "(webhook mode, PostgreSQL + Redis, builtin queue), against issue 11's targets.",
    )
    parser.add_argument(
        "--quick", action="store_true", help="N = 1 and 50, one repetition (~1.5 min)"
    )
    parser.add_argument(
        "--sizes", type=int, nargs="+", help="the N to measure (default 1 50 200; quick 1 50)"
    )
    parser.add_argument("--repetitions", type=int, help="per N and bot (default 3; quick 1)")
    parser.add_argument(
        "--postgres",
        default="postgresql://postgres@127.0.0.1:5432/postgres",
        help="a PostgreSQL server's admin URL (the bench drops and creates --database there)",
    )
    parser.add_argument("--database", default="frontdesk_bench", help="re-created on each run")
    parser.add_argument(
        "--redis", default="redis://127.0.0.1:6379/11", help="a Redis database, flushed first"
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="also profile frontdesk with py-spy during one more N=50 repetition; "
        "py-spy's collapsed stacks go to this file",
    )
    parser.add_argument(
        "--checkout",
        type=Path,
        default=ROOT,
        help="run frontdesk from this checkout (its .venv if it has one); default: this one",
    )
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    return parser.parse_args(argv)


if __name__ == "__main__":
    sys.exit(asyncio.run(main(parse_args())))
