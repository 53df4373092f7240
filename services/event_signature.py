"""Signatures of the calls a queue makes to /queue/events (pure: no I/O, no clock of its own).

The caller sends two headers:

    X-Frontdesk-Timestamp: <unix seconds>
    X-Frontdesk-Signature: sha256=<hex HMAC-SHA256, keyed with the shared secret, of
                           "<timestamp>.<raw body>">

Signing the timestamp with the body lets frontdesk refuse an old call (outside `MAX_SKEW`), and
remembering accepted signatures for that long refuses a replayed one: together no recorded call
can be played again. Anything that can compute an HMAC can sign (an RT Scrip does it with
Digest::SHA's hmac_sha256_hex; see scripts/rt-frontdesk-scrip.pl).
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum

TIMESTAMP_HEADER = "X-Frontdesk-Timestamp"
SIGNATURE_HEADER = "X-Frontdesk-Signature"
SCHEME = "sha256="
# How far a call's timestamp may be from frontdesk's clock, either way.
MAX_SKEW = timedelta(seconds=300)

_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_HEX_DIGEST = re.compile(r"[0-9a-f]{64}")


class Refusal(StrEnum):
    """Why a call is refused; the text goes back to the caller (it tells nothing secret)."""

    MISSING = "missing signature or timestamp"
    MALFORMED = "malformed signature or timestamp"
    STALE = "timestamp outside the accepted window"
    FORGED = "signature does not match"


@dataclass(frozen=True, slots=True)
class Verified:
    """A call that is authentic and recent. `digest` identifies it, to refuse it a second time;
    it needs remembering until `expires_at`, after which its timestamp is stale anyway."""

    digest: str
    timestamp: datetime
    expires_at: datetime


def digest(secret: str | bytes, timestamp: int | str, body: bytes) -> str:
    key = secret.encode() if isinstance(secret, str) else secret
    return hmac.new(key, str(timestamp).encode("ascii") + b"." + body, hashlib.sha256).hexdigest()


def sign(secret: str | bytes, timestamp: int, body: bytes) -> dict[str, str]:
    """The headers of a signed call (what the queue's side does; used by tests and tools)."""
    return {
        TIMESTAMP_HEADER: str(timestamp),
        SIGNATURE_HEADER: SCHEME + digest(secret, timestamp, body),
    }


def verify(
    secret: str | bytes,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    *,
    now: datetime,
    max_skew: timedelta = MAX_SKEW,
) -> Verified | Refusal:
    """Checks a call's headers against its raw body; a Refusal says what is wrong."""
    if not timestamp or not signature:
        return Refusal.MISSING
    timestamp, signature = timestamp.strip(), signature.strip().lower()
    if not _TIMESTAMP.fullmatch(timestamp) or not signature.startswith(SCHEME):
        return Refusal.MALFORMED
    given = signature.removeprefix(SCHEME)
    if not _HEX_DIGEST.fullmatch(given):
        return Refusal.MALFORMED
    # The MAC first: a forger learns nothing about the window, and a stale call is refused
    # only once it is known to be genuine.
    if not hmac.compare_digest(given, digest(secret, timestamp, body)):
        return Refusal.FORGED
    sent_at = datetime.fromtimestamp(int(timestamp), UTC)
    if abs(now - sent_at) > max_skew:
        return Refusal.STALE
    return Verified(digest=given, timestamp=sent_at, expires_at=sent_at + max_skew)
