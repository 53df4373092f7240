"""What the filing worker last heard from the queue, for /healthz.

The worker reports each outcome: a ticket taken (`succeeded`), a transient failure the retries
will get past (`failed_transiently`: network, timeout, 5xx, 429), or a permanent refusal no retry
will change (`refused`: a revoked token, the queue gone, a field the queue rejects). A refusal not
followed by a success is "refusing": an operator must act, and /healthz says degraded. Transient
failures alone are reported but not degraded: the filing backlog's age tells when they last too
long.

An observer (the metrics' `queue_error`) hears each failure's kind: "transient", "refused", or
"not_found" (a ticket the queue does not have: the queue answered, rightly, so the state stays).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from services.db.base import utcnow


class QueueState(StrEnum):
    OK = "ok"
    FAILING = "failing"  # the last outcome was a transient failure: being retried
    REFUSING = "refusing"  # a permanent refusal since the last success: an operator must act


@dataclass(frozen=True, slots=True)
class QueueOutcome:
    at: datetime
    error: str | None = None


@dataclass(frozen=True, slots=True)
class QueueStatus:
    state: QueueState
    last_success: QueueOutcome | None
    last_transient: QueueOutcome | None
    last_refusal: QueueOutcome | None


class QueueHealth:
    """One per process; the filing worker writes, /healthz reads."""

    def __init__(self, on_error: Callable[[str], None] | None = None) -> None:
        self._on_error = on_error or (lambda _kind: None)
        self._success: QueueOutcome | None = None
        self._transient: QueueOutcome | None = None
        self._refusal: QueueOutcome | None = None
        self._last: QueueState = QueueState.OK

    def succeeded(self, *, at: datetime | None = None) -> None:
        self._success = QueueOutcome(at or utcnow())
        self._last = QueueState.OK

    def failed_transiently(self, error: str, *, at: datetime | None = None) -> None:
        self._transient = QueueOutcome(at or utcnow(), error)
        self._on_error("transient")
        if self._last is not QueueState.REFUSING:  # a refusal stands until a success
            self._last = QueueState.FAILING

    def refused(self, error: str, *, at: datetime | None = None) -> None:
        self._refusal = QueueOutcome(at or utcnow(), error)
        self._last = QueueState.REFUSING
        self._on_error("refused")

    def not_found(self) -> None:
        """A ticket the queue does not have (TicketNotFound): counted, the state unchanged."""
        self._on_error("not_found")

    def status(self) -> QueueStatus:
        return QueueStatus(self._last, self._success, self._transient, self._refusal)
