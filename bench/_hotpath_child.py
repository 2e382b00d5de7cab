"""One measurement of ``bench/hotpath.py``: the receiver's CPU per webhook, in this process.

Run as a script by ``bench/hotpath.py``, never imported: ``receiver`` comes from the checkout
on ``PYTHONPATH`` (the base) or, without one, from the installed one, so this file imports
nothing of the benchmark's (``bench`` would put this checkout ahead on ``sys.path``).

The app is built as ``framehook serve --no-worker`` builds it (settings from the environment,
JSON logs to stderr), its lifespan started, and the deliveries of the workload file are sent
straight to it as ASGI calls by ``concurrency`` tasks at once: no sockets, no HTTP parser, only
what framehook itself does for a webhook (verify, parse, group commit, answer, log). Prints one
JSON line: requests, statuses, CPU seconds of the whole process (every thread: the commit's
fsync, the checkpointer) and wall seconds of the measured part.

Usage: ``python bench/_hotpath_child.py WORKLOAD WARMUP REQUESTS CONCURRENCY``
"""

from __future__ import annotations

import asyncio
import gc
import json
import sys
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

from receiver.app import create_app
from receiver.logs import configure_logging
from receiver.settings import Settings

ROUTE = "/webhooks/apiframe"


def _deliveries(path: str) -> list[tuple[bytes, bytes, bytes]]:
    """(event, signature, body) per line of ``bench._workload.write_deliveries``' format."""
    rows = []
    with open(path, "rb") as lines:
        for line in lines:
            event, signature, body = line.rstrip(b"\n").split(b"\t", 2)
            rows.append((event, signature, body))
    return rows


async def _send_all(
    app: Any, items: Iterator[tuple[bytes, bytes, bytes]], tasks: int
) -> Counter[int]:
    statuses: Counter[int] = Counter()

    async def one(event: bytes, signature: bytes, body: bytes) -> int:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.4"},
            "http_version": "1.1",
            "method": "POST",
            "scheme": "http",
            "path": ROUTE,
            "raw_path": ROUTE.encode(),
            "query_string": b"",
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1"),
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"x-webhook-signature", signature),
                (b"x-webhook-event", event),
            ],
            "client": ("127.0.0.1", 40000),
            "server": ("127.0.0.1", 8000),
            "state": {},
        }
        read = False
        status = 0

        async def receive() -> dict[str, Any]:
            nonlocal read
            if not read:
                read = True
                return {"type": "http.request", "body": body, "more_body": False}
            await asyncio.Event().wait()  # the client stays: nothing more to receive
            raise AssertionError("unreachable")

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]

        await app(scope, receive, send)
        return status

    async def sender() -> None:
        for item in items:
            statuses[await one(*item)] += 1

    await asyncio.gather(*(sender() for _ in range(tasks)))
    return statuses


async def _run(path: str, warmup: int, requests: int, tasks: int) -> dict[str, Any]:
    settings = Settings(run_worker=False)
    configure_logging(settings.resolved_log_format(), settings.log_level)
    rows = _deliveries(path)[: warmup + requests]
    app = create_app(settings)
    # As ``framehook serve`` does before it starts the server.
    gc.collect()
    gc.freeze()
    async with app.router.lifespan_context(app):
        await _send_all(app, iter(rows[:warmup]), tasks)
        cpu, wall = time.process_time(), time.perf_counter()
        statuses = await _send_all(app, iter(rows[warmup:]), tasks)
        cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    return {
        "requests": sum(statuses.values()),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "cpu_s": cpu,
        "wall_s": wall,
    }


def main() -> None:
    path, warmup, requests, tasks = sys.argv[1], *map(int, sys.argv[2:5])
    print(json.dumps(asyncio.run(_run(path, warmup, requests, tasks))), flush=True)


if __name__ == "__main__":
    main()
