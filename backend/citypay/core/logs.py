"""Log lines for operators: one JSON object per line (LOG_FORMAT=json), or text for a terminal.

A JSON line has `time` (UTC, ISO 8601), `level`, `logger`, `message` and `service`, then whatever
context the call had at hand, passed as `extra` (city, payment_id, deposit_reference, tx_hash,
block, ...). A line logged while a request is served also names its `method`, `route` and city.
uvicorn's own loggers, its access log included, go through the same handler; their levels stay
what uvicorn's --log-level made them.
"""

from __future__ import annotations

import contextvars
import logging
import os
import sys
import time
from typing import Literal

from pydantic_settings import BaseSettings, SettingsConfigDict
from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.json import JsonFormatter


class LogSettings(BaseSettings):
    """The settings every process of the platform logs by (the backend's Settings include them)."""

    model_config = SettingsConfigDict(
        env_file=os.environ.get("CITYPAY_ENV_FILE"), extra="ignore", case_sensitive=True
    )

    ENVIRONMENT: Literal["development", "production"] = "development"
    # json: one object per line, for a log collector; text: for a developer's terminal. Unset: json
    # outside development, where logs are read by machines first.
    LOG_FORMAT: Literal["json", "text"] | None = None
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @property
    def log_format(self) -> str:
        return self.LOG_FORMAT or ("text" if self.ENVIRONMENT == "development" else "json")


# The ASGI scope of the request being served, if any (set by the HTTP metrics middleware).
request_scope: contextvars.ContextVar[dict | None] = contextvars.ContextVar(
    "request_scope", default=None
)


class _Context(logging.Filter):
    """Adds the request's method, route and city, and the fields of uvicorn's access line."""

    def filter(self, record: logging.LogRecord) -> bool:
        scope = request_scope.get()
        if scope is not None:
            record.method = scope.get("method")
            route = scope.get("route")
            if route is not None:
                record.route = route.path
            city = scope.get("path_params", {}).get("city")
            if city is not None and not hasattr(record, "city"):
                record.city = city
        # uvicorn passes (client, method, path, HTTP version, status) as the access line's args.
        if (
            record.name == "uvicorn.access"
            and isinstance(record.args, tuple)
            and len(record.args) == 5
        ):
            record.client, record.method, record.path, _, record.status = record.args
        return True


class _JsonLines(JsonFormatter):
    converter = time.gmtime
    default_time_format = "%Y-%m-%dT%H:%M:%S"
    default_msec_format = "%s.%03dZ"


def configure_logging(settings: LogSettings, *, service: str) -> None:
    """Replaces every handler of the root and uvicorn loggers with one on stderr in the chosen
    format. Idempotent: a second call replaces the handler again."""
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        handler.setFormatter(
            _JsonLines(
                "{asctime}{levelname}{name}{message}",
                style="{",
                rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
                static_fields={"service": service},
                # uvicorn adds a copy of each message with terminal colours.
                reserved_attrs=[*RESERVED_ATTRS, "color_message"],
            )
        )
    else:
        handler.setFormatter(
            logging.Formatter(f"%(asctime)s %(levelname)s {service} %(name)s: %(message)s")
        )
    handler.addFilter(_Context())
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(settings.LOG_LEVEL)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
