"""Signed calls to /queue/events: only the holder of the secret can make one, only recently,
and the body cannot be changed under the signature."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from services.event_signature import (
    MAX_SKEW,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Refusal,
    Verified,
    digest,
    sign,
    verify,
)

SECRET = "s3cret-of-at-least-16-chars"
BODY = b'{"ticket_id": "147", "transaction_id": "1205"}'
NOW = datetime(2026, 11, 25, 9, 0, tzinfo=UTC)
TS = int(NOW.timestamp())


def _check(headers: dict[str, str], body: bytes = BODY, *, now: datetime = NOW, secret=SECRET):  # type: ignore[no-untyped-def]
    return verify(
        secret, headers.get(TIMESTAMP_HEADER), headers.get(SIGNATURE_HEADER), body, now=now
    )


def test_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    # What the RT Scrip computes with Digest::SHA: hmac_sha256_hex("$ts.$body", $secret).
    expected = hmac.new(SECRET.encode(), f"{TS}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert digest(SECRET, TS, BODY) == expected
    assert sign(SECRET, TS, BODY) == {
        TIMESTAMP_HEADER: str(TS),
        SIGNATURE_HEADER: "sha256=" + expected,
    }


def test_genuine_recent_call_is_accepted_and_remembered_until_it_would_be_stale() -> None:
    verified = _check(sign(SECRET, TS, BODY))
    assert isinstance(verified, Verified)
    assert verified.digest == digest(SECRET, TS, BODY)
    assert verified.timestamp == NOW
    assert verified.expires_at == NOW + MAX_SKEW


@pytest.mark.parametrize("skew", [timedelta(0), timedelta(seconds=299), timedelta(seconds=-299)])
def test_clocks_may_differ_by_up_to_five_minutes(skew: timedelta) -> None:
    assert isinstance(_check(sign(SECRET, TS, BODY), now=NOW + skew), Verified)


@pytest.mark.parametrize(
    "skew", [timedelta(seconds=301), timedelta(seconds=-301), timedelta(days=1)]
)
def test_old_or_future_call_is_refused_as_stale(skew: timedelta) -> None:
    assert _check(sign(SECRET, TS, BODY), now=NOW + skew) is Refusal.STALE


def test_other_secret_is_forged() -> None:
    assert _check(sign("another-secret-0123456789", TS, BODY)) is Refusal.FORGED


def test_body_changed_under_the_signature_is_forged() -> None:
    headers = sign(SECRET, TS, BODY)
    assert _check(headers, BODY.replace(b"147", b"148")) is Refusal.FORGED
    assert _check(headers, BODY + b" ") is Refusal.FORGED


def test_timestamp_changed_under_the_signature_is_forged() -> None:
    headers = sign(SECRET, TS, BODY)
    headers[TIMESTAMP_HEADER] = str(TS + 1)
    assert _check(headers) is Refusal.FORGED


def test_forgery_is_refused_before_the_window_is_looked_at() -> None:
    # A forger learns nothing about frontdesk's clock.
    old = TS - 3600
    forged = {TIMESTAMP_HEADER: str(old), SIGNATURE_HEADER: "sha256=" + "0" * 64}
    assert _check(forged) is Refusal.FORGED


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {TIMESTAMP_HEADER: str(TS)},
        {SIGNATURE_HEADER: "sha256=" + "0" * 64},
        {TIMESTAMP_HEADER: "", SIGNATURE_HEADER: ""},
    ],
)
def test_missing_headers_are_refused(headers: dict[str, str]) -> None:
    assert _check(headers) is Refusal.MISSING


@pytest.mark.parametrize(
    ("timestamp", "signature"),
    [
        ("yesterday", "sha256=" + "0" * 64),
        ("-5", "sha256=" + "0" * 64),
        ("1.5", "sha256=" + "0" * 64),
        (str(TS), "0" * 64),  # no scheme
        (str(TS), "md5=" + "0" * 32),
        (str(TS), "sha256=" + "z" * 64),
        (str(TS), "sha256=" + "0" * 63),
    ],
)
def test_malformed_headers_are_refused(timestamp: str, signature: str) -> None:
    headers = {TIMESTAMP_HEADER: timestamp, SIGNATURE_HEADER: signature}
    assert _check(headers) is Refusal.MALFORMED


def test_upper_case_hex_and_surrounding_spaces_are_accepted() -> None:
    headers = sign(SECRET, TS, BODY)
    headers[SIGNATURE_HEADER] = " sha256=" + digest(SECRET, TS, BODY).upper() + " "
    assert isinstance(_check(headers), Verified)


def test_secret_may_be_bytes() -> None:
    assert isinstance(_check(sign(SECRET.encode(), TS, BODY)), Verified)
