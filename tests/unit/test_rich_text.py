"""HTML bodies from the queue become Telegram's HTML, cut into messages Telegram accepts."""

from __future__ import annotations

from html.parser import HTMLParser

from hypothesis import given, settings
from hypothesis import strategies as st

from handlers.rich_text import (
    MESSAGE_LIMIT,
    TELEGRAM_TAGS,
    html_to_telegram,
    plain_to_telegram,
    split_telegram_html,
    text_of,
    units,
)


def test_link_of_the_web_editor_is_kept() -> None:
    html = (
        "<p>Здравствуйте!</p><p>Проверьте: "
        '<a href="https://example.com/settings?a=1&amp;b=2">настройки писем</a>.</p>'
    )
    assert html_to_telegram(html) == (
        "Здравствуйте!\n\nПроверьте: "
        '<a href="https://example.com/settings?a=1&amp;b=2">настройки писем</a>.'
    )


def test_telegram_subset_is_kept_and_the_rest_is_text() -> None:
    html = (
        "<div><strong>Важно</strong> <em>очень</em> <u>тут</u> <del>было</del> "
        "<span style='color:red'>красным</span> <code>x&lt;1</code></div>"
        "<pre>a  b\n  c</pre><blockquote>цитата</blockquote>"
    )
    assert html_to_telegram(html) == (
        "<b>Важно</b> <i>очень</i> <u>тут</u> <s>было</s> красным <code>x&lt;1</code>\n"
        "<pre>a  b\n  c</pre>\n<blockquote>цитата</blockquote>"
    )


def test_lists_breaks_images_and_scripts() -> None:
    html = (
        "<ul><li>один</li><li>два</li></ul>строка<br>ещё<br><br>после пустой"
        '<img src="x.png" alt="логотип"><img src="y.png"><script>alert(1)</script>'
        "<style>p{}</style>"
    )
    assert html_to_telegram(html) == ("• один\n• два\n\nстрока\nещё\n\nпосле пустойлоготип")


def test_unsafe_links_lose_their_href_and_text_is_escaped() -> None:
    html = '<a href="javascript:alert(1)">нажми</a> <b>&lt;script&gt;</b> 5 > 3 & "q"'
    assert html_to_telegram(html) == 'нажми <b>&lt;script&gt;</b> 5 &gt; 3 &amp; "q"'


def test_plain_text_is_escaped() -> None:
    assert plain_to_telegram("<b> & </b>") == "&lt;b&gt; &amp; &lt;/b&gt;"


def test_long_text_is_cut_between_paragraphs_first() -> None:
    paragraph = "Слово " * 100 + "конец.\n\n"
    pieces = split_telegram_html(plain_to_telegram(paragraph * 20), limit=1500)
    assert all(piece.endswith("конец.\n\n") for piece in pieces[:-1])


def test_tag_across_a_cut_is_closed_and_reopened() -> None:
    html = '<b>жирный <a href="https://e.example/">' + "ссылка " * 400 + "</a></b> хвост"
    pieces = split_telegram_html(html, limit=1000)
    assert len(pieces) > 2
    assert pieces[0].startswith('<b>жирный <a href="https://e.example/">')
    assert all(p.endswith("</a></b>") for p in pieces[:-1])
    assert all(p.startswith('<b><a href="https://e.example/">') for p in pieces[1:])
    assert text_of("".join(pieces)) == text_of(html)


def test_first_piece_leaves_room_for_a_header() -> None:
    pieces = split_telegram_html(plain_to_telegram("x " * 5000), first_limit=1000)
    assert units(pieces[0]) <= 1000 and all(units(p) <= MESSAGE_LIMIT for p in pieces)


class _Balance(HTMLParser):
    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.stack: list[str] = []
        self.ok = True

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.ok &= tag in TELEGRAM_TAGS
        self.stack.append(tag)

    def handle_endtag(self, tag: str) -> None:
        self.ok &= bool(self.stack) and self.stack.pop() == tag


def _balanced(piece: str) -> bool:
    # A tag or an entity cut in two would leave a bare "<" or "&" in the markup.
    markup_text = piece
    for tag in TELEGRAM_TAGS:
        markup_text = markup_text.replace(f"<{tag}>", "").replace(f"</{tag}>", "")
    if "<" in markup_text.replace('<a href="', ""):
        return False
    parser = _Balance()
    parser.feed(piece)
    parser.close()
    return parser.ok and not parser.stack


_words = st.text(
    alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), min_size=0, max_size=40
)
_fragment = st.recursive(
    st.one_of(_words, st.sampled_from(["\n", "\n\n", " ", "😀" * 30, "&<>\"'"])),
    lambda inner: st.tuples(
        st.sampled_from(["b", "i", "p", "div", "li", "pre", "blockquote", "a", "span", "u"]),
        st.lists(inner, max_size=4),
    ).map(
        lambda t: (
            (f'<{t[0]} href="https://e.example/?q=1&amp;r=2">' if t[0] == "a" else f"<{t[0]}>")
            + "".join(x if isinstance(x, str) else "" for x in t[1])
            + f"</{t[0]}>"
        )
    ),
    max_leaves=30,
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(_fragment, max_size=30).map("".join),
    st.integers(min_value=1, max_value=300),
    st.integers(min_value=200, max_value=900),
)
def test_every_piece_fits_parses_and_nothing_is_lost(
    fragment: str, repeat: int, limit: int
) -> None:
    telegram = html_to_telegram(fragment * (repeat // 10 + 1))
    pieces = split_telegram_html(telegram, limit=limit)
    assert all(units(piece) <= limit for piece in pieces)
    assert all(_balanced(piece) for piece in pieces)
    assert "".join(text_of(piece) for piece in pieces) == text_of(telegram)


@settings(max_examples=100, deadline=None)
@given(st.text(max_size=3000), st.integers(min_value=200, max_value=4096))
def test_plain_text_pieces_fit_and_join_back(text: str, limit: int) -> None:
    pieces = split_telegram_html(plain_to_telegram(text), limit=limit)
    assert all(units(piece) <= limit for piece in pieces)
    assert "".join(text_of(piece) for piece in pieces) == text
