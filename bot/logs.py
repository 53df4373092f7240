"""Logging for the process: LOG_LEVEL and LOG_FORMAT (text, or JSON lines for a log collector).

frontdesk's log lines carry ids (ticket, notice, chat, Telegram user), references, queue names
and numbers, specialists' queue logins and error kinds — never a message's text, a ticket's
subject or description, a file's name, an e-mail or a person's name. A new log call keeps to
that: log the id, not the content.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime

from bot.config import LogFormat

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


class JsonFormatter(logging.Formatter):
    """One JSON object a line: time (UTC, ISO 8601), level, logger, message, and exception (the
    traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, str] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        # ensure_ascii=False: a Cyrillic reference or error stays readable, and one line.
        return json.dumps(entry, ensure_ascii=False)


def configure_logging(level: str, log_format: LogFormat = LogFormat.TEXT) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(
        JsonFormatter() if log_format is LogFormat.JSON else logging.Formatter(TEXT_FORMAT)
    )
    logging.basicConfig(level=level.upper(), handlers=[handler])
