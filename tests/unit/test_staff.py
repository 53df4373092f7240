"""The staff commands of the CLI and the queue user's name, without a database or aiogram."""

from __future__ import annotations

import pytest

from bot.cli import _parser
from services.staff import MAX_QUEUE_USER, StaffError, _clean_user


def test_staff_roles_are_specialist_and_lead_only() -> None:
    args = _parser().parse_args(["staff", "link", "ivanov", "--role", "lead"])
    assert (args.command, args.staff_command, args.user, args.role) == (
        "staff",
        "link",
        "ivanov",
        "lead",
    )
    for role in ("specialist", "lead"):
        assert _parser().parse_args(["staff", "link", "x", "--role", role]).role == role
    with pytest.raises(SystemExit):
        _parser().parse_args(["staff", "link", "ivanov", "--role", "owner"])
    with pytest.raises(SystemExit):
        _parser().parse_args(["staff", "link", "ivanov"])  # a role is required
    assert _parser().parse_args(["staff", "remove", "ivanov"]).user == "ivanov"
    assert _parser().parse_args(["staff", "list"]).staff_command == "list"


def test_queue_user_is_trimmed_and_neither_empty_nor_too_long() -> None:
    assert _clean_user("  ivanov ") == "ivanov"
    for bad in ("", "   ", "x" * (MAX_QUEUE_USER + 1)):
        with pytest.raises(StaffError):
            _clean_user(bad)
