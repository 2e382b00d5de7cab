"""structlog for framehook and uvicorn alike: JSON in production, readable on a terminal.

Secrets never reach a log line: values under secret-looking keys are replaced, and URLs lose
their query strings (signed CDN links carry credentials there).
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, Literal

import orjson
import structlog

__all__ = ["configure_logging", "redact"]

_SECRET_KEY = re.compile(r"(?i)(signature|api_?key|token|secret|password|authorization)")
_URL_QUERY = re.compile(r"(https?://[^\s?#]+)\?[^\s#]*")


def redact(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: hide secret values and URL query strings."""
    for key, value in event_dict.items():
        if _SECRET_KEY.search(key):
            event_dict[key] = "[redacted]"
        elif isinstance(value, str) and "://" in value and "?" in value:
            event_dict[key] = _URL_QUERY.sub(r"\1?[redacted]", value)
    return event_dict


def _dumps(obj: Any, **_: Any) -> str:
    return orjson.dumps(obj, default=str).decode()


def configure_logging(fmt: Literal["console", "json"], level: str = "info") -> None:
    """Route structlog and the standard library (uvicorn, alembic) through one renderer."""
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_log_level,
        structlog.stdlib.add_logger_name,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact,
    ]
    renderer: Any = (
        structlog.processors.JSONRenderer(serializer=_dumps)
        if fmt == "json"
        else structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty())
    )
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*shared, structlog.processors.format_exc_info],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
