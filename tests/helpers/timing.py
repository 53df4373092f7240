"""Arithmetic over moments (time.monotonic() values) that rate-limit tests assert on."""

from __future__ import annotations

import itertools


def gaps(moments: list[float]) -> list[float]:
    """The intervals between consecutive moments, in the order given."""
    return [later - earlier for earlier, later in itertools.pairwise(moments)]


def most_in_any_window(moments: list[float], window: float) -> int:
    """The largest number of the moments that fall within one window of that length."""
    ordered = sorted(moments)
    most, start = 0, 0
    for end, moment in enumerate(ordered):
        while moment - ordered[start] >= window:
            start += 1
        most = max(most, end - start + 1)
    return most
