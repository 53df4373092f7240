"""LOG_FORMAT=json: one JSON object a line, with time, level, logger, message and exception."""

from __future__ import annotations

import io
import json
import logging

import pytest

from bot.config import LogFormat
from bot.logs import JsonFormatter, configure_logging


def _record(message: str, *args: object, exc_info: object = None) -> logging.LogRecord:
    return logging.LogRecord(
        "services.filing",
        logging.WARNING,
        __file__,
        1,
        message,
        args,
        exc_info,  # type: ignore[arg-type]
    )


def test_a_json_line_has_time_level_logger_and_the_formatted_message() -> None:
    line = JsonFormatter().format(_record("ticket %s registered as %s #%s", "FD-1", "builtin", 7))
    entry = json.loads(line)
    assert entry["level"] == "WARNING"
    assert entry["logger"] == "services.filing"
    assert entry["message"] == "ticket FD-1 registered as builtin #7"
    assert entry["time"].endswith("+00:00")  # UTC, ISO 8601
    assert "exception" not in entry
    assert "\n" not in line


def test_an_exception_goes_into_the_same_line_with_its_traceback() -> None:
    try:
        raise ValueError("boom")
    except ValueError:
        import sys

        line = JsonFormatter().format(_record("round failed", exc_info=sys.exc_info()))
    assert "\n" not in line  # a multi-line traceback stays one JSON line
    entry = json.loads(line)
    assert entry["message"] == "round failed"
    assert "Traceback" in entry["exception"] and "ValueError: boom" in entry["exception"]


def test_cyrillic_stays_readable() -> None:
    entry = json.loads(JsonFormatter().format(_record("очередь %s", "поддержка")))
    assert entry["message"] == "очередь поддержка"


def test_the_setting_chooses_the_formatter(monkeypatch: pytest.MonkeyPatch) -> None:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    root.handlers = []  # basicConfig configures only a root logger without handlers
    try:
        configure_logging("info", LogFormat.JSON)
        (handler,) = root.handlers
        assert isinstance(handler.formatter, JsonFormatter)
        assert root.level == logging.INFO
        stream = io.StringIO()
        assert isinstance(handler, logging.StreamHandler)
        handler.setStream(stream)
        logging.getLogger("bot.test").info("hello %d", 1)
        assert json.loads(stream.getvalue())["message"] == "hello 1"

        root.handlers = []
        configure_logging("warning", LogFormat.TEXT)
        (handler,) = root.handlers
        assert not isinstance(handler.formatter, JsonFormatter)
    finally:
        root.handlers, level = saved
        root.setLevel(level)


def test_log_format_defaults_to_text() -> None:
    from bot.config import Settings

    assert Settings.model_fields["log_format"].default is LogFormat.TEXT
