"""Filing as the tests drive it: a request submitted by a merchant and a worker with a clock the
test moves (what the merchant is told is read from the notice outbox: tests/helpers/notices.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import merchants, tickets
from services.filing import FilingWorker
from services.outbox import RetryPolicy
from services.regulation import load_regulation
from services.tickets import Draft

REGULATION = load_regulation()
DRAFT = Draft("technical", "system_error", "Ошибка 500 в корзине", "Шаги: открыть корзину.")


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class AheadClock:
    """Real time plus `ahead`: a worker that must see rows written at real time as due, however
    long a slow peer (RT under a loaded suite) took to write them."""

    def __init__(self, ahead: timedelta) -> None:
        self.ahead = ahead

    def __call__(self) -> datetime:
        return datetime.now(UTC) + self.ahead


async def register_merchant(session: AsyncSession) -> merchants.MerchantProfile:
    return await merchants.get_or_register(
        session, telegram_id=7_000_000_123, full_name="Анна Петрова", username="anna"
    )


async def submit_request(
    sessionmaker: async_sessionmaker[AsyncSession], reference: str, draft: Draft = DRAFT
) -> tickets.FiledTicket:
    async with sessionmaker() as session:
        merchant = await register_merchant(session)
        return await tickets.submit(
            session,
            REGULATION.catalog,
            merchant,
            draft,
            reference=reference,
            locale="ru",
            queue_name="builtin",
        )


def filing_worker(sessionmaker, queue, clock=None, **kwargs) -> FilingWorker:  # type: ignore[no-untyped-def]
    return FilingWorker(
        sessionmaker,
        queue,
        REGULATION,
        retry=RetryPolicy(base=timedelta(seconds=2), cap=timedelta(seconds=60)),
        **({"clock": clock} if clock else {}),
        **kwargs,
    )
