"""structlog for framehook and uvicorn alike: JSON in production, readable on a terminal.

framehook's own lines (one per delivery: the hot path) go through structlog's native loggers,
rendered by orjson straight to bytes; the standard library's (uvicorn, alembic) are routed
through the same processors so every line looks alike.

Secrets never reach a log line: values under secret-looking keys are replaced, and URLs lose
their query strings (signed CDN links carry credentials there).
"""

from __future__ import annotations

import logging
import re
import sys
import time
from collections.abc import MutableMapping
from typing import Any, Literal

import orjson
import structlog

__all__ = ["configure_logging", "get_logger", "redact"]

_SECRET_KEY = re.compile(r"(?i)(signature|api_?key|token|secret|password|authorization)")
_URL_QUERY = re.compile(r"(https?://[^\s?#]+)\?[^\s#]*")


def redact(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: hide secret values and URL query strings."""
    # Runs on every line, the per-delivery one included: a dict lookup per key, not a call.
    secret_keys = _SECRET_KEYS
    for key, value in event_dict.items():
        secret = secret_keys.get(key)
        if secret is None:
            secret = _is_secret(key)
        if secret:
            event_dict[key] = "[redacted]"
        elif isinstance(value, str) and "://" in value and "?" in value:
            event_dict[key] = _URL_QUERY.sub(r"\1?[redacted]", value)
    return event_dict


# Log keys are a small fixed vocabulary: decide once per key, not per line (bounded, in case a
# caller logs data as keys).
_SECRET_KEYS: dict[str, bool] = {}


def _is_secret(key: str) -> bool:
    secret = _SECRET_KEY.search(key) is not None
    if len(_SECRET_KEYS) < 1024:
        _SECRET_KEYS[key] = secret
    return secret


# (second, its ISO prefix): formatting the date and time once a second rather than per line
# (``datetime.isoformat`` was a tenth of the delivery line's cost). One tuple, swapped whole,
# so threads logging at once never see a half-updated cache.
_LAST_SECOND: tuple[int, str] = (-1, "")


def _timestamp(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    """structlog processor: ``timestamp`` in UTC ISO 8601, as ``TimeStamper(fmt="iso",
    utc=True)`` writes it (``2026-01-02T03:04:05.678901Z``)."""
    global _LAST_SECOND
    second, micro = divmod(time.time_ns() // 1000, 1_000_000)
    last, prefix = _LAST_SECOND
    if second != last:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _LAST_SECOND = (second, prefix)
    event_dict["timestamp"] = f"{prefix}.{micro:06d}Z" if micro else f"{prefix}Z"
    return event_dict


def get_logger(name: str) -> Any:
    """A framehook logger; ``name`` appears as the line's ``logger`` field."""
    # Bound lazily (at first use, after configure_logging); renamed by _name_field.
    return structlog.get_logger(logger_name=name)


def _name_field(
    _logger: Any, _name: str, event_dict: MutableMapping[str, Any]
) -> MutableMapping[str, Any]:
    name = event_dict.pop("logger_name", None)
    if name is not None:
        event_dict["logger"] = name
    return event_dict


def _dump_bytes(obj: Any, **_: Any) -> bytes:
    return orjson.dumps(obj, default=str)


def _dumps(obj: Any, **_: Any) -> str:
    return orjson.dumps(obj, default=str).decode()


def _shared() -> list[Any]:
    return [
        structlog.contextvars.merge_contextvars,
        _name_field,
        structlog.processors.add_log_level,
        _timestamp,
        redact,
    ]


def configure_logging(fmt: Literal["console", "json"], level: str = "info") -> None:
    """Route structlog and the standard library (uvicorn, alembic) through one renderer."""
    numeric = logging.getLevelNamesMapping().get(level.upper(), logging.INFO)
    console = fmt == "console"
    colors = console and sys.stderr.isatty()
    native: Any = (
        structlog.dev.ConsoleRenderer(colors=colors)
        if console
        else structlog.processors.JSONRenderer(serializer=_dump_bytes)
    )
    structlog.configure(
        processors=[*_shared(), structlog.processors.format_exc_info, native],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=(
            structlog.PrintLoggerFactory(sys.stderr)
            if console
            else structlog.BytesLoggerFactory(sys.stderr.buffer)
        ),
        cache_logger_on_first_use=True,
    )
    stdlib: Any = (
        structlog.dev.ConsoleRenderer(colors=colors)
        if console
        else structlog.processors.JSONRenderer(serializer=_dumps)
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=[*_shared(), structlog.stdlib.add_logger_name],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            stdlib,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(numeric)
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "alembic"):
        logger = logging.getLogger(name)
        logger.handlers = []
        logger.propagate = True
    # httpx and httpcore log every request with its full URL, and a signed CDN URL carries its
    # credentials in the query string; the download handler logs each capture itself.
    for name in ("httpx", "httpcore"):
        logging.getLogger(name).setLevel(max(numeric, logging.WARNING))
    # Alembic announces each plugin it loads ("setup plugin ...") at info: noise at every start.
    logging.getLogger("alembic.runtime.plugins").setLevel(max(numeric, logging.WARNING))
    # ... and its migration context at every start ("Context impl SQLiteImpl.", "Will assume
    # non-transactional DDL."); "Running upgrade 0008 -> 0009" stays: a schema change is news.
    migration = logging.getLogger("alembic.runtime.migration")
    if not any(isinstance(f, _MigrationNoise) for f in migration.filters):
        migration.addFilter(_MigrationNoise())


class _MigrationNoise(logging.Filter):
    """Drops Alembic's per-start context lines, keeps the ones that say a migration ran."""

    _NOISE = ("Context impl ", "Will assume ")

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith(self._NOISE)
