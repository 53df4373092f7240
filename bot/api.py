"""The platform's API: links, store updates, unlinking (services/links.py does the work).

    POST   /api/links                          a single-use link for a store's user → 201
    PUT    /api/stores/{store_id}              the store's new name and/or plan       → 200
    DELETE /api/stores/{store_id}/members/{m}  unlink a user (m: e-mail or Telegram id) → 204

`{store_id}` is the store's id on the platform. Every call carries PLATFORM_API_KEY, as
`X-Api-Key: <key>` or `Authorization: Bearer <key>`; a missing or wrong key answers 401 and
says nothing more (logged as a WARNING, without the key). Unset PLATFORM_API_KEY, the API is off:
every call answers 404. Bodies are JSON, checked field by field: 422 lists what is wrong.
"""

from __future__ import annotations

import hmac
import json
import logging
import re
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services import links
from services.db.base import utcnow
from services.db.models import Role

logger = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
# Letters of any script (цветы.рф as well as its punycode), digits and inner hyphens.
_DOMAIN = re.compile(r"^(?=.{1,253}$)([^\W_]([\w-]{0,61}[^\W_])?\.)+[^\W_][\w-]{0,62}$")
_EXTERNAL_ID = r"^[A-Za-z0-9._:-]{1,64}$"

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class LinkBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    store_id: str = Field(pattern=_EXTERNAL_ID)
    name: str = Field(min_length=1, max_length=255)
    domain: str = Field(max_length=253)
    plan: str
    role: Role
    email: str = Field(max_length=320)

    @field_validator("store_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: Any) -> Any:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        value = value.lower().rstrip(".")
        if not _DOMAIN.fullmatch(value):
            raise ValueError("must be a domain name, e.g. shop.example.com")
        return value

    @field_validator("email")
    @classmethod
    def _email(cls, value: str) -> str:
        if not _EMAIL.fullmatch(value):
            raise ValueError("must be an e-mail address")
        return value

    @field_validator("plan")
    @classmethod
    def _plan(cls, value: str, info: ValidationInfo) -> str:
        return _known_plan(value, info)


class StoreBody(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    name: str | None = Field(default=None, min_length=1, max_length=255)
    plan: str | None = None

    @field_validator("plan")
    @classmethod
    def _plan(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _known_plan(value, info)


def _known_plan(value: str, info: ValidationInfo) -> str:
    plans: tuple[str, ...] = (info.context or {}).get("plans", ())
    if value not in plans:
        raise ValueError(f"must be one of {', '.join(plans)}")
    return value


def _error(status: int, message: str, **extra: Any) -> web.Response:
    return web.json_response({"error": message, **extra}, status=status)


class PlatformApi:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        *,
        api_key: str | None,
        plans: tuple[str, ...],
        link_ttl: timedelta,
        bot_username: Callable[[], Awaitable[str]],
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._key = api_key.encode() if api_key else None
        self._plans = plans
        self._ttl = link_ttl
        self._bot_username = bot_username
        self._clock = clock

    def register(self, web_app: web.Application) -> None:
        web_app.router.add_post("/api/links", self._guarded(self.create_link))
        web_app.router.add_put("/api/stores/{store_id}", self._guarded(self.update_store))
        web_app.router.add_delete(
            "/api/stores/{store_id}/members/{member}", self._guarded(self.unlink_member)
        )

    def _guarded(self, handler: Handler) -> Handler:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if self._key is None:
                return _error(404, "the platform API is off (PLATFORM_API_KEY is not set)")
            if not self._authorized(request):
                logger.warning(
                    "platform API: %s %s from %s without a valid key: refused",
                    request.method,
                    request.path,
                    request.remote,
                )
                return _error(401, "unauthorized")
            return await handler(request)

        return guarded

    def _authorized(self, request: web.Request) -> bool:
        assert self._key is not None
        given = request.headers.get("X-Api-Key")
        if given is None:
            scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
            given = credentials.strip() if scheme.lower() == "bearer" else ""
        # Constant time: the answer's timing says nothing about how much of the key matched.
        return hmac.compare_digest(given.encode(errors="replace"), self._key)

    async def _body(self, request: web.Request, model: type[BaseModel]) -> BaseModel | web.Response:
        if request.content_length is not None and request.content_length > MAX_BODY:
            return _error(413, f"the body is limited to {MAX_BODY} bytes")
        raw = await request.read()
        if len(raw) > MAX_BODY:
            return _error(413, f"the body is limited to {MAX_BODY} bytes")
        try:
            data = json.loads(raw)
        except ValueError:
            return _error(400, "the body must be JSON")
        try:
            return model.model_validate(data, context={"plans": self._plans})
        except ValidationError as error:
            fields = [
                {
                    "field": ".".join(str(part) for part in problem["loc"]) or "body",
                    "message": problem["msg"].removeprefix("Value error, "),
                }
                for problem in error.errors()
            ]
            return _error(422, "invalid request", fields=fields)

    async def create_link(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request, LinkBody)
        if isinstance(body, web.Response):
            return body
        assert isinstance(body, LinkBody)
        link = links.StoreLink(
            external_id=body.store_id,
            name=body.name,
            domain=body.domain,
            plan=body.plan,
            role=body.role,
            email=body.email,
        )
        # Known before the token is written: a link is never issued that cannot be given out.
        username = await self._bot_username()
        async with self._sessionmaker() as session:
            try:
                issued = await links.issue(session, link, ttl=self._ttl, now=self._clock())
            except links.LinkError:
                return _error(409, "another store already has this domain")
        logger.info("platform API: link issued for store %s (%s)", body.store_id, body.role)
        return web.json_response(
            {
                "url": links.link_url(username, issued.token),
                "token": issued.token,
                "expires_at": issued.expires_at.isoformat(),
            },
            status=201,
        )

    async def update_store(self, request: web.Request) -> web.StreamResponse:
        body = await self._body(request, StoreBody)
        if isinstance(body, web.Response):
            return body
        assert isinstance(body, StoreBody)
        if body.name is None and body.plan is None:
            return _error(
                422, "invalid request", fields=[{"field": "body", "message": "name or plan"}]
            )
        store_id = request.match_info["store_id"]
        async with self._sessionmaker() as session:
            try:
                await links.update_store(session, store_id, name=body.name, plan=body.plan)
            except links.StoreNotFound:
                return _error(404, "no such store")
        logger.info("platform API: store %s updated", store_id)
        return web.json_response(
            {"store_id": store_id, **body.model_dump(exclude_none=True)}, status=200
        )

    async def unlink_member(self, request: web.Request) -> web.StreamResponse:
        store_id, member = request.match_info["store_id"], request.match_info["member"]
        async with self._sessionmaker() as session:
            try:
                removed = await links.unlink_member(session, store_id, member)
            except links.StoreNotFound:
                return _error(404, "no such store")
        if not removed:
            return _error(404, "no such member of this store")
        logger.info("platform API: %s member(s) unlinked from store %s", removed, store_id)
        return web.Response(status=204)
