"""The staff registry on SQLite and PostgreSQL: a staff link redeemed once, expired and unknown
links, staff and merchant links never taken for each other, and `frontdesk staff
link|list|remove`."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.cli import main
from services import links, merchants, staff, stores
from services.db.engine import create_engine, create_sessionmaker
from services.db.models import LinkToken, Role, StaffLinkToken, StaffRole

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
TTL = timedelta(minutes=15)
SPECIALIST_TG = 7_200_000_001


async def test_staff_link_is_stored_hashed_and_redeemed_once(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        issued = await staff.issue_link(session, "ivanov", StaffRole.SPECIALIST, ttl=TTL, now=NOW)
        assert issued.expires_at == NOW + TTL
        hashes = list(await session.scalars(select(StaffLinkToken.token_hash)))
        assert hashes == [links.hash_token(issued.token)]

        redeemed = await staff.redeem(session, issued.token, telegram_id=SPECIALIST_TG, now=NOW)
        assert redeemed.outcome is links.Redeemed.LINKED
        assert redeemed.member == staff.Staff("ivanov", StaffRole.SPECIALIST, SPECIALIST_TG, NOW)
        assert await staff.member_of(session, SPECIALIST_TG) == redeemed.member

        again = await staff.redeem(session, issued.token, telegram_id=SPECIALIST_TG, now=NOW)
        assert again.outcome is links.Redeemed.USED
        stolen = await staff.redeem(session, issued.token, telegram_id=7_200_000_002, now=NOW)
        assert stolen.outcome is links.Redeemed.USED
        assert await staff.member_of(session, 7_200_000_002) is None


async def test_expired_and_unknown_staff_links_link_nobody(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        issued = await staff.issue_link(session, "ivanov", StaffRole.LEAD, ttl=TTL, now=NOW)
        late = NOW + TTL + timedelta(seconds=1)
        expired = await staff.redeem(session, issued.token, telegram_id=SPECIALIST_TG, now=late)
        assert expired.outcome is links.Redeemed.EXPIRED
        for token in (links.new_token(), "not a token", issued.token[:-1] + "x"):
            answer = await staff.redeem(session, token, telegram_id=SPECIALIST_TG, now=NOW)
            assert answer.outcome is links.Redeemed.UNKNOWN
        assert await staff.member_of(session, SPECIALIST_TG) is None
        assert await session.scalar(select(StaffLinkToken.used_at)) is None


async def test_a_staff_link_is_never_a_store_link_nor_the_other_way_round(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        profile = await merchants.get_or_register(
            session, telegram_id=SPECIALIST_TG, full_name="Иван", username=None
        )
        staff_link = await staff.issue_link(session, "ivanov", StaffRole.LEAD, ttl=TTL, now=NOW)
        store_link = await links.issue(
            session,
            links.StoreLink("1001", "Цветы", "flowers.example.com", "premium", Role.OWNER, "a@b.c"),
            ttl=TTL,
            now=NOW,
        )
        as_store = await links.redeem(session, staff_link.token, merchant_id=profile.id, now=NOW)
        assert as_store.outcome is links.Redeemed.UNKNOWN
        as_staff = await staff.redeem(session, store_link.token, telegram_id=SPECIALIST_TG, now=NOW)
        assert as_staff.outcome is links.Redeemed.UNKNOWN
        # Neither try spent the other kind's token, nor linked anything.
        assert await stores.stores_of(session, profile.id) == []
        assert await staff.member_of(session, SPECIALIST_TG) is None
        assert await session.scalar(select(LinkToken.used_at)) is None
        assert await session.scalar(select(StaffLinkToken.used_at)) is None


async def test_relinking_replaces_the_account_and_removal_voids_links(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        first = await staff.issue_link(session, "ivanov", StaffRole.SPECIALIST, ttl=TTL, now=NOW)
        await staff.redeem(session, first.token, telegram_id=SPECIALIST_TG, now=NOW)
        # The same person promoted, from a new phone.
        second = await staff.issue_link(session, "ivanov", StaffRole.LEAD, ttl=TTL, now=NOW)
        await staff.redeem(session, second.token, telegram_id=7_200_000_009, now=NOW)
        assert await staff.member_of(session, SPECIALIST_TG) is None
        member = await staff.member_of(session, 7_200_000_009)
        assert member is not None and member.role is StaffRole.LEAD

        unused = await staff.issue_link(session, "ivanov", StaffRole.LEAD, ttl=TTL, now=NOW)
        assert await staff.remove(session, "ivanov", now=NOW)
        assert not await staff.remove(session, "ivanov", now=NOW)
        assert await staff.member_of(session, 7_200_000_009) is None
        assert await staff.list_staff(session) == []
        voided = await staff.redeem(session, unused.token, telegram_id=7_200_000_009, now=NOW)
        assert voided.outcome is links.Redeemed.UNKNOWN
        count = await session.scalar(select(func.count()).select_from(StaffLinkToken))
        assert count == 2  # the used ones stay, to answer "already used"


def test_cli_staff_link_list_remove(
    database_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("BOT_TOKEN", "123456:TEST")
    monkeypatch.setenv("BOT_USERNAME", "frontdesk_test_bot")
    main(["staff", "link", "petrova", "--role", "lead"])
    url = capsys.readouterr().out.strip()
    assert url.startswith("https://t.me/frontdesk_test_bot?start=")
    main(["staff", "link", "ivanov", "--role", "specialist", "--bot-username", "@other_bot"])
    assert capsys.readouterr().out.startswith("https://t.me/other_bot?start=")
    token = url.split("=", 1)[1]

    async def redeem() -> None:
        engine = create_engine(database_url)
        try:
            async with create_sessionmaker(engine)() as session:
                now = datetime.now(UTC)
                answer = await staff.redeem(session, token, telegram_id=SPECIALIST_TG, now=now)
                assert answer.outcome is links.Redeemed.LINKED
        finally:
            await engine.dispose()

    asyncio.run(redeem())
    main(["staff", "list"])
    listed = capsys.readouterr().out.splitlines()
    assert len(listed) == 1 and listed[0].split("\t")[:3] == ["petrova", "lead", str(SPECIALIST_TG)]

    main(["staff", "remove", "petrova"])
    assert "petrova removed" in capsys.readouterr().out
    main(["staff", "list"])
    assert capsys.readouterr().out == ""
    with pytest.raises(SystemExit) as refused:
        main(["staff", "remove", "petrova"])
    assert refused.value.code == 1
    with pytest.raises(SystemExit):
        main(["staff", "link", "ivanov", "--role", "boss"])


def test_staff_cli_does_not_load_aiogram(sqlite_url: str, tmp_path: Path) -> None:
    """Like `frontdesk link`: an operator's command starts in a blink, without the bot."""
    script = (
        "import sys\n"
        "from bot.cli import main\n"
        "main(['staff', 'link', 'ivanov', '--role', 'specialist', '--bot-username', 'b_bot'])\n"
        "main(['staff', 'list'])\n"
        "assert not [m for m in sys.modules if m.startswith('aiogram')], 'aiogram loaded'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        env={"PATH": "/usr/bin:/bin", "BOT_TOKEN": "1:x", "DATABASE_URL": sqlite_url},
        timeout=60,
        cwd=str(tmp_path),
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("https://t.me/b_bot?start=")
