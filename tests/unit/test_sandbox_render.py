"""The sandbox page's messages: Telegram's entities (UTF-16 offsets) as safe HTML."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.sandbox.render import to_html

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class E:
    type: str
    offset: int
    length: int
    url: str | None = None


@pytest.mark.parametrize(
    ("kind", "html"),
    [
        ("bold", "<b>word</b>"),
        ("italic", "<i>word</i>"),
        ("underline", "<u>word</u>"),
        ("strikethrough", "<s>word</s>"),
        ("code", "<code>word</code>"),
        ("pre", "<pre>word</pre>"),
        ("blockquote", "<blockquote>word</blockquote>"),
        ("expandable_blockquote", "<blockquote>word</blockquote>"),
        ("spoiler", '<span class="tg-spoiler">word</span>'),
        # Shown as plain text: no tag of their own on the page.
        ("mention", "word"),
        ("hashtag", "word"),
        ("cashtag", "word"),
        ("bot_command", "word"),
        ("email", "word"),
        ("phone_number", "word"),
        ("custom_emoji", "word"),
        ("text_mention", "word"),
    ],
)
def test_each_entity_type_becomes_its_tag_or_stays_text(kind: str, html: str) -> None:
    assert to_html("a word.", [E(kind, 2, 4)]) == f"a {html}."


def test_links_open_in_a_new_tab_and_only_with_safe_schemes() -> None:
    link = '<a href="https://example.com/?a=1&amp;b=&quot;2&quot;" target="_blank" '
    link += 'rel="noopener noreferrer">here</a>'
    assert to_html("see here", [E("text_link", 4, 4, 'https://example.com/?a=1&b="2"')]) == (
        "see " + link
    )
    assert to_html("x", [E("text_link", 0, 1, "javascript:alert(1)")]) == "x"
    assert to_html("x", [E("text_link", 0, 1, "data:text/html,<b>")]) == "x"
    assert to_html("go example.com", [E("url", 3, 11)]) == (
        'go <a href="http://example.com" target="_blank" rel="noopener noreferrer">example.com</a>'
    )


def test_user_text_is_escaped_and_newlines_kept() -> None:
    text = '<script>alert("x")</script> & <b>\nline two'
    assert to_html(text, []) == (
        '&lt;script&gt;alert("x")&lt;/script&gt; &amp; &lt;b&gt;\nline two'
    )
    assert to_html("<i>", [E("bold", 0, 3)]) == "<b>&lt;i&gt;</b>"


def test_offsets_count_utf16_code_units() -> None:
    # 🌷 is one character, two UTF-16 code units: "bold" starts at unit 3, not 2.
    assert to_html("🌷 bold!", [E("bold", 3, 4)]) == "🌷 <b>bold</b>!"
    assert to_html("Ф🌷Ж", [E("italic", 1, 2)]) == "Ф<i>🌷</i>Ж"


def test_nested_entities_nest() -> None:
    text = "bold italic end"
    entities = [E("bold", 0, 15), E("italic", 5, 6)]
    assert to_html(text, entities) == "<b>bold <i>italic</i> end</b>"
    # Same start: the longer one outside, whatever the order given.
    assert to_html("ab", [E("italic", 0, 1), E("bold", 0, 2)]) == "<b><i>a</i>b</b>"


def test_overlapping_entities_stay_well_formed() -> None:
    assert to_html("abcdef", [E("bold", 0, 4), E("italic", 2, 4)]) == (
        "<b>ab<i>cd</i></b><i>ef</i>"
    )


def test_entities_beyond_the_text_are_clipped_and_empty_ones_dropped() -> None:
    assert to_html("abc", [E("bold", 1, 10), E("italic", 0, 0)]) == "a<b>bc</b>"
    assert to_html(None, [E("bold", 0, 1)]) == ""


def test_the_sandbox_never_imports_the_tests() -> None:
    for path in sorted((ROOT / "bot").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not any(n.split(".")[0] == "tests" for n in names), path
