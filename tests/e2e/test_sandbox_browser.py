"""The sandbox in a real browser: Debian's Chromium driven by Playwright for Python opens the
page of `frontdesk sandbox` (started here, in this test's event loop, on a free port in a temporary
working directory), files a ticket as the merchant by pressing the bot's buttons, sees its number
with the deadline and the quota, assigns and answers it from the queue panel with a file, and sees
the reply and the file arrive in the merchant's chat, whose Telegram reply to it reaches the
ticket. The screenshots of the main steps go to the test's temporary folder, or with
FRONTDESK_SCREENSHOTS=docs/sandbox to the pictures the README shows (a plain run leaves the
checkout as it was).

Chromium comes from Debian (`scripts/test` installs it when /usr/bin/chromium is missing), never
from `playwright install`; it runs headless, without a sandbox (root) and without reaching for
Google's services, in a new profile."""

from __future__ import annotations

import os
import re
import struct
import zlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import REQUIRE_SERVICES

pytestmark = [pytest.mark.e2e, pytest.mark.browser]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
ROOT = Path(__file__).resolve().parents[2]
# Where the screenshots go when asked (relative to the checkout); else the test's tmp_path.
SCREENSHOTS = os.environ.get("FRONTDESK_SCREENSHOTS")
# A laptop's screen.
VIEWPORT = {"width": 1440, "height": 900}
WAIT_MS = 30_000

SUBJECT = "Баннер на главной странице"
DESCRIPTION = (
    "Добавьте, пожалуйста, баннер «Скидка 10% на тюльпаны» над каталогом на главной странице. "
    "Картинку пришлю, ссылка — на раздел «Тюльпаны»."
)
REPLY = "Баннер добавлен, посмотрите главную страницу. Макет во вложении."
REPLY_FILE = "banner-preview.png"
THANKS = "Спасибо, баннер на месте!"


def _missing(what: str) -> None:
    message = f"{what} (scripts/test installs it)"
    if REQUIRE_SERVICES:
        pytest.fail(message + " (FRONTDESK_REQUIRE_SERVICES=1)")
    pytest.skip(message)


