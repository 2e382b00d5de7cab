"""structlog for framehook and uvicorn alike: JSON in production, readable on a terminal.

framehook's own lines (one per delivery: the hot path) go through structlog's native loggers,
rendered by orjson straight to bytes; the standard library's (uvicorn, alembic) are routed
through the same processors so every line looks alike. In JSON, the lines an event loop logs
are written once per turn of the loop (:class:`LineWriter`), not one ``write`` each.

Secrets never reach a log line: values under secret-looking keys are replaced, and URLs lose
their query strings (signed CDN links carry credentials there).
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import re
import sys
import threading
import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any, BinaryIO, Literal

import orjson
import structlog

__all__ = ["HotLine", "LineWriter", "configure_logging", "get_logger", "redact"]

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


class LineWriter:
    """structlog's logger for rendered JSON lines (as ``structlog.BytesLogger``), writing the
    lines an event loop logs once per turn of that loop.

    A flushed ``write`` per line was ~5 % of a delivery's CPU at saturation: a system call per
    webhook. Lines logged on a running event loop are gathered and written together by a
    callback that loop runs next (after the requests settled in the same turn have logged);
    lines logged anywhere else (a thread, a command) are written at once, after any gathered
    ones, so the order of the lines is the order they were logged in. What is still gathered
    at exit is written then.
    """

    __slots__ = ("_file", "_lines", "_lock", "_loops")

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._lines: list[bytes] = []
        # The loops with a flush already scheduled: each loop that gathered a line flushes in
        # its next turn, so no line waits on another thread's loop.
        self._loops: list[asyncio.AbstractEventLoop] = []
        self._lock = threading.Lock()

    def msg(self, message: bytes) -> None:
        """Write one rendered line (``message``, without its newline)."""
        loop = asyncio._get_running_loop()
        with self._lock:
            self._lines.append(message)
            if loop is None:
                self._write()
            elif loop not in self._loops:
                self._loops.append(loop)
                loop.call_soon(self._flush_for, loop)

    log = debug = info = warn = warning = msg
    fatal = failure = err = error = critical = exception = msg

    def write_now(self, text: str) -> None:
        """Write ``text`` (whole lines) at once, after the lines gathered so far."""
        with self._lock:
            self._lines.append(text.encode("utf-8", "backslashreplace").removesuffix(b"\n"))
            self._write()

    def flush(self) -> None:
        """Write what is gathered."""
        with self._lock:
            self._write()

    def _flush_for(self, loop: asyncio.AbstractEventLoop) -> None:
        with self._lock:
            self._loops.remove(loop)
            self._write()

    def _write(self) -> None:
        if not self._lines:
            return
        self._lines.append(b"")
        data = b"\n".join(self._lines)
        self._lines.clear()
        try:
            self._file.write(data)
            self._file.flush()
        except (OSError, ValueError):
            # A closed or broken stderr: there is nowhere left to say so.
            pass


class _WriterStream:
    """A text stream for the standard library's handler that writes through a
    :class:`LineWriter`, so uvicorn's and alembic's lines keep their place among framehook's."""

    def __init__(self, writer: LineWriter) -> None:
        self._writer = writer

    def write(self, text: str) -> int:
        self._writer.write_now(text)
        return len(text)

    def flush(self) -> None:
        pass


@dataclass(frozen=True, slots=True)
class _JsonSetup:
    """What :func:`configure_logging` set up for JSON: what :class:`HotLine` checks is still in
    place before it renders a line itself."""

    writer: LineWriter
    level: int
    renderer: Any
    factory: Any


_json_setup: _JsonSetup | None = None


class HotLine:
    """One line logged for every request (the per-delivery line), as cheap as it can be.

    With JSON logs, the line is rendered straight to its bytes: the keys, their order, the
    level, the timestamp and the redaction structlog's pipeline gives it, without the pipeline
    (a bound logger's call, the context copy, a processor call each). Otherwise (the console, a
    level that filters it, tests capturing logs, any other structlog configuration) it goes
    through structlog like any line. Its fields are plain values: no ``exc_info``, and context
    variables are not merged.

    Args:
        logger: the ``logger`` field (as :func:`get_logger`).
        event: the line's ``event``.
    """

    __slots__ = ("_event", "_logger", "_name")

    def __init__(self, logger: str, event: str) -> None:
        self._name = logger
        self._event = event
        self._logger = get_logger(logger)

    def info(self, **fields: Any) -> None:
        """Log the line at ``info``."""
        self._emit("info", logging.INFO, fields)

    def warning(self, **fields: Any) -> None:
        """Log the line at ``warning``."""
        self._emit("warning", logging.WARNING, fields)

    def _emit(self, level: str, number: int, fields: dict[str, Any]) -> None:
        setup = _json_setup
        if setup is not None and number >= setup.level:
            config = structlog.get_config()
            processors = config["processors"]
            if (
                processors
                and processors[-1] is setup.renderer
                and (config["logger_factory"] is setup.factory)
            ):
                # As structlog builds it: the fields, then event, logger, level, timestamp.
                fields["event"] = self._event
                fields["logger"] = self._name
                fields["level"] = level
                _timestamp(None, level, fields)
                redact(None, level, fields)
                setup.writer.msg(orjson.dumps(fields, default=str))
                return
        getattr(self._logger, level)(self._event, **fields)


@atexit.register
def _flush_at_exit() -> None:
    if _json_setup is not None:
        _json_setup.writer.flush()


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
    global _json_setup
    if _json_setup is not None:
        _json_setup.writer.flush()  # what the previous setup gathered, before it is replaced
    writer = None if console else LineWriter(sys.stderr.buffer)
    native: Any = (
        structlog.dev.ConsoleRenderer(colors=colors)
        if console
        else structlog.processors.JSONRenderer(serializer=_dump_bytes)
    )
    factory: Any = structlog.PrintLoggerFactory(sys.stderr) if writer is None else lambda *_: writer
    structlog.configure(
        processors=[*_shared(), structlog.processors.format_exc_info, native],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=factory,
        cache_logger_on_first_use=True,
    )
    _json_setup = None if writer is None else _JsonSetup(writer, numeric, native, factory)
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
    handler: logging.StreamHandler[Any] = logging.StreamHandler(
        sys.stderr if writer is None else _WriterStream(writer)
    )
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
