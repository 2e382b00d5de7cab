"""Signed webhooks during a flood of unsigned ones: what a bad request costs the good ones.

One run starts ``framehook serve`` (pinned to one CPU, ten signing keys, so a body that matches
none costs twenty HMACs) once per setup, and in each measures a paced stream of signed webhooks
twice: quiet, then while a flooder (pinned to the other CPU) posts bodies with a well-formed but
wrong signature over ``--flooders`` keep-alive connections. It prints the signed webhooks'
p50/p99 in both phases and the ratio flood/quiet. The setups: the default body limit, flooded
with bodies just under it; and the limit raised to 1 MiB, flooded with 1 MiB bodies (the old
default, as the red-team run did).

Exit status: 0 when the run is sound; 1 when a server did not start or died, or no signed
webhook was answered; 2 for unusable arguments.

Usage::

    .venv/bin/python bench/flood.py [--duration 8] [--warmup 1] [--flooders 32] [--json PATH]
                                    [--keep]
"""

# Imports follow the sys.path entry below, which they need.
# ruff: noqa: E402

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))

import argparse
import asyncio
import os
import secrets
import signal
import tempfile
import threading
import time
from collections import Counter
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from typing import Any

import httpx
import orjson

from bench._harness import (
    Column,
    bench_api_key,
    finish,
    framehook_env,
    framehook_serve,
    noting_failures,
    percentile,
    plan_cpus,
    print_table,
    terminate,
)
from receiver.apiframe.signatures import sign

KEYS = 10
PROBE_INTERVAL_S = 0.02
FLOOD_TAIL_S = 0.5
"""The flood outlasts the flooded phase by this much, so it never stops before the probe."""
MiB = 1_048_576


@dataclass(frozen=True, slots=True)
class Setup:
    name: str
    max_body_bytes: int | None  # None: the default
    flood_body_bytes: int


SETUPS = (
    Setup("default limit, 64 KiB bodies", None, 64 * 1024 - 64),
    Setup("limit 1 MiB, 1 MiB bodies", MiB, MiB - 64),
)


@dataclass(slots=True)
class Phase:
    setup: str
    phase: str
    signed: int
    signed_non_2xx: int
    p50_ms: float
    p99_ms: float
    flood_rps: float
    flood_statuses: dict[int, int]


# --------------------------------------------------------------------------- the flooder


async def _flood_connection(
    port: int, request: bytes, deadline: float, statuses: Counter[int]
) -> None:
    reader: asyncio.StreamReader | None = None
    writer: asyncio.StreamWriter | None = None
    while time.monotonic() < deadline:
        try:
            if writer is None:
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
            assert reader is not None
            writer.write(request)
            await writer.drain()
            head = await reader.readuntil(b"\r\n\r\n")
            statuses[int(head[9:12])] += 1
            length = 0
            for line in head.split(b"\r\n"):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":")[1])
            await reader.readexactly(length)
            if b"connection: close" in head.lower():
                writer.close()
                writer = None
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            statuses[0] += 1
            if writer is not None:
                writer.close()
            writer = None
            await asyncio.sleep(0.01)
    if writer is not None:
        writer.close()


def flood(
    port: int, body_bytes: int, seconds: float, connections: int, cpu: int | None
) -> dict[int, int]:
    """Post unsigned-by-us bodies for ``seconds``; the count of each status (0: socket error)."""
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    body = b'{"jobId":"' + b"x" * (body_bytes - 12) + b'"}'
    request = (
        b"POST /webhooks/apiframe HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        b"Content-Type: application/json\r\n"
        + f"X-Webhook-Signature: sha256={secrets.token_hex(32)}\r\n".encode()
        + f"Content-Length: {len(body)}\r\n\r\n".encode()
        + body
    )
    statuses: Counter[int] = Counter()

    async def run() -> None:
        deadline = time.monotonic() + seconds
        await asyncio.gather(
            *(_flood_connection(port, request, deadline, statuses) for _ in range(connections))
        )

    asyncio.run(run())
    return dict(statuses)


# --------------------------------------------------------------------------- the signed probe


def probe(url: str, key: str, seconds: float, tag: str) -> tuple[list[float], int]:
    """Paced signed webhooks for ``seconds``: the sorted latencies of 2xx answers, and the
    count of other answers."""
    latencies: list[float] = []
    others = 0
    deadline = time.monotonic() + seconds
    n = 0
    with httpx.Client(timeout=30, trust_env=False) as client:
        while time.monotonic() < deadline:
            n += 1
            body = orjson.dumps(
                {"jobId": f"flood-{tag}-{n}", "status": "processing", "progress": n % 100}
            )
            headers = {"Content-Type": "application/json", "X-Webhook-Signature": sign(body, key)}
            began = time.perf_counter()
            try:
                answer = client.post(url, content=body, headers=headers)
                ok = 200 <= answer.status_code < 300
            except httpx.TransportError:
                ok = False
            if ok:
                latencies.append(time.perf_counter() - began)
            else:
                others += 1
            time.sleep(PROBE_INTERVAL_S)
    return sorted(latencies), others


