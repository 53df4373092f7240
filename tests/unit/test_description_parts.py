"""A description sent in several messages, and the subject the queue can keep (services/tickets)."""

from __future__ import annotations

import pytest

from services.tickets import (
    SUBJECT_MAX,
    InvalidRequest,
    clean_subject,
    join_description,
)


def test_parts_are_joined_in_message_order_whatever_the_arrival() -> None:
    parts = [(12, "третья"), (10, "первая"), (11, "вторая")]
    assert join_description(parts) == "первая\nвторая\nтретья"


def test_a_part_cut_at_telegrams_limit_is_continued_without_a_break() -> None:
    """A client that cuts at 4,096 exactly may cut a word: it is put back together."""
    text = ("оплата" * 1_000)[:4096] + "продолжение слова"
    parts = [(1, text[:4096]), (2, text[4096:])]
    assert join_description(parts) == text


def test_shorter_parts_are_separated_by_a_line_break() -> None:
    """Telegram Desktop cuts at a line break or a space and drops it; people write separate
    messages: a line break keeps the words apart."""
    assert join_description([(1, "a" * 4000), (2, "b")]) == "a" * 4000 + "\nb"


def test_limit_counts_utf16_units_as_telegram_does() -> None:
    emoji = "😀" * 2048  # 2,048 characters, 4,096 UTF-16 units: a full message
    assert join_description([(1, emoji), (2, "x")]) == emoji + "x"


def test_subject_of_100_cyrillic_letters_fits_rt() -> None:
    subject = "Ж" * SUBJECT_MAX
    assert clean_subject(subject) == subject


@pytest.mark.parametrize(
    ("subject", "reason", "length"),
    [("Ж" * 101, "subject_too_long", 101), ("😀" * 51, "subject_too_wide", 51)],
)
def test_subject_beyond_what_rt_keeps_is_refused_with_its_length(
    subject: str, reason: str, length: int
) -> None:
    with pytest.raises(InvalidRequest) as error:
        clean_subject(subject)
    assert (error.value.reason, error.value.length) == (reason, length)
