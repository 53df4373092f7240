"""Linking on SQLite and PostgreSQL: the platform's link, its single use, the store's updates,
unlinking, the registered e-mail as the queue's requester, and the platform's HTTP API."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.api import PlatformApi
from services import intake, links, merchants, stores, tickets
from services.db.models import LinkToken, Membership, Role, Store
from services.queue.builtin import BuiltinQueue
from services.regulation import IntakePolicy, load_regulation
from tests.helpers.filing import DRAFT, Clock, filing_worker

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=15)
KEY = "platform-key-0123456789abcdef"


def store_link(
    external_id: str = "1001", plan: str = "premium", role: Role = Role.OWNER, **kw: str
) -> links.StoreLink:
    fields = {"name": "Цветы", "domain": "flowers.example.com", "email": "anna@example.com"}
    fields.update(kw)
    return links.StoreLink(external_id=external_id, plan=plan, role=role, **fields)


async def merchant(session: AsyncSession, telegram_id: int = 7_100_000_001) -> int:
    profile = await merchants.get_or_register(
        session, telegram_id=telegram_id, full_name="Анна", username=None
    )
    return profile.id


async def test_link_is_stored_hashed_and_redeemed_once_with_role_and_email(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        issued = await links.issue(session, store_link(), ttl=TTL, now=NOW)
        assert issued.expires_at == NOW + TTL
        # Nowhere in the database is the token itself.
        rows = (await session.execute(select(LinkToken.token_hash, LinkToken.email))).all()
        assert rows == [(links.hash_token(issued.token), "anna@example.com")]
        store = await session.scalar(select(Store).where(Store.external_id == "1001"))
        assert store is not None and (store.plan, store.domain) == (
            "premium",
            "flowers.example.com",
        )

        merchant_id = await merchant(session)
        redeemed = await links.redeem(session, issued.token, merchant_id=merchant_id, now=NOW)
        assert redeemed.linked and redeemed.store is not None
        assert (redeemed.store.name, redeemed.store.role) == ("Цветы", Role.OWNER)
        assert [(s.domain, s.role) for s in await stores.stores_of(session, merchant_id)] == [
            ("flowers.example.com", Role.OWNER)
        ]
        requester = await merchants.requester_of(
            session, merchant_id=merchant_id, telegram_id=7_100_000_001, store_id=issued.store_id
        )
        assert requester == "anna@example.com"

        again = await links.redeem(session, issued.token, merchant_id=merchant_id, now=NOW)
        assert again.outcome is links.Redeemed.USED
        other = await merchant(session, 7_100_000_002)
        stolen = await links.redeem(session, issued.token, merchant_id=other, now=NOW)
        assert stolen.outcome is links.Redeemed.USED
        assert await stores.stores_of(session, other) == []


async def test_expired_and_unknown_tokens_link_nobody(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        issued = await links.issue(session, store_link(), ttl=TTL, now=NOW)
        merchant_id = await merchant(session)
        late = NOW + TTL + timedelta(seconds=1)
        expired = await links.redeem(session, issued.token, merchant_id=merchant_id, now=late)
        assert expired.outcome is links.Redeemed.EXPIRED
        for token in (links.new_token(), "not a token", issued.token[:-1] + "x"):
            answer = await links.redeem(session, token, merchant_id=merchant_id, now=NOW)
            assert answer.outcome is links.Redeemed.UNKNOWN
        assert await stores.stores_of(session, merchant_id) == []
        # Still unused: a late try does not spend it (it is simply no good any more).
        assert (await session.scalar(select(LinkToken.used_at))) is None
        # A month later, issuing a link sweeps the spent ones away.
        await links.issue(session, store_link(), ttl=TTL, now=NOW + timedelta(days=31))
        assert await session.scalar(select(func.count()).select_from(LinkToken)) == 1


async def test_two_redeems_of_one_token_at_once_link_one_account(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        issued = await links.issue(session, store_link(), ttl=TTL, now=NOW)
        first, second = (
            await merchant(session, 7_100_000_011),
            await merchant(session, 7_100_000_012),
        )

    async def redeem(merchant_id: int) -> links.Redemption:
        async with sessionmaker() as session:
            return await links.redeem(session, issued.token, merchant_id=merchant_id, now=NOW)

    outcomes = await asyncio.gather(redeem(first), redeem(second))
    assert sorted(o.outcome for o in outcomes) == [links.Redeemed.LINKED, links.Redeemed.USED]
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Membership)) == 1


async def test_a_merchant_may_have_several_stores_with_different_roles(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        merchant_id = await merchant(session)
        for link in (
            store_link("1", "premium", Role.ADMIN, domain="a.example.com", name="A"),
            store_link("2", "free", Role.OWNER, domain="b.example.com", name="B"),
        ):
            issued = await links.issue(session, link, ttl=TTL, now=NOW)
            assert (
                await links.redeem(session, issued.token, merchant_id=merchant_id, now=NOW)
            ).linked
        linked = await stores.stores_of(session, merchant_id)
        assert [(s.name, s.plan, s.role) for s in linked] == [
            ("A", "premium", Role.ADMIN),
            ("B", "free", Role.OWNER),
        ]


async def test_platform_updates_a_store_by_its_own_id_and_adopts_a_store_entered_by_hand(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        by_hand = await stores.add_store(
            session, domain="flowers.example.com", name="old", plan="site"
        )
        issued = await links.issue(session, store_link(), ttl=TTL, now=NOW)
        assert issued.store_id == by_hand
        await links.issue(session, store_link(plan="combo", name="Цветы и травы"), ttl=TTL, now=NOW)
        await links.update_store(session, "1001", plan="free")
        store = await session.get(Store, by_hand)
        assert store is not None
        await session.refresh(store)
        assert (store.name, store.plan, store.external_id) == ("Цветы и травы", "free", "1001")
        with pytest.raises(links.StoreNotFound):
            await links.update_store(session, "no-such-store", plan="free")
        with pytest.raises(links.LinkError):
            await links.issue(session, store_link("9999"), ttl=TTL, now=NOW)  # domain taken


async def test_unlinking_by_email_or_telegram_id_removes_the_membership_and_the_email(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        anna, boris = await merchant(session, 7_100_000_021), await merchant(session, 7_100_000_022)
        for who, email in ((anna, "anna@example.com"), (boris, "boris@example.com")):
            issued = await links.issue(session, store_link(email=email), ttl=TTL, now=NOW)
            await links.redeem(session, issued.token, merchant_id=who, now=NOW)
        unused = await links.issue(session, store_link(email="anna@example.com"), ttl=TTL, now=NOW)

        assert await links.unlink_member(session, "1001", "ANNA@example.com") == 1
        assert await links.unlink_member(session, "1001", "7100000022") == 1
        assert await links.unlink_member(session, "1001", "7100000022") == 0
        with pytest.raises(links.StoreNotFound):
            await links.unlink_member(session, "404", "anna@example.com")
        for who in (anna, boris):
            assert await stores.stores_of(session, who) == []
        # Linked to nothing: the store's tickets would carry the placeholder requester again.
        requester = await merchants.requester_of(
            session, merchant_id=anna, telegram_id=7_100_000_021, store_id=unused.store_id
        )
        assert requester == "telegram-7100000021@frontdesk.invalid"
        # Anna's link not yet used is void with her membership.
        again = await links.redeem(session, unused.token, merchant_id=anna, now=NOW)
        assert again.outcome is links.Redeemed.UNKNOWN


async def test_the_queue_requester_is_the_registered_email(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        merchant_id = await merchant(session)
        issued = await links.issue(session, store_link(), ttl=TTL, now=NOW)
        await links.redeem(session, issued.token, merchant_id=merchant_id, now=NOW)
        profile = await merchants.get_or_register(
            session, telegram_id=7_100_000_001, full_name="Анна", username=None
        )
        await tickets.submit(
            session,
            load_regulation().catalog,
            profile,
            DRAFT,
            reference=tickets.new_reference(),
            locale="ru",
            queue_name="builtin",
            store_id=issued.store_id,
            plan="premium",
        )
    queue = BuiltinQueue(sessionmaker)
    assert await filing_worker(sessionmaker, queue, Clock(datetime.now(UTC))).run_once() == 1
    async with sessionmaker() as session:
        requester = await session.scalar(text("SELECT requester FROM queue_tickets"))
    assert requester == "anna@example.com"


async def test_each_store_s_tickets_carry_the_email_registered_at_that_store(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """One person, store A as a@… and then store B as b@…: A's ticket still goes to the queue
    as a@… (the e-mail is the membership's, not the merchant's), B's as b@…, a ticket of no
    store as the placeholder."""
    async with sessionmaker() as session:
        merchant_id = await merchant(session)
        store_ids = []
        for external_id, domain, email in (
            ("A", "a.example.com", "a@example.com"),
            ("B", "b.example.com", "b@example.com"),
        ):
            link = store_link(external_id, domain=domain, name=external_id, email=email)
            issued = await links.issue(session, link, ttl=TTL, now=NOW)
            assert (
                await links.redeem(session, issued.token, merchant_id=merchant_id, now=NOW)
            ).linked
            store_ids.append(issued.store_id)
        profile = await merchants.get_or_register(
            session, telegram_id=7_100_000_001, full_name="Анна", username=None
        )
        references = {}
        for store_id in (*store_ids, None):
            reference = tickets.new_reference()
            await tickets.submit(
                session,
                load_regulation().catalog,
                profile,
                DRAFT,
                reference=reference,
                locale="ru",
                queue_name="builtin",
                store_id=store_id,
                plan="premium" if store_id else None,
            )
            references[reference] = store_id
    queue = BuiltinQueue(sessionmaker)
    assert await filing_worker(sessionmaker, queue, Clock(datetime.now(UTC))).run_once() == 3
    async with sessionmaker() as session:
        rows = dict(
            (await session.execute(text("SELECT reference, requester FROM queue_tickets"))).all()
        )
    assert {references[ref]: requester for ref, requester in rows.items()} == {
        store_ids[0]: "a@example.com",
        store_ids[1]: "b@example.com",
        None: "telegram-7100000001@frontdesk.invalid",
    }


async def test_tickets_per_hour_refuse_the_next_request_and_count_from_the_tickets(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    regulation = load_regulation(intake=IntakePolicy(tickets_per_hour=2))
    async with sessionmaker() as session:
        profile = await merchants.get_or_register(
            session, telegram_id=7_100_000_031, full_name="Анна", username=None
        )
        now = datetime.now(UTC)
        assert (
            await intake.wait_before_filing(session, regulation, merchant_id=profile.id, now=now)
            is None
        )
        for _ in range(2):
            await tickets.submit(
                session,
                regulation.catalog,
                profile,
                DRAFT,
                reference=tickets.new_reference(),
                locale="ru",
                queue_name="builtin",
            )
        now = datetime.now(UTC)
        wait = await intake.wait_before_filing(session, regulation, merchant_id=profile.id, now=now)
        assert wait is not None and timedelta(minutes=59) < wait <= timedelta(hours=1)
        later = now + timedelta(hours=1, seconds=1)
        assert (
            await intake.wait_before_filing(session, regulation, merchant_id=profile.id, now=later)
            is None
        )


# --- the HTTP API ---------------------------------------------------------------------------


@pytest.fixture
async def api(sessionmaker: async_sessionmaker[AsyncSession]) -> AsyncIterator[TestClient]:
    async def username() -> str:
        return "frontdesk_bot"

    web_app = web.Application()
    PlatformApi(
        sessionmaker,
        api_key=KEY,
        plans=load_regulation().policies.plans,
        link_ttl=TTL,
        bot_username=username,
    ).register(web_app)
    async with TestClient(TestServer(web_app)) as client:
        yield client


LINK = {
    "store_id": "1001",
    "name": "Цветы",
    "domain": "flowers.example.com",
    "plan": "premium",
    "role": "admin",
    "email": "anna@example.com",
}


async def test_api_issues_a_link_with_either_header(api: TestClient) -> None:
    for headers in ({"X-Api-Key": KEY}, {"Authorization": f"Bearer {KEY}"}):
        response = await api.post("/api/links", json=LINK, headers=headers)
        assert response.status == 201
        body = await response.json()
        assert body["url"] == f"https://t.me/frontdesk_bot?start={body['token']}"
        assert datetime.fromisoformat(body["expires_at"]) > datetime.now(UTC)


async def test_api_lists_the_fields_it_refuses(api: TestClient) -> None:
    bad = {**LINK, "plan": "gold", "email": "nobody"}
    response = await api.post("/api/links", json=bad, headers={"X-Api-Key": KEY})
    assert response.status == 422
    fields = {problem["field"] for problem in (await response.json())["fields"]}
    assert fields == {"plan", "email"}
    response = await api.post("/api/links", data=b"{not json", headers={"X-Api-Key": KEY})
    assert response.status == 400


async def test_api_updates_a_store_and_unlinks_a_member(
    api: TestClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    headers = {"X-Api-Key": KEY}
    token = (await (await api.post("/api/links", json=LINK, headers=headers)).json())["token"]
    async with sessionmaker() as session:
        merchant_id = await merchant(session)
        await links.redeem(session, token, merchant_id=merchant_id, now=datetime.now(UTC))

    response = await api.put("/api/stores/1001", json={"plan": "free"}, headers=headers)
    assert response.status == 200 and (await response.json())["plan"] == "free"
    assert (await api.put("/api/stores/1001", json={}, headers=headers)).status == 422
    assert (await api.put("/api/stores/404", json={"plan": "free"}, headers=headers)).status == 404
    async with sessionmaker() as session:
        assert [s.plan for s in await stores.stores_of(session, merchant_id)] == ["free"]

    path = "/api/stores/1001/members/anna@example.com"
    assert (await api.delete(path, headers=headers)).status == 204
    assert (await api.delete(path, headers=headers)).status == 404
    async with sessionmaker() as session:
        assert await stores.stores_of(session, merchant_id) == []


async def test_api_unlinks_by_the_email_registered_at_each_store(
    api: TestClient, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    """Linked to store A as a@… and then to B as b@…: DELETE A's member a@… unlinks A (it
    answered 404 when the e-mail was the merchant's, b@… by then), and B's b@… unlinks B;
    neither e-mail unlinks the other store."""
    headers = {"X-Api-Key": KEY}
    async with sessionmaker() as session:
        merchant_id = await merchant(session)
    for external_id, email in (("A", "a@example.com"), ("B", "b@example.com")):
        body = {**LINK, "store_id": external_id, "domain": f"{external_id.lower()}.example.com"}
        body.update(name=external_id, email=email)
        token = (await (await api.post("/api/links", json=body, headers=headers)).json())["token"]
        async with sessionmaker() as session:
            await links.redeem(session, token, merchant_id=merchant_id, now=datetime.now(UTC))

    assert (await api.delete("/api/stores/A/members/b@example.com", headers=headers)).status == 404
    assert (await api.delete("/api/stores/B/members/a@example.com", headers=headers)).status == 404
    assert (await api.delete("/api/stores/A/members/A@Example.com", headers=headers)).status == 204
    async with sessionmaker() as session:
        assert [s.name for s in await stores.stores_of(session, merchant_id)] == ["B"]
    assert (await api.delete("/api/stores/B/members/b@example.com", headers=headers)).status == 204
    async with sessionmaker() as session:
        assert await stores.stores_of(session, merchant_id) == []


async def test_api_is_off_without_a_key(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async def username() -> str:
        return "frontdesk_bot"

    web_app = web.Application()
    PlatformApi(
        sessionmaker, api_key=None, plans=("free",), link_ttl=TTL, bot_username=username
    ).register(web_app)
    async with TestClient(TestServer(web_app)) as client:
        response = await client.post("/api/links", json=LINK, headers={"X-Api-Key": KEY})
        assert response.status == 404
        assert "PLATFORM_API_KEY" in (await response.json())["error"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"X-Api-Key": "wrong-key-0123456789"}, {"Authorization": "Bearer " + KEY[:-1]}],
    ids=["no key", "wrong key", "almost the key"],
)
async def test_api_call_without_the_right_key_is_refused_logged_and_changes_nothing(
    api: TestClient,
    sessionmaker: async_sessionmaker[AsyncSession],
    caplog: pytest.LogCaptureFixture,
    headers: dict[str, str],
) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.api"):
        for call in (
            api.post("/api/links", json=LINK, headers=headers),
            api.put("/api/stores/1001", json={"plan": "free"}, headers=headers),
            api.delete("/api/stores/1001/members/anna@example.com", headers=headers),
        ):
            response = await call
            assert response.status == 401
            assert await response.json() == {"error": "unauthorized"}
    refusals = [r for r in caplog.records if "without a valid key" in r.getMessage()]
    assert len(refusals) == 3
    for record in caplog.records:
        assert KEY[:-1] not in record.getMessage() and "wrong-key" not in record.getMessage()
    async with sessionmaker() as session:
        assert await session.scalar(select(func.count()).select_from(Store)) == 0
        assert await session.scalar(select(func.count()).select_from(LinkToken)) == 0


# --- the command line -----------------------------------------------------------------------


async def _frontdesk(database_url: str, *args: str, **env: str) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "bot",
        *args,
        env={
            "PATH": os.environ.get("PATH", ""),
            "BOT_TOKEN": "1:x",
            "DATABASE_URL": database_url,
            **env,
        },
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    stdout, stderr = await asyncio.wait_for(process.communicate(), 120)
    assert process.returncode is not None
    return process.returncode, stdout.decode(), stderr.decode()


LINK_ARGS = (
    "link",
    "--store-id=1001",
    "--name=Цветы",
    "--domain=flowers.example.com",
    "--plan=premium",
    "--role=owner",
    "--email=anna@example.com",
)


async def test_frontdesk_link_prints_a_single_use_link(
    database_url: str, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    code, out, err = await _frontdesk(database_url, *LINK_ARGS, BOT_USERNAME="frontdesk_bot")
    assert code == 0, err
    match = re.fullmatch(r"https://t\.me/frontdesk_bot\?start=([A-Za-z0-9_-]{43})\n", out)
    assert match, out
    async with sessionmaker() as session:
        merchant_id = await merchant(session)
        redeemed = await links.redeem(
            session, match.group(1), merchant_id=merchant_id, now=datetime.now(UTC)
        )
        assert redeemed.linked and redeemed.store is not None
        assert redeemed.store.plan == "premium"


async def test_frontdesk_link_needs_the_bot_username_and_valid_fields(database_url: str) -> None:
    code, out, err = await _frontdesk(database_url, *LINK_ARGS)
    assert code == 2 and out == "" and "BOT_USERNAME" in err
    code, out, err = await _frontdesk(
        database_url, *LINK_ARGS[:-1], "--email=nobody", "--bot-username=frontdesk_bot"
    )
    assert code == 2 and out == "" and "--email: must be an e-mail address" in err
