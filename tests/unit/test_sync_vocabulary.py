"""The sync speaks frontdesk's language: Request Tracker's words stay in its adapter."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
RT_WORDS = re.compile(r"\b(Correspond|SetWatcher|Nobody|stalled|AddLink|MergedInto|EffectiveId)\b")


def test_sync_has_no_request_tracker_words() -> None:
    source = (ROOT / "services" / "sync.py").read_text()
    assert RT_WORDS.findall(source) == []


def test_the_queue_port_has_no_request_tracker_words() -> None:
    source = (ROOT / "services" / "queue" / "base.py").read_text()
    assert RT_WORDS.findall(source) == []
