"""The server's logs: one line per record on standard error, as text or as JSON (`log_format`), with the id of the
request being served when there is one.

A JSON line holds `time` (UTC, ISO 8601), `level`, `logger`, `message`, the `request_id` of the request that
logged it (a proxied request's `x-farebox-request-id`, an API request's `x-request-id`), and `exception` (the
traceback) when there is one. farebox logs no secret: keys, tokens and passwords are never formatted into a
message, whatever the format.
"""

from __future__ import annotations

import logging
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any, Literal

import orjson

__all__ = ["REQUEST_ID", "JsonFormatter", "LogFormat", "TextFormatter", "log_config"]

LogFormat = Literal["text", "json"]

REQUEST_ID: ContextVar[str | None] = ContextVar("farebox_request_id", default=None)
"""The id of the request this task serves (set where the request id is made)."""


class JsonFormatter(logging.Formatter):
    """A record as one line of JSON."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(line).decode()


class TextFormatter(logging.Formatter):
    """A record as one line of text, the request's id after the level when there is one."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        request_id = REQUEST_ID.get()
        return text if request_id is None else f"{text} [request {request_id}]"


def log_config(level: str, log_format: LogFormat) -> dict[str, Any]:
    """`logging.config.dictConfig`'s configuration of a server (uvicorn applies it in each process): every logger,
    uvicorn's and farebox's, through one handler on standard error."""
    formatter = "farebox.logs.JsonFormatter" if log_format == "json" else "farebox.logs.TextFormatter"
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"farebox": {"()": formatter}},
        "handlers": {
            "stderr": {"class": "logging.StreamHandler", "formatter": "farebox", "stream": "ext://sys.stderr"}
        },
        "root": {"handlers": ["stderr"], "level": level.upper()},
        "loggers": {
            name: {"handlers": [], "propagate": True, "level": level.upper()}
            for name in ("uvicorn", "uvicorn.error", "uvicorn.access")
        },
    }
