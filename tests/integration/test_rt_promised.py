"""The queue shows what the merchant was promised (issue 9, point 5): a ticket filed in the real
Request Tracker carries, as Due, the first-reaction deadline the merchant's Registered notice
names (to the minute), the resolution deadline in a custom field, a priority by plan, the
merchant's e-mail with their name as the requester, and the labels a specialist reads."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import merchants, stores, tickets
from services.db.models import Role
from services.queue.rt import RequestTrackerQueue
from services.tickets import Draft
from tests.helpers.filing import REGULATION, filing_worker
from tests.helpers.notices import written
from tests.integration.rt_fixture import RtServer, rt_server

__all__ = ["rt_server"]

pytestmark = [pytest.mark.rt]

REFUND = Draft("administrative", "refund", "Вернуть оплату тарифа", "Списали дважды.")
ERROR = Draft("technical", "system_error", "Ошибка 500 в корзине", "Шаги: открыть корзину.")


async def _file(
    sessionmaker: async_sessionmaker[AsyncSession],
    queue: RequestTrackerQueue,
    *,
    plan: str,
    draft: Draft,
) -> tuple[Any, str, str, str]:
    """Files one request of a new merchant with a store on ``plan``; (the Registered notice,
    the merchant's e-mail, name, and the store's domain)."""
    tag = uuid.uuid4().hex[:10]
    email, name, domain = f"owner-{tag}@example.com", f"Анна Петрова {tag}", f"shop-{tag}.example"
    telegram_id = 7_100_000_000 + int(tag[:6], 16)
    async with sessionmaker() as session:
        merchant = await merchants.get_or_register(
            session, telegram_id=telegram_id, full_name=name, username=None
        )
        store_id = await stores.add_store(session, domain=domain, name=f"Цветы {tag}", plan=plan)
        await stores.grant(
            session, merchant_id=merchant.id, store_id=store_id, role=Role.OWNER, email=email
        )
        await session.commit()
        filed = await tickets.submit(
            session,
            REGULATION.catalog,
            merchant,
            draft,
            reference=f"promised-{tag}",
            locale="ru",
            queue_name="rt",
            store_id=store_id,
            plan=plan,
        )
    assert await filing_worker(sessionmaker, queue).run_once() == 1
    [notice] = [n for n in await written(sessionmaker, "registered") if n.ticket_id == filed.id]
    return notice.body, email, name, domain


async def _rt(rt: RtServer, path: str) -> Any:
    auth = {"Authorization": aiohttp.encode_basic_auth(rt.admin_user, rt.admin_password)}
    async with (
        aiohttp.ClientSession(headers=auth) as session,
        session.get(f"{rt.base_url}/REST/2.0/{path}") as response,
    ):
        assert response.status == 200, await response.text()
        return await response.json()


def _minute(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(second=0, microsecond=0)


def _parse(value: str) -> datetime:
    return datetime.fromisoformat(value.replace("Z", "+00:00"))


async def test_rt_shows_the_deadline_priority_requester_and_labels_the_merchant_was_told(
    sessionmaker: async_sessionmaker[AsyncSession], rt_server: RtServer
) -> None:
    queue = RequestTrackerQueue(rt_server.base_url, rt_server.queue, token=rt_server.token)
    try:
        refund, email, name, domain = await _file(sessionmaker, queue, plan="premium", draft=REFUND)
        error, *_ = await _file(sessionmaker, queue, plan="site", draft=ERROR)
        free, *_ = await _file(sessionmaker, queue, plan="free", draft=ERROR)
        queued = await queue.get_ticket(refund.number)
    finally:
        await queue.close()

    ticket = await _rt(rt_server, f"ticket/{refund.number}")
    # Due is the first reaction the merchant was told, to the minute; the port reads it back.
    assert _minute(_parse(ticket["Due"])) == _minute(refund.first_reaction_due)
    assert queued.due is not None and _minute(queued.due) == _minute(refund.first_reaction_due)
    fields = {f["name"]: f["values"] for f in ticket["CustomFields"]}
    # Refunds: done within 10 working days, in a field of its own.
    assert refund.resolution_due is not None
    [resolution] = fields["ResolutionDue"]
    assert _minute(_parse(resolution)) == _minute(refund.resolution_due)
    # Labels as the merchant chose them, codes beside them for the adapters.
    assert fields["RequestTypeLabel"] == ["Административный вопрос"]
    assert fields["CategoryLabel"] == ["Возврат денежных средств"]
    assert fields["RequestType"] == ["administrative"] and fields["Category"] == ["refund"]
    assert fields["Store"] == [domain] and fields["StoreName"][0].startswith("Цветы ")
    assert fields["Plan"] == ["premium"]

    # The requester: the registered e-mail, with the merchant's name.
    [requestor] = ticket["Requestor"]
    user = await _rt(rt_server, f"user/{requestor['id']}")
    assert (user["EmailAddress"], user["RealName"]) == (email, name)

    # Priority by plan: premium above site above free.
    site = await _rt(rt_server, f"ticket/{error.number}")
    lowest = await _rt(rt_server, f"ticket/{free.number}")
    assert int(ticket["Priority"]) > int(site["Priority"]) > int(lowest["Priority"])
    assert _minute(_parse(site["Due"])) == _minute(error.first_reaction_due)
    # No resolution deadline in the regulation for a technical request: the field stays empty.
    assert not {f["name"]: f["values"] for f in site["CustomFields"]}.get("ResolutionDue")
    assert error.first_reaction_due - error.registered_at == timedelta(hours=24)
