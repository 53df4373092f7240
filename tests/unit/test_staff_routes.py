"""Where a new unassigned ticket is announced (services/assignments.py): the staff group its
category is routed to, else its request type's, else the default group, else the leads."""

from __future__ import annotations

import pytest

from services.assignments import route_for, unknown_route_codes
from services.catalog import load_catalog

ERRORS, MODIFICATIONS, OTHERS = -1_001, -1_002, -1_003
ROUTES = {"system_error": ERRORS, "modification": MODIFICATIONS, "*": OTHERS}


def test_a_category_route_takes_its_tickets() -> None:
    assert route_for(ROUTES, "technical", "system_error") == ERRORS


def test_a_request_type_route_takes_all_its_categories() -> None:
    assert route_for(ROUTES, "modification", "template") == MODIFICATIONS
    assert route_for(ROUTES, "modification", "custom_export") == MODIFICATIONS


def test_the_category_is_more_specific_than_its_type() -> None:
    routes = {"technical": ERRORS, "store_setup": OTHERS}
    assert route_for(routes, "technical", "store_setup") == OTHERS
    assert route_for(routes, "technical", "integrations") == ERRORS


def test_the_default_route_takes_what_no_other_does() -> None:
    assert route_for(ROUTES, "administrative", "refund") == OTHERS


@pytest.mark.parametrize("routes", [{}, {"system_error": ERRORS, "modification": MODIFICATIONS}])
def test_no_route_leaves_the_ticket_to_the_leads(routes: dict[str, int]) -> None:
    assert route_for(routes, "administrative", "refund") is None


def test_route_codes_are_checked_against_the_catalog() -> None:
    catalog = load_catalog()
    assert unknown_route_codes(ROUTES, catalog) == []
    assert unknown_route_codes(["system_eror", "*", "technical", "Refund"], catalog) == [
        "Refund",
        "system_eror",
    ]
