"""Messages as people wrote them, in Telegram's HTML: a pure module (no aiogram, no I/O).

- `html_to_telegram` turns an HTML body (RT's rich-text editor, an HTML e-mail) into Telegram's
  HTML subset, parsed by BeautifulSoup (never by regular expressions): b/strong, i/em, u/ins,
  s/strike/del, a href (http, https, mailto, tg links only), code, pre and blockquote are kept;
  p, div, br, headings, table rows and list items become line breaks, list items get "• ",
  images become their alt text, scripts and styles are dropped, everything else is its text.
  All text is escaped.
- `plain_to_telegram` escapes plain text.
- `split_telegram_html` cuts Telegram HTML into messages of at most `limit` UTF-16 code units
  (Telegram's unit) that each parse on their own: never inside a tag or an entity, preferably
  between paragraphs, then between lines, then between words; a tag open across a cut is closed
  before it and opened again after it. Nothing is lost: the pieces' texts, joined, are the text.
"""

from __future__ import annotations

from dataclasses import dataclass
from html import escape
from html.parser import HTMLParser

from bs4 import BeautifulSoup, Comment, Declaration, Doctype, NavigableString, Tag
from bs4.element import CData, ProcessingInstruction

MESSAGE_LIMIT = 4096  # Telegram's limit of a message, in UTF-16 code units

# HTML tag -> the Telegram tag it becomes.
_INLINE = {
    "b": "b",
    "strong": "b",
    "i": "i",
    "em": "i",
    "u": "u",
    "ins": "u",
    "s": "s",
    "strike": "s",
    "del": "s",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
}
_BLOCKS = frozenset(
    {"p", "div", "h1", "h2", "h3", "h4", "h5", "h6", "tr", "ul", "ol", "table", "section"}
)
_DROPPED = frozenset({"script", "style", "head", "title", "template", "noscript"})
_LINK_SCHEMES = ("http://", "https://", "mailto:", "tg://")
TELEGRAM_TAGS = frozenset({"b", "i", "u", "s", "a", "code", "pre", "blockquote"})


def units(text: str) -> int:
    """Length in UTF-16 code units, as Telegram counts."""
    return len(text.encode("utf-16-le")) // 2


def plain_to_telegram(text: str) -> str:
    return escape(text, quote=False)


