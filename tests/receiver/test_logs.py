"""Logs never carry secrets or signed URL query strings, and reach stderr in order, each line
whole."""

from __future__ import annotations

import asyncio
import io
import logging
import re
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import structlog
from structlog.testing import capture_logs

from receiver.logs import HotLine, LineWriter, configure_logging, get_logger, redact


@pytest.mark.parametrize(
    "key", ["signature", "api_key", "apikey", "admin_token", "Authorization", "password"]
)
def test_secret_looking_keys_are_redacted(key: str) -> None:
    """A value under a secret-looking key never reaches the rendered line."""
    event: dict[str, Any] = {"event": "x", key: "afk_live_secret"}
    assert redact(None, "info", event)[key] == "[redacted]"


def test_url_query_strings_are_redacted_but_the_url_kept() -> None:
    """Signed CDN links keep scheme, host and path; their query string is hidden."""
    event: dict[str, Any] = {
        "event": "download",
        "source": "https://cdn2.apiframe.ai/images/a.png?X-Amz-Signature=abc&Expires=1",
        "note": "see https://x.test/p?token=t and https://y.test/q",
        "plain": "no url here?",
    }
    out = redact(None, "info", event)
    assert out["source"] == "https://cdn2.apiframe.ai/images/a.png?[redacted]"
    assert out["note"] == "see https://x.test/p?[redacted] and https://y.test/q"
    assert out["plain"] == "no url here?"


class _Recording(io.BytesIO):
    """A binary stream that counts its writes."""

    def __init__(self) -> None:
        super().__init__()
        self.writes = 0

    def write(self, data: Any) -> int:
        self.writes += 1
        return super().write(data)


def test_lines_logged_on_an_event_loop_are_written_once_per_turn_in_order() -> None:
    """A burst of lines logged by requests settled in one turn of the loop is one ``write``,
    made before the loop's next turn ends; a line logged off the loop is written at once,
    after the gathered ones."""
    stream = _Recording()
    writer = LineWriter(stream)

    async def burst() -> tuple[int, int]:
        for n in range(50):
            writer.info(b'{"n":%d}' % n)
        before = stream.writes
        await asyncio.sleep(0)  # the loop's next turn
        await asyncio.sleep(0)
        return before, stream.writes

    assert asyncio.run(burst()) == (0, 1)
    assert stream.getvalue().splitlines() == [b'{"n":%d}' % n for n in range(50)]

    async def then_a_thread() -> None:
        writer.warning(b"on the loop")
        # A thread (no loop) logs before the loop's turn ends: its line comes after.
        await asyncio.to_thread(writer.error, b"on a thread")

    asyncio.run(then_a_thread())
    assert stream.getvalue().splitlines()[-2:] == [b"on the loop", b"on a thread"]
    writer.write_now("uvicorn line\n")
    assert stream.getvalue().endswith(b"on a thread\nuvicorn line\n")


def test_a_line_gathered_in_a_loops_last_turn_is_written_by_flush() -> None:
    """A line logged in the turn a loop stops in waits for a turn that never comes: ``flush``
    (run at exit) writes it."""
    stream = _Recording()
    writer = LineWriter(stream)
    loop = asyncio.new_event_loop()
    try:
        loop.call_soon(writer.info, b"last words")
        loop.call_soon(loop.stop)
        loop.run_forever()
    finally:
        loop.close()
    assert stream.getvalue() == b""
    writer.flush()
    assert stream.getvalue() == b"last words\n"


def test_json_logging_writes_framehook_and_stdlib_lines_through_one_writer(
    capfdbinary: pytest.CaptureFixture[bytes],
) -> None:
    """With JSON logs, structlog's and the standard library's lines reach stderr in the order
    they were logged, each a JSON object on its own line."""
    root = logging.getLogger()
    handlers, level = root.handlers, root.level
    configure_logging("json", "info")
    try:
        log = get_logger("framehook.test")

        async def both() -> None:
            log.info("first")
            logging.getLogger("uvicorn.error").warning("second")
            log.info("third")

        asyncio.run(both())
    finally:
        structlog.reset_defaults()
        root.handlers, root.level = handlers, level
    lines = [orjson.loads(line) for line in capfdbinary.readouterr().err.splitlines()]
    assert [line["event"] for line in lines] == ["first", "second", "third"]


class _JsonLogs:
    """JSON logging as ``framehook serve`` configures it, and the lines it wrote to stderr."""

    def __init__(self, captured: pytest.CaptureFixture[bytes]) -> None:
        self._captured = captured

    def configure(self, level: str) -> None:
        configure_logging("json", level)

    def read(self) -> list[dict[str, Any]]:
        return [orjson.loads(line) for line in self._captured.readouterr().err.splitlines()]


@pytest.fixture
def json_logs(capfdbinary: pytest.CaptureFixture[bytes]) -> Iterator[_JsonLogs]:
    """JSON logs for one test; structlog and the root logger restored after it."""
    root = logging.getLogger()
    handlers, level = root.handlers, root.level
    try:
        yield _JsonLogs(capfdbinary)
    finally:
        structlog.reset_defaults()
        root.handlers, root.level = handlers, level


DELIVERY_FIELDS: dict[str, Any] = {
    "request_id": "r-1",
    "remote": "127.0.0.1",
    "status": 202,
    "job_id": "job-1",
    "lora_id": None,
    "flags": None,
    "delivery_id": 7,
    "ms": 1.25,
    "note": "see https://cdn.test/a.png?X-Amz-Signature=abc",
    "api_key": "afk_secret",
}


@pytest.mark.parametrize("level", ["info", "warning"])
def test_a_hot_line_is_the_line_structlog_writes(json_logs: _JsonLogs, level: str) -> None:
    """The per-delivery line, rendered without structlog's pipeline, has the same keys in the
    same order, the same level and logger, a timestamp of the same form, and the same
    redaction as the line structlog writes."""
    json_logs.configure("info")
    getattr(HotLine("framehook.webhook", "delivery"), level)(**DELIVERY_FIELDS)
    getattr(get_logger("framehook.webhook"), level)("delivery", **DELIVERY_FIELDS)
    hot, slow = json_logs.read()
    assert list(hot) == list(slow)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z", hot.pop("timestamp"))
    slow.pop("timestamp")
    assert hot == slow
    assert hot["level"] == level
    assert hot["api_key"] == "[redacted]"
    assert hot["note"] == "see https://cdn.test/a.png?[redacted]"


def test_a_hot_line_below_the_level_is_not_written(json_logs: _JsonLogs) -> None:
    """At ``FRAMEHOOK_LOG_LEVEL=warning`` the info line is dropped, the warning one kept."""
    json_logs.configure("warning")
    line = HotLine("framehook.webhook", "delivery")
    line.info(request_id="quiet")
    line.warning(request_id="loud")
    assert [r["request_id"] for r in json_logs.read()] == ["loud"]


def test_a_hot_line_is_captured_like_any_line(json_logs: _JsonLogs) -> None:
    """Tests capturing structlog's lines see the hot line too (it goes through structlog)."""
    json_logs.configure("info")
    with capture_logs() as logs:
        HotLine("framehook.webhook", "delivery").info(request_id="captured")
    assert [(r["event"], r["request_id"]) for r in logs] == [("delivery", "captured")]
    assert json_logs.read() == []
