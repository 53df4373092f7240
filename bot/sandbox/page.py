"""The sandbox's page (a placeholder: the page itself comes with its static files)."""

from __future__ import annotations

from aiohttp import web


async def _index(request: web.Request) -> web.Response:
    return web.Response(
        text="<!doctype html><meta charset=utf-8><title>frontdesk sandbox</title>"
        "<p>frontdesk sandbox: the API is under /api/</p>",
        content_type="text/html",
    )


def add_routes(app: web.Application) -> None:
    app.router.add_get("/", _index)