class _Writer:
    """Telegram HTML being written: text with its whitespace collapsed outside <pre>."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self._pre = 0
        self._pending_space = False
        self.opened: list[str] = []  # Telegram tags open now
        # Some visible text written already: kept as it goes, where reading every part again at
        # each line break made a long reply quadratic (52 KB of HTML took 5 s of CPU).
        self._has_text = False

    def _append_text(self, part: str) -> None:
        self.parts.append(part)
        if part.strip():
            self._has_text = True

    def text(self, value: str) -> None:
        if self._pre:
            self._flush_space()
            self._append_text(escape(value, quote=False))
            return
        words = value.split()
        if not words:
            if value:
                self._pending_space = True
            return
        if value[0].isspace():
            self._pending_space = True
        self._flush_space()
        self._append_text(escape(" ".join(words), quote=False))
        self._pending_space = value[-1].isspace()

    def _flush_space(self) -> None:
        if self._pending_space and self.parts and not self._ends_with_break():
            self.parts.append(" ")
        self._pending_space = False

    def _ends_with_break(self) -> bool:
        for part in reversed(self.parts):
            if part.startswith("<") and part.endswith(">") and part not in ("<br>",):
                continue
            return part.endswith("\n") or part.endswith(" ")
        return True

    def _trailing_newlines(self) -> int:
        """Line breaks at the end of the text written so far (tags do not count): only the
        last parts are read."""
        count = 0
        for part in reversed(self.parts):
            if _is_tag(part):
                continue
            kept = part.rstrip("\n")
            count += len(part) - len(kept)
            if kept:
                break
        return count

    def newline(self, count: int = 1) -> None:
        """At least `count` line breaks here (none at the very start)."""
        self._pending_space = False
        if not self._has_text:
            return
        have = self._trailing_newlines()
        if have < count:
            self.parts.append("\n" * (count - have))

    def line_break(self) -> None:
        """<br>: one more line break (two in a row make an empty line)."""
        self._pending_space = False
        if self._has_text:
            self.parts.append("\n")

    def bullet(self) -> None:
        self._pending_space = False
        self._append_text("• ")

    def open(self, tag: str, href: str | None = None) -> None:
        self._flush_space()
        if tag == "pre":
            self._pre += 1
        self.opened.append(tag)
        self.parts.append(f'<a href="{escape(href, quote=True)}">' if href else f"<{tag}>")

    def close(self, tag: str) -> None:
        if tag == "pre":
            self._pre -= 1
        self.opened.pop()
        last = self.parts[-1] if self.parts else ""
        if last == f"<{tag}>" or (tag == "a" and last.startswith("<a href=")):
            self.parts.pop()  # nothing inside: no tag at all
        else:
            self.parts.append(f"</{tag}>")

    def result(self) -> str:
        html = "".join(self.parts)
        return html.strip("\n ")


def _is_tag(part: str) -> bool:
    return part.startswith("<") and part.endswith(">")


def html_to_telegram(html: str) -> str:
    """HTML as Telegram's HTML subset (see the module's docstring)."""
    soup = BeautifulSoup(html, "html.parser")
    writer = _Writer()
    _walk(soup, writer)
    return writer.result()


def _walk(node: Tag, writer: _Writer) -> None:
    for child in node.children:
        if isinstance(child, (Comment, Declaration, Doctype, CData, ProcessingInstruction)):
            continue
        if isinstance(child, NavigableString):
            writer.text(str(child))
            continue
        if not isinstance(child, Tag):
            continue
        name = child.name.lower()
        if name in _DROPPED:
            continue
        if name == "br":
            writer.line_break()
            continue
        if name == "img":
            alt = child.get("alt")
            if isinstance(alt, str) and alt.strip():
                writer.text(alt)
            continue
        if name == "li":
            writer.newline()
            writer.bullet()
            _walk(child, writer)
            writer.newline()
            continue
        if name in _BLOCKS:
            writer.newline(2 if name in ("p", "ul", "ol", "table") else 1)
            _walk(child, writer)
            writer.newline(2 if name in ("p", "ul", "ol", "table") else 1)
            continue
        if name == "a":
            href = child.get("href")
            link = href.strip() if isinstance(href, str) else ""
            if link.lower().startswith(_LINK_SCHEMES) and "a" not in writer.opened:
                writer.open("a", href=link)
                _walk(child, writer)
                writer.close("a")
            else:
                _walk(child, writer)
            continue
        tag = _INLINE.get(name)
        if tag is None or tag in writer.opened:  # bold inside bold is just bold
            _walk(child, writer)
            continue
        if tag in ("pre", "blockquote"):
            writer.newline()
        writer.open(tag)
        _walk(child, writer)
        writer.close(tag)
        if tag in ("pre", "blockquote"):
            writer.newline()


# --- cutting into messages ------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str  # "text", "open", "close"
    value: str  # text (unescaped) or the tag's name
    markup: str = ""  # the start tag as written (for "open")


class _Tokens(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tokens: list[_Token] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        href = dict(attrs).get("href") if tag == "a" else None
        markup = f'<a href="{escape(href, quote=True)}">' if href else f"<{tag}>"
        self.tokens.append(_Token("open", tag, markup))

    def handle_endtag(self, tag: str) -> None:
        self.tokens.append(_Token("close", tag))

    def handle_data(self, data: str) -> None:
        self.tokens.append(_Token("text", data))


def tokens(html: str) -> list[_Token]:
    parser = _Tokens()
    parser.feed(html)
    parser.close()
    return parser.tokens


def text_of(html: str) -> str:
    """The text of Telegram HTML, tags removed and entities resolved."""
    return "".join(t.value for t in tokens(html) if t.kind == "text")


def split_telegram_html(
    html: str, limit: int = MESSAGE_LIMIT, first_limit: int | None = None
) -> list[str]:
    """Telegram HTML cut into messages (see the module's docstring); at least one piece."""
    if limit < 200:
        raise ValueError("a message limit under 200 units leaves no room for the tags")
    pieces: list[str] = []
    current: list[str] = []
    size = 0
    stack: list[_Token] = []  # open tags

    def budget() -> int:
        return (first_limit if first_limit is not None and not pieces else limit) - closing()

    def closing() -> int:
        return sum(units(f"</{tag.value}>") for tag in stack)

    def has_text() -> bool:
        return any(not part.startswith("<") for part in current)

    def cut() -> None:
        nonlocal current, size
        pieces.append("".join(current) + "".join(f"</{t.value}>" for t in reversed(stack)))
        current = [t.markup for t in stack]
        size = sum(units(part) for part in current)

    for token in tokens(html):
        if token.kind == "open":
            cost = units(token.markup) + units(f"</{token.value}>")
            if size + cost > budget() and has_text():
                cut()
            current.append(token.markup)
            size += units(token.markup)
            stack.append(token)
        elif token.kind == "close":
            for index in range(len(stack) - 1, -1, -1):
                if stack[index].value == token.value:
                    for closed in reversed(stack[index:]):
                        current.append(f"</{closed.value}>")
                        size += units(f"</{closed.value}>")
                    del stack[index:]
                    break
        else:
            text = token.value
            while text:
                room = budget() - size
                escaped = escape(text, quote=False)
                if units(escaped) <= room:
                    current.append(escaped)
                    size += units(escaped)
                    break
                at = _cut_at(text, room)
                if at == 0 or (at < len(text) and not _clean_cut(text, at) and has_text()):
                    if has_text():
                        cut()
                        continue
                    at = max(at, 1)
                head = escape(text[:at], quote=False)
                current.append(head)
                size += units(head)
                text = text[at:]
                cut()
    if has_text() or not pieces:
        pieces.append("".join(current) + "".join(f"</{t.value}>" for t in reversed(stack)))
    return pieces


def _cut_at(text: str, room: int) -> int:
    """How many characters of `text` to keep so that they fit `room` once escaped, ending at
    the best break: after a blank line, else a line break, else a space, else anywhere."""
    fits, used = 0, 0
    for index, char in enumerate(text):
        used += units(escape(char, quote=False))
        if used > room:
            break
        fits = index + 1
    window = text[:fits]
    for separator in ("\n\n", "\n", " "):
        position = window.rfind(separator)
        if position > 0:
            return position + len(separator)
    return fits


def _clean_cut(text: str, at: int) -> bool:
    return text[at - 1] in "\n " if at else False
