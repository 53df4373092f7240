"""The platform linking a merchant, as the e2e tests drive it: POST /api/links on the running
bot's HTTP server, then `/start <token>` in the merchant's chat."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

import aiohttp
from sqlalchemy import update

from services.db.engine import create_engine, create_sessionmaker
from services.db.models import LinkToken
from services.links import hash_token

API_KEY = "e2e-platform-key-0123456789"
API_ENV = {"PLATFORM_API_KEY": API_KEY}


def store(
    store_id: str, plan: str, role: str, *, email: str = "anna@example.com", name: str = ""
) -> dict[str, str]:
    domain = f"shop-{store_id}.example.com"
    return {
        "store_id": store_id,
        "name": name or domain,
        "domain": domain,
        "plan": plan,
        "role": role,
        "email": email,
    }


async def call_api(
    base_url: str,
    method: str,
    path: str,
    *,
    json: dict[str, Any] | None = None,
    headers: dict[str, str] | None = None,
) -> tuple[int, Any]:
    """One call of the platform API; (status, JSON body or None)."""
    async with (
        aiohttp.ClientSession() as http,
        http.request(
            method,
            base_url + path,
            json=json,
            headers={"X-Api-Key": API_KEY} if headers is None else headers,
        ) as response,
    ):
        body = await response.json() if response.content_type == "application/json" else None
        return response.status, body


async def request_link(base_url: str, payload: dict[str, str]) -> str:
    """The platform asks for a link; returns the token of the t.me link it got."""
    status, body = await call_api(base_url, "POST", "/api/links", json=payload)
    assert status == 201, body
    match = re.fullmatch(r"https://t\.me/frontdesk_e2e_bot\?start=([A-Za-z0-9_-]{43})", body["url"])
    assert match and match.group(1) == body["token"], body
    return str(body["token"])


async def expire(database_url: str, token: str, at: datetime) -> None:
    """Time passes for one link: it expires at `at`."""
    engine = create_engine(database_url)
    try:
        async with create_sessionmaker(engine)() as session:
            await session.execute(
                update(LinkToken)
                .where(LinkToken.token_hash == hash_token(token))
                .values(expires_at=at)
            )
            await session.commit()
    finally:
        await engine.dispose()


async def wait_for_log(
    log: Callable[[], str], predicate: Callable[[str], bool], timeout: float = 10
) -> str:
    """Waits until the bot's log satisfies `predicate` (log lines are not emulator events)."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate(text := log()):
        if asyncio.get_running_loop().time() > deadline:
            raise TimeoutError(f"log condition not met within {timeout}s:\n{text[-3000:]}")
        await asyncio.sleep(0.05)
    return text
