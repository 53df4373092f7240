"""A Telegram message as the sandbox's page shows it: its text and entities (offsets in UTF-16
code units, as the Bot API counts them) turned into safe HTML. Only the formatting Telegram shows
becomes a tag (b, i, u, s, code, pre, a, blockquote, a spoiler as `span.tg-spoiler`); everything
else, the user's text included, is escaped. Newlines stay "\\n" (the page keeps them with CSS)."""

from __future__ import annotations

from collections.abc import Sequence
from html import escape
from typing import Protocol
from urllib.parse import urlsplit

SAFE_SCHEMES = frozenset({"http", "https", "tg", "mailto"})
_TAGS = {
    "bold": ("<b>", "</b>"),
    "italic": ("<i>", "</i>"),
    "underline": ("<u>", "</u>"),
    "strikethrough": ("<s>", "</s>"),
    "code": ("<code>", "</code>"),
    "pre": ("<pre>", "</pre>"),
    "blockquote": ("<blockquote>", "</blockquote>"),
    "expandable_blockquote": ("<blockquote>", "</blockquote>"),
    "spoiler": ('<span class="tg-spoiler">', "</span>"),
}


class Entity(Protocol):
    """What this needs of aiogram's MessageEntity."""

    @property
    def type(self) -> str: ...
    @property
    def offset(self) -> int: ...
    @property
    def length(self) -> int: ...
    @property
    def url(self) -> str | None: ...


def _safe_href(url: str) -> str | None:
    url = url.strip()
    try:
        scheme = urlsplit(url).scheme.lower()
    except ValueError:
        return None
    if not scheme and "." in url and " " not in url:
        # What Telegram does with "example.com": a link to http://example.com.
        return "http://" + url
    return url if scheme in SAFE_SCHEMES else None


def _tags(entity: Entity, covered: str) -> tuple[str, str] | None:
    kind = str(getattr(entity.type, "value", entity.type))
    if kind in _TAGS:
        return _TAGS[kind]
    href: str | None = None
    if kind == "text_link" and entity.url:
        href = _safe_href(entity.url)
    elif kind == "url":
        href = _safe_href(covered)
    if href is None:
        return None
    return (
        f'<a href="{escape(href, quote=True)}" target="_blank" rel="noopener noreferrer">',
        "</a>",
    )


def to_html(text: str | None, entities: Sequence[Entity] | None = ()) -> str:
    """`text` with its entities as HTML; entities that overlap without nesting are closed and
    reopened around each other, so the result is always well-formed."""
    if not text:
        return ""
    units = text.encode("utf-16-le")
    total = len(units) // 2

    def piece(start: int, end: int) -> str:
        return units[2 * start : 2 * end].decode("utf-16-le", errors="replace")

    spans: list[tuple[int, int, str, str]] = []
    for entity in sorted(entities or (), key=lambda e: (e.offset, -e.length)):
        start = max(0, entity.offset)
        end = min(total, entity.offset + entity.length)
        if end <= start:
            continue
        tags = _tags(entity, piece(start, end))
        if tags is not None:
            spans.append((start, end, *tags))
    points = sorted({0, total, *(s for s, *_ in spans), *(e for _, e, *_ in spans)})
    out: list[str] = []
    stack: list[tuple[int, int, str, str]] = []
    pending = list(spans)  # sorted by start, longer first
    for index, point in enumerate(points):
        # Close what ends here; an entity above it that goes on is closed and reopened.
        if any(end == point for _, end, *_ in stack):
            keep: list[tuple[int, int, str, str]] = []
            while any(end == point for _, end, *_ in stack):
                span = stack.pop()
                out.append(span[3])
                if span[1] != point:
                    keep.append(span)
            for span in reversed(keep):
                out.append(span[2])
                stack.append(span)
        while pending and pending[0][0] == point:
            span = pending.pop(0)
            out.append(span[2])
            stack.append(span)
        if index + 1 < len(points):
            out.append(escape(piece(point, points[index + 1]), quote=False))
    out.extend(span[3] for span in reversed(stack))
    return "".join(out)
