"""Logs never carry secrets or signed URL query strings, and reach stderr in order, each line
whole."""

from __future__ import annotations

import asyncio
import io
import logging
from typing import Any

import orjson
import pytest
import structlog

from receiver.logs import LineWriter, configure_logging, get_logger, redact


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
