"""Benchmarks of frontdesk's hot paths; prints figures, asserts nothing.

    .venv/bin/python benchmarks/bench_core.py [--postgres postgresql+asyncpg://postgres@127.0.0.1/test]

- SLA: deadlines computed per second for each clock (pure code, on the Russian calendar).
- Filing: requests accepted (ticket + outbox row) and then registered by the filing worker in the
  builtin queue, per second, on SQLite and (if reachable) PostgreSQL; with 1 and 3 workers.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from services import merchants, tickets
from services.db.engine import create_engine, create_sessionmaker, migrate
from services.filing import FilingWorker
from services.queue.builtin import BuiltinQueue
from services.regulation import load_regulation
from services.sla import Clock, add_duration

REGULATION = load_regulation()


def bench_sla(rounds: int = 20_000) -> None:
    start = datetime(2025, 12, 25, 15, 30, tzinfo=UTC)
    calendar = REGULATION.calendar
    for clock, duration in (
        (Clock.CONTINUOUS, timedelta(hours=24)),
        (Clock.WORKING_DAYS, timedelta(hours=24)),
        (Clock.WORKING_DAYS, timedelta(days=10)),
        (Clock.BUSINESS_HOURS, timedelta(hours=27)),
    ):
        began = time.perf_counter()
        for index in range(rounds):
            add_duration(clock, start + timedelta(minutes=37 * index), duration, calendar)
        elapsed = time.perf_counter() - began
        print(f"sla  {clock.value:<15} +{duration!s:<17} {rounds / elapsed:>10,.0f} deadlines/s")


async def bench_filing(url: str, label: str, count: int, workers: int) -> None:
    engine = create_engine(url)
    await migrate(engine)
    maker = create_sessionmaker(engine)
    queue = BuiltinQueue(maker)
    async with maker() as session:
        merchant = await merchants.get_or_register(
            session, telegram_id=900_000_000 + workers, full_name="Bench", username=None
        )
    draft = tickets.Draft("technical", "system_error", "Ошибка 500", "Шаги воспроизведения.")
    latencies: list[float] = []
    began = time.perf_counter()
    for _ in range(count):
        one = time.perf_counter()
        async with maker() as session:
            await tickets.submit(
                session,
                REGULATION.catalog,
                merchant,
                draft,
                reference=uuid.uuid4().hex,
                locale="ru",
                queue_name="builtin",
            )
        latencies.append(time.perf_counter() - one)
    accepted = time.perf_counter() - began
    pool = [FilingWorker(maker, queue, REGULATION, batch=20) for _ in range(workers)]
    began = time.perf_counter()
    while True:
        done = await asyncio.gather(*(worker.run_once() for worker in pool))
        if not any(done):
            break
    filed = time.perf_counter() - began
    await engine.dispose()
    p50 = statistics.median(latencies) * 1000
    p95 = statistics.quantiles(latencies, n=20)[-1] * 1000
    print(
        f"file {label:<10} accept {count / accepted:>7,.0f}/s (p50 {p50:.1f} ms, p95 {p95:.1f} ms)"
        f"   register with {workers} worker(s) {count / filed:>7,.0f}/s"
    )


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--postgres", default="postgresql+asyncpg://postgres@127.0.0.1:5432/test")
    parser.add_argument("--count", type=int, default=500)
    args = parser.parse_args()
    bench_sla()
    with tempfile.TemporaryDirectory() as folder:
        for workers in (1, 3):
            url = f"sqlite+aiosqlite:///{folder}/bench{workers}.sqlite3"
            await bench_filing(url, "sqlite", args.count, workers)
    try:
        import asyncpg

        admin = await asyncpg.connect(args.postgres.replace("+asyncpg", ""))
    except OSError as error:
        print(f"file postgres   skipped: {error}")
        return
    for workers in (1, 3):
        name = f"frontdesk_bench_{uuid.uuid4().hex[:8]}"
        await admin.execute(f'CREATE DATABASE "{name}"')
        try:
            url = args.postgres.rsplit("/", 1)[0] + "/" + name
            await bench_filing(url, "postgres", args.count, workers)
        finally:
            await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
    await admin.close()


if __name__ == "__main__":
    asyncio.run(main())