def png(width: int = 240, height: int = 96) -> bytes:
    """A small real picture (a pink-to-green banner), so that the page shows it as an image."""
    rows = b"".join(
        b"\x00"
        + b"".join(
            bytes((230 - x * 120 // width, 120 + x * 100 // width, 150 + y * 60 // height))
            for x in range(width)
        )
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )


@pytest.fixture
async def sandbox(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Any]:
    """`frontdesk sandbox --port 0` in this event loop, its folder in a new working directory."""
    from bot.sandbox.runner import Sandbox

    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    async with Sandbox(workdir, host="127.0.0.1", port=0) as running:
        yield running


@pytest.fixture
def chromium() -> Path:
    if not CHROMIUM.exists():
        _missing(f"Chromium is not installed at {CHROMIUM}")
    return CHROMIUM


@pytest.fixture
async def page(chromium: Path, tmp_path: Path) -> AsyncIterator[Any]:
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        _missing("Playwright for Python is not installed")
    async with async_playwright() as playwright:
        context = await playwright.chromium.launch_persistent_context(
            str(tmp_path / "chromium-profile"),
            executable_path=str(chromium),
            args=CHROMIUM_ARGS,
            headless=True,
            viewport=VIEWPORT,
            locale="ru-RU",
            timezone_id="Europe/Moscow",
        )
        try:
            context.set_default_timeout(WAIT_MS)
            browser_page = context.pages[0] if context.pages else await context.new_page()
            errors: list[str] = []
            browser_page.on("pageerror", lambda error: errors.append(str(error)))
            yield browser_page
            assert errors == [], errors
        finally:
            await context.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = ROOT / SCREENSHOTS if SCREENSHOTS else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


async def screenshot(page: Any, folder: Path, name: str) -> None:
    await page.screenshot(path=str(folder / name), animations="disabled")


def bot_message(page: Any, text: str) -> Any:
    """The newest bot message in the chat shown whose text has this."""
    return page.locator(".msg.bot", has_text=text).last


async def press(page: Any, prompt: str, button: str) -> None:
    """Presses the button with this text under the newest bot message that has `prompt`."""
    await bot_message(page, prompt).locator(".kb-button", has_text=button).first.click()


async def loaded(image: Any) -> None:
    """Waits until this picture has arrived and been drawn (for the screenshot)."""
    await image.wait_for()
    await image.evaluate(
        "img => img.complete && img.naturalWidth > 0 ? null :"
        " new Promise((ok, fail) => { img.onload = ok; img.onerror = fail; })"
    )
    assert await image.evaluate("img => img.naturalWidth") > 0


async def say(page: Any, text: str) -> None:
    await page.locator("#text").fill(text)
    await page.locator("#text").press("Enter")


async def test_merchant_files_in_the_page_and_the_queue_panel_answers_with_a_file(
    sandbox: Any, page: Any, shots: Path
) -> None:
    from playwright.async_api import expect

    expect.set_options(timeout=WAIT_MS)
    await page.goto(sandbox.url + "?lang=ru")
    await expect(page.locator('.person[aria-current="true"]')).to_contain_text("Анна")
    await expect(page.locator(".person")).to_have_count(4)

    # The bot's command menu, as the merchant's Telegram shows it.
    await page.locator("#commands-button").click()
    await expect(page.locator(".command[data-command=new]")).to_contain_text("/new")
    await page.locator(".command[data-command=new]").click()
    await expect(page.locator(".msg.user", has_text="/new")).to_be_visible()

    # Two stores: which one; then the type, the category, the subject and the description.
    await press(page, "О каком магазине", "flowers.example.com")
    await press(page, "С чем оно связано", "Доработка")
    await press(page, "Выберите категорию", "Шаблон магазина")
    await expect(bot_message(page, "тему")).to_be_visible()
    await say(page, SUBJECT)
    await expect(bot_message(page, "Опишите")).to_be_visible()
    await say(page, DESCRIPTION)
    await press(page, "Получено", "✅ Готово")
    await press(page, "Файлы", "Пропустить »")
    review = bot_message(page, "Проверьте обращение")
    await expect(review).to_contain_text(SUBJECT)
    await expect(review.locator(".kb-button", has_text="✅ Отправить")).to_be_visible()
    await screenshot(page, shots, "01-wizard.png")

    await press(page, "Проверьте обращение", "✅ Отправить")
    registered = bot_message(page, "зарегистрировано в официальной тикетной системе под номером")
    await expect(registered).to_contain_text("⏱ Первая реакция")
    await expect(registered).to_contain_text("🛠 Бесплатные доработки в этом месяце")
    found = re.search(r"#(\d+)", await registered.inner_text())
    assert found is not None
    number = found.group(1)
    # The queue panel has the new ticket with its deadline.
    card = page.locator(f'.ticket-card[data-ticket="{number}"]')
    await expect(card).to_contain_text(SUBJECT)
    await expect(card).to_contain_text("Первая реакция до")
    await screenshot(page, shots, "02-registered.png")

    # Assigned to ivanov in the queue panel.
    await card.click()
    ticket = page.locator(f'.ticket-view[data-number="{number}"]')
    await expect(ticket.locator("dd.owner")).to_have_text("не назначен")
    await ticket.locator("select.assign-owner").select_option("ivanov")
    await ticket.locator("button.assign").click()
    await expect(ticket.locator('dd.owner[data-owner="ivanov"]')).to_be_visible()
    # The specialist is told in Telegram: an unread mark on the chat not shown.
    await expect(page.locator('.person[data-person="specialist"] .badge')).to_be_visible()

    # The reply with a file, as the specialist would answer in the queue.
    await ticket.locator("textarea.reply-text").fill(REPLY)
    await ticket.locator("input.reply-file").set_input_files(
        files=[{"name": REPLY_FILE, "mimeType": "image/png", "buffer": png()}]
    )
    await ticket.locator("button.reply-send").click()
    answer = ticket.locator(".entry.support", has_text=REPLY)
    await expect(answer).to_be_visible()
    await expect(answer.locator(f'[data-file="{REPLY_FILE}"]')).to_be_visible()
    await loaded(answer.locator("img"))
    await screenshot(page, shots, "03-queue-reply.png")

    # The merchant's chat: the reply, then its file, brought by the bot's sync.
    replied = bot_message(page, "Ответ поддержки по обращению")
    await expect(replied).to_contain_text(f"#{number}")
    await expect(replied).to_contain_text(REPLY)
    arrived = page.locator(f'.msg.bot [data-file="{REPLY_FILE}"]').last
    await expect(arrived).to_be_visible()
    await arrived.scroll_into_view_if_needed()
    await loaded(arrived.locator("img"))
    await screenshot(page, shots, "04-reply-arrived.png")

    # A Telegram reply to the support's message goes to the ticket: it shows in the queue panel.
    await replied.hover()
    await replied.locator(".reply-button").click()
    await expect(page.locator("#replying")).to_contain_text("Ответ поддержки")
    await say(page, THANKS)
    sent = page.locator(".msg.user", has_text=THANKS).last
    await expect(sent.locator(".quote")).to_contain_text("Ответ поддержки")
    await expect(bot_message(page, f"Добавлено к обращению #{number}")).to_be_visible()
    await expect(ticket.locator(".entry:not(.support)", has_text=THANKS)).to_be_visible()
