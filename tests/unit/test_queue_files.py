"""File names from the queue are made safe before they go anywhere."""

from __future__ import annotations

import pytest

from services.queue.base import FALLBACK_FILENAME, FILENAME_LIMIT, safe_filename


@pytest.mark.parametrize(
    ("name", "safe"),
    [
        ("лог.txt", "лог.txt"),
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\anna\\отчёт.docx", "отчёт.docx"),
        ("evil\u202egnp.exe", "evilgnp.exe"),  # a right-to-left override hides the real type
        ("a\x00b\x1f.txt", "ab.txt"),
        ("line\nbreak.txt", "line break.txt"),
        ("  .hidden  ", "hidden"),
        ("..", FALLBACK_FILENAME),
        ("", FALLBACK_FILENAME),
        (None, FALLBACK_FILENAME),
        ("/", FALLBACK_FILENAME),
    ],
)
def test_file_name_is_made_safe(name: str | None, safe: str) -> None:
    assert safe_filename(name) == safe


def test_long_name_is_shortened_keeping_its_extension() -> None:
    name = safe_filename("отчёт " * 100 + ".pdf")
    assert len(name) <= FILENAME_LIMIT and name.endswith(".pdf")
    assert len(safe_filename("x" * 500)) == FILENAME_LIMIT