def measure(setup: Setup, args: argparse.Namespace, scratch: Path) -> list[Phase]:
    """The quiet and the flooded phase of one setup."""
    plan = plan_cpus()
    key = bench_api_key()
    workdir = scratch / setup.name.split(",")[0].replace(" ", "-")
    workdir.mkdir()
    extra = {
        "FRAMEHOOK_API_KEYS": ",".join(f"afk_flood_other_{i:02d}" for i in range(KEYS - 1)),
        "FRAMEHOOK_HANDLERS": "",
        "FRAMEHOOK_STORAGE_URL": "memory://",
    }
    if setup.max_body_bytes is not None:
        extra["FRAMEHOOK_MAX_BODY_BYTES"] = str(setup.max_body_bytes)
    env = framehook_env(key, f"sqlite:///{workdir / 'fh.db'}", **extra)
    server = framehook_serve("framehook", workdir, env, cpu=plan.server)
    url = f"{server.base_url}/webhooks/apiframe"
    phases = []
    try:
        server.start()
        server.wait_ready([("/readyz", 200)])
        if args.warmup > 0:
            probe(url, key, args.warmup, "warm")
        quiet, quiet_others = probe(url, key, args.duration, "quiet")
        phases.append(
            Phase(setup.name, "quiet", len(quiet), quiet_others,
                  percentile(quiet, 50) * 1000, percentile(quiet, 99) * 1000, 0.0, {})
        )  # fmt: skip
        flood_seconds = args.warmup + args.duration + FLOOD_TAIL_S
        with ProcessPoolExecutor(1) as pool:
            flooding = pool.submit(
                flood, server.port, setup.flood_body_bytes, flood_seconds,
                args.flooders, plan.generator,
            )  # fmt: skip
            time.sleep(args.warmup)  # let the flood reach its pace
            loud, loud_others = probe(url, key, args.duration, "flood")
            statuses = flooding.result()
        server.check_alive()
        refused = sum(n for status, n in statuses.items() if status)
        phases.append(
            Phase(setup.name, "flood", len(loud), loud_others,
                  percentile(loud, 50) * 1000, percentile(loud, 99) * 1000,
                  refused / flood_seconds, statuses)
        )  # fmt: skip
    finally:
        server.stop()
    return phases


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--duration", type=float, default=8.0, help="seconds per phase")
    parser.add_argument(
        "--warmup", type=float, default=1.0,
        help="seconds of signed webhooks before measuring, and of flood before the flooded phase",
    )  # fmt: skip
    parser.add_argument("--flooders", type=int, default=32, help="flooding connections")
    parser.add_argument("--json", type=Path, help="write the figures here")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.warmup < 0 or args.flooders < 1:
        parser.error("--duration must be positive, --warmup not negative and --flooders at least 1")
    signal.signal(signal.SIGTERM, terminate)
    scratch = Path(tempfile.mkdtemp(prefix="framehook-flood-"))
    broken: list[str] = []
    phases: list[Phase] = []
    print(f"machine: {os.cpu_count()} CPUs; {plan_cpus().note}; {KEYS} signing keys")
    with noting_failures(broken):
        for setup in SETUPS:
            phases.extend(measure(setup, args, scratch))
    columns = [
        Column("setup", 30, left=True),
        Column("phase", 6, left=True),
        Column("signed", 7),
        Column("non-2xx", 8),
        Column("p50 ms", 8, ".2f"),
        Column("p99 ms", 8, ".2f"),
        Column("flood req/s", 12, ".0f"),
    ]
    print_table(
        [(p.setup, p.phase, p.signed, p.signed_non_2xx, p.p50_ms, p.p99_ms, p.flood_rps)
         for p in phases],
        columns,
    )  # fmt: skip
    for setup in SETUPS:
        pair = {p.phase: p for p in phases if p.setup == setup.name}
        if "quiet" in pair and "flood" in pair and pair["quiet"].p50_ms > 0:
            ratio = pair["flood"].p50_ms / pair["quiet"].p50_ms
            print(f"ratio signed p50 flood/quiet ({setup.name}) = {ratio:.2f}")
    if phases and not any(p.signed for p in phases):
        broken.append("no signed webhook was answered 2xx")
    report: dict[str, Any] = {"phases": [asdict(p) for p in phases], "broken": broken}
    return finish(broken, report, args.json, scratch, keep=args.keep)


if __name__ == "__main__":
    # The flooder runs in a child process; threads are not enough to load the server.
    threading.current_thread().name = "bench"
    sys.exit(main())
