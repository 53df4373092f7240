"""The sandbox's page: a Telegram-like chat for a chosen person beside the queue as a specialist
sees it. Plain HTML, CSS and a little JavaScript under `static/` (no build step, nothing from a
CDN: the sandbox runs offline); the data comes from the sandbox's web API (`bot/sandbox/api.py`)
and its Server-Sent Events.

The page's own words are translated here, on the server, through the bot's gettext catalogs
(domain "messages"): index.html gets them in its `{{ key }}` places, and app.js as a JSON object
embedded in the page. The language is `?lang=ru|en`, else the browser's Accept-Language, else
Russian. The strings stay in this module as `N_()` calls so that `pybabel extract` finds them."""

from __future__ import annotations

import gettext
import html
import json
import re
from functools import cache
from pathlib import Path

from aiohttp import web

from bot.config import locales_dir

STATIC = Path(__file__).resolve().parent / "static"
LANGUAGES = ("ru", "en")
DEFAULT_LANGUAGE = "ru"


def N_(message: str) -> str:
    """Marks a string for extraction; translated per request by `texts()`."""
    return message


# The page's words by key: index.html uses `{{ key }}`, app.js `T.key`. Placeholders in braces
# are filled by the page (`{name}`), after translation.
TEXTS: dict[str, str] = {
    "title": N_("frontdesk sandbox"),
    "subtitle": N_("The real bot and the queue on this computer, with Telegram emulated"),
    "language": N_("Language"),
    "people": N_("Chats"),
    "people_hint": N_("Be one of these people in Telegram"),
    "unread": N_("New messages"),
    "loading": N_("Loading…"),
    "no_messages": N_("No messages yet. Send /start or choose a command in the / menu."),
    "placeholder": N_("Message to the bot"),
    "send": N_("Send"),
    "commands": N_("The bot's commands"),
    "no_commands": N_("The bot has set no commands for this chat."),
    "attach": N_("Attach a file"),
    "remove_file": N_("Remove the file"),
    "caption_hint": N_("The text is sent as the file's caption."),
    "edited": N_("edited"),
    "reply_to_message": N_("Reply to this message"),
    "replying_to": N_("Reply to"),
    "cancel_reply": N_("Do not reply to it"),
    "bot_name": N_("Bot"),
    "a_file": N_("File"),
    "open_file": N_("Open the file"),
    "button_link": N_("Opens a link in a new tab"),
    "connected": N_("Live"),
    "disconnected": N_("Connection lost, reconnecting…"),
    "error": N_("Error: {error}"),
    "queue": N_("Queue"),
    "queue_hint": N_("The official queue as a specialist sees it"),
    "no_tickets": N_("No tickets yet. File one as the merchant."),
    "all_tickets": N_("« All tickets"),
    "requester": N_("Requester"),
    "store": N_("Store"),
    "owner": N_("Owner"),
    "nobody": N_("nobody"),
    "status": N_("Status"),
    "due": N_("First reaction by"),
    "category": N_("Category"),
    "priority": N_("Priority"),
    "filed": N_("Filed"),
    "updated": N_("Updated"),
    "no_due": N_("no deadline"),
    "overdue": N_("overdue"),
    "moscow_time": N_("Moscow time"),
    "status_open": N_("open"),
    "status_waiting": N_("waiting"),
    "status_resolved": N_("resolved"),
    "status_rejected": N_("rejected"),
    "status_new": N_("new"),
    "status_registered": N_("registered"),
    "assign": N_("Assign"),
    "assigned": N_("Ticket #{number} assigned to {owner}."),
    "unassigned": N_("Ticket #{number} has no owner now."),
    "change_status": N_("Set status"),
    "status_changed": N_("Ticket #{number} is now {status}."),
    "resolve": N_("Resolve"),
    "conversation": N_("Conversation"),
    "no_conversation": N_("No messages on this ticket."),
    "support": N_("support"),
    "reply": N_("Reply"),
    "reply_as": N_("as"),
    "reply_placeholder": N_("Answer to the requester"),
    "reply_sent": N_("Reply sent to ticket #{number}."),
    "reply_empty": N_("Write a reply or attach a file."),
}

_PLACE = re.compile(r"\{\{\s*(\w+)\s*\}\}")


@cache
def _translations(language: str) -> gettext.NullTranslations:
    return gettext.translation(
        "messages", localedir=str(locales_dir()), languages=[language], fallback=True
    )


def texts(language: str) -> dict[str, str]:
    """The page's words in this language."""
    translations = _translations(language)
    return {key: translations.gettext(msgid) for key, msgid in TEXTS.items()}


def choose_language(query: str | None, accept_language: str | None) -> str:
    """`?lang=` when it names a language of the page, else the browser's most preferred one
    the page has (Accept-Language, by q), else Russian."""
    if query in LANGUAGES:
        return query
    preferred: list[tuple[float, int, str]] = []
    for position, part in enumerate((accept_language or "").split(",")):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        primary = tag.strip().lower().split("-", 1)[0]
        if primary in LANGUAGES and quality > 0:
            preferred.append((-quality, position, primary))
    return min(preferred)[2] if preferred else DEFAULT_LANGUAGE


def render(language: str) -> str:
    """index.html with this language's words in place."""
    words = texts(language)
    # Embedded in a <script type="application/json">: no "</" may end it early.
    embedded = json.dumps(words, ensure_ascii=False).replace("</", "<\\/")

    def place(match: re.Match[str]) -> str:
        key = match.group(1)
        if key == "texts":
            return embedded
        if key == "lang":
            return language
        return html.escape(words[key])

    template = (STATIC / "index.html").read_text(encoding="utf-8")
    return _PLACE.sub(place, template)


async def index(request: web.Request) -> web.Response:
    language = choose_language(request.query.get("lang"), request.headers.get("Accept-Language"))
    return web.Response(
        text=render(language),
        content_type="text/html",
        headers={
            "Content-Language": language,
            "Cache-Control": "no-cache",
            "Vary": "Accept-Language",
        },
    )


def add_routes(app: web.Application) -> None:
    """GET / (the page) and /static/ (its CSS and JavaScript), on the sandbox's web app."""
    app.router.add_get("/", index)
    app.router.add_static("/static/", STATIC, append_version=False)
