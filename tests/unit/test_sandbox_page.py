"""The sandbox's page: its language (?lang, then Accept-Language, then Russian), its words
translated through the catalogs on the server, and its static files served (no build step)."""

from __future__ import annotations

import json
import re

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from bot.sandbox.page import STATIC, TEXTS, add_routes, choose_language, render, texts


@pytest.mark.parametrize(
    ("query", "accept", "expected"),
    [
        ("en", "ru-RU,ru;q=0.9", "en"),
        ("ru", "en-US,en;q=0.9", "ru"),
        (None, "en-US,en;q=0.9", "en"),
        (None, "de-DE,de;q=0.9,en;q=0.8,ru;q=0.7", "en"),
        (None, "en;q=0.3, ru;q=0.8", "ru"),
        (None, "de-DE", "ru"),
        (None, None, "ru"),
        ("fr", "en", "en"),
        (None, "en;q=0", "ru"),
    ],
)
def test_page_language_is_the_query_then_the_browser_then_russian(
    query: str | None, accept: str | None, expected: str
) -> None:
    assert choose_language(query, accept) == expected


def test_every_word_of_the_page_is_translated_into_russian() -> None:
    russian = texts("ru")
    untranslated = [key for key, msgid in TEXTS.items() if russian[key] == msgid]
    assert untranslated == []
    assert texts("en") == TEXTS


def test_page_carries_its_words_in_the_language_and_fills_every_place() -> None:
    page = render("ru")
    assert '<html lang="ru">' in page
    assert "<title>Песочница frontdesk</title>" in page
    assert "{{" not in page
    embedded = re.search(r'<script id="texts" type="application/json">(.*?)</script>', page, re.S)
    assert embedded is not None
    assert json.loads(embedded.group(1)) == texts("ru")


def test_every_word_app_js_uses_is_on_the_page() -> None:
    script = (STATIC / "app.js").read_text(encoding="utf-8")
    used = set(re.findall(r"\bT\.(\w+)", script))
    statuses = re.search(r"const STATUSES = \[(.*?)\]", script)
    assert statuses is not None
    used |= {f"status_{s}" for s in re.findall(r'"(\w+)"', statuses.group(1))}
    assert used <= set(TEXTS)
    template = (STATIC / "index.html").read_text(encoding="utf-8")
    places = set(re.findall(r"\{\{\s*(\w+)\s*\}\}", template)) - {"lang", "texts"}
    assert places <= set(TEXTS)


def test_nothing_is_loaded_from_another_host() -> None:
    for path in STATIC.iterdir():
        content = path.read_text(encoding="utf-8")
        assert not re.search(r"""(src|href)=["']?(https?:)?//""", content), path.name
        assert "@import" not in content and "url(http" not in content, path.name


async def test_page_and_its_files_are_served() -> None:
    app = web.Application()
    add_routes(app)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/", headers={"Accept-Language": "en-GB,en;q=0.9"})
        assert response.status == 200
        assert response.headers["Content-Language"] == "en"
        assert "<title>frontdesk sandbox</title>" in await response.text()

        response = await client.get("/?lang=ru")
        assert "Песочница frontdesk" in await response.text()

        for name, kind in (("app.js", "javascript"), ("style.css", "text/css")):
            response = await client.get(f"/static/{name}")
            assert response.status == 200
            assert kind in response.headers["Content-Type"]
        assert (await client.get("/static/../page.py")).status in (403, 404)
