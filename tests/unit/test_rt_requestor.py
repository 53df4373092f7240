"""The requester as RT takes it: the merchant's e-mail with their name, which no name can break."""

from __future__ import annotations

import pytest

from services.queue.base import Priority
from services.queue.rt import RT_PRIORITY, requestor_address
from services.regulation import PLAN_PRIORITY, load_regulation


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Анна Петрова", '"Анна Петрова" <anna@example.com>'),
        ('Пётр "Шеф" <root@evil>', '"Пётр Шеф root@evil" <anna@example.com>'),
        ("Back\\slash,  comma\nnewline", '"Backslash, comma newline" <anna@example.com>'),
        ("", "anna@example.com"),
        (None, "anna@example.com"),
        (' "<>" ', "anna@example.com"),
    ],
)
def test_the_name_goes_with_the_address_quoted_and_nothing_else(
    name: str | None, expected: str
) -> None:
    assert requestor_address("anna@example.com", name) == expected


def test_priority_follows_the_plan_premium_highest() -> None:
    regulation = load_regulation()
    assert set(PLAN_PRIORITY) == set(regulation.policies.plans)
    rt = {plan: RT_PRIORITY[regulation.priority_for(plan)] for plan in regulation.policies.plans}
    assert rt["premium"] > rt["site"] == rt["combo"] > rt["free"]
    assert regulation.priority_for(None) is Priority.NORMAL  # unlinked: as a site plan
