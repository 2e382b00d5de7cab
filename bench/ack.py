"""Acknowledgement throughput: framehook's receiver against a bare signature-checking endpoint.

One run starts each server in turn (bare, then framehook; ``--rounds`` repeats the pair), the
server pinned to one CPU and the load generator to the other, replays the *same* pre-signed,
Apiframe-like deliveries against both, and prints requests/s, p50/p99 latency and the ratio
framehook/bare. Targets: ratio >= 0.5 with default SQLite durability, framehook p99 <= 25 ms.

Exit status: 0 when the run is sound, whether or not the targets are met (it is a measurement);
1 when it is broken: a server did not start, a request failed (non-2xx, timeout, socket error)
or an acknowledged delivery is missing from framehook's database; 2 for unusable arguments.

Usage::

    .venv/bin/python bench/ack.py [--duration 10] [--warmup 2] [--connections 32]
        [--generator auto|wrk|httpx] [--rounds 1] [--json PATH] [--keep]
"""

# Imports follow the sys.path entry below, which they need.
# ruff: noqa: E402

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as ``python bench/ack.py``: make the ``bench`` and ``tests`` packages importable.
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))

import argparse
import asyncio
import math
import multiprocessing
import os
import signal
import sqlite3
import ssl
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import AsyncExitStack, closing
from dataclasses import asdict, dataclass
from typing import Any

import httpx

from bench._harness import (
    REQUEST_TIMEOUT_S,
    ROUTE,
    Column,
    CpuPlan,
    Generator,
    LoadResult,
    Replay,
    bare_server,
    bench_api_key,
    choose_generator,
    finish,
    framehook_env,
    framehook_serve,
    measure_servers,
    noting_failures,
    plan_cpus,
    print_table,
    terminate,
    whole_seconds,
)
from bench._workload import Signed, prepare_workload, read_deliveries

TARGET_RATIO = 0.5
TARGET_P99_MS = 25.0
# Above this share of its CPU the load generator, not the server, is probably the bottleneck.
SATURATED_GENERATOR = 0.9


# --------------------------------------------------------------------------- the httpx generator


async def _httpx_drive(
    url: str, deliveries: Sequence[Signed], start: int, seconds: float, connections: int
) -> LoadResult:
    position = start
    sent = 0
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    acked: list[str] = []
    n = len(deliveries)
    # One single-connection client per worker: a shared httpcore pool rescans all of its
    # connections on every request, which costs more CPU than the requests themselves.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    # The URL is plain http, but every client would still load the CA bundle: share one.
    tls = ssl.create_default_context()

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal position, sent
        # Stop sending at the deadline but wait for what is in flight: every request sent is
        # answered or failed, so the database check is exact.
        while time.perf_counter() < deadline:
            d = deliveries[position % n]
            position += 1
            sent += 1
            headers = {
                "Content-Type": "application/json",
                "X-Webhook-Signature": d.signature,
                "X-Webhook-Event": d.event,
            }
            t0 = time.perf_counter()
            try:
                answer = await client.post(url, content=d.body, headers=headers)
            except httpx.TimeoutException:
                errors["timeout"] += 1
                continue
            except httpx.TransportError:
                errors["socket"] += 1
                continue
            latencies.append(time.perf_counter() - t0)
            statuses[answer.status_code] += 1
            request_id = answer.headers.get("x-request-id")
            if 200 <= answer.status_code < 300 and request_id:
                acked.append(request_id)

    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    limits=limits, timeout=REQUEST_TIMEOUT_S, trust_env=False, verify=tls
                )
            )
            for _ in range(connections)
        ]
        began = time.perf_counter()
        cpu_began = time.process_time()
        deadline = began + seconds
        await asyncio.gather(*(worker(client) for client in clients))
        elapsed = time.perf_counter() - began
        cpu = time.process_time() - cpu_began
    latencies.sort()
    return LoadResult.from_latencies(
        "httpx", elapsed, sent, statuses, errors, latencies, cpu, acked_ids=acked
    )


def _httpx_child(
    url: str, data: str, start: int, seconds: float, connections: int, cpu: int | None
) -> LoadResult:
    # Runs in its own process so the client never competes with the harness for the GIL.
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    drive = _httpx_drive(url, read_deliveries(Path(data)), start, seconds, connections)
    try:
        import uvloop  # uvicorn[standard] brings it; it makes this client about 40% faster
    except ImportError:
        return asyncio.run(drive)
    return uvloop.run(drive)


def run_httpx(replay: Replay) -> LoadResult:
    """The fallback generator: asyncio + httpx in a child process, ``connections`` at once."""
    url = f"http://127.0.0.1:{replay.ports[0]}{ROUTE}"
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        future = pool.submit(
            _httpx_child,
            url,
            str(replay.data),
            replay.start,
            replay.seconds,
            replay.connections,
            replay.cpu,
        )
        return future.result(timeout=replay.seconds + 120)


# --------------------------------------------------------------------------- runs


@dataclass(slots=True)
class StoreCheck:
    """framehook's database against what the load generator saw acknowledged."""

    rows: int
    acked: int
    acked_ids: int
    unanswered: int
    missing: int
    ok: bool
    note: str


@dataclass(slots=True)
class Run:
    """One server, one warm-up and one measured run."""

    server: str
    round: int
    measured: LoadResult
    warmup: LoadResult | None
    server_cpu: float
    end_position: int
    store: StoreCheck | None = None

    def row(self) -> dict[str, Any]:
        m = self.measured
        return {
            "server": self.server,
            "round": self.round,
            "requests_per_s": round(m.rps, 1),
            "p50_ms": round(m.p50_ms, 3),
            "p99_ms": round(m.p99_ms, 3),
            "max_ms": round(m.max_ms, 3),
            "responses": m.responses,
            "statuses": {str(k): v for k, v in sorted(m.statuses.items())},
            "non_2xx": m.non_2xx,
            "socket_errors": m.socket_errors,
            "duration_s": round(m.duration_s, 3),
            "server_cpu": round(self.server_cpu, 3),
            "generator_cpu": round(m.generator_cpu, 3),
            "end_position": self.end_position,
            "warmup_requests": None if self.warmup is None else self.warmup.responses,
            "store_check": None if self.store is None else asdict(self.store),
        }


def check_store(db: Path, results: Sequence[LoadResult]) -> StoreCheck:
    """Every acknowledged delivery must be a ``deliveries`` row.

    Each 2xx answer carries framehook's ``X-Request-Id``, stored with the row, so the check is
    by identity, not only by count. wrk stops mid-flight: requests it sent but never saw
    answered may have been stored too, so rows may exceed the 2xx count by that many, no more.
    """
    acked = sum(r.ok for r in results)
    ids = {i for r in results for i in r.acked_ids}
    unanswered = sum(r.unanswered for r in results)
    with closing(sqlite3.connect(db)) as connection:
        rows = connection.execute("SELECT count(*) FROM deliveries").fetchone()[0]
        stored = {row[0] for row in connection.execute("SELECT request_id FROM deliveries")}
    missing = len(ids - stored)
    problems = []
    if len(ids) != acked:
        problems.append(f"{acked - len(ids)} acknowledgements without a usable X-Request-Id")
    if missing:
        problems.append(f"{missing} acknowledged deliveries are not in the database")
    if not acked <= rows <= acked + unanswered:
        problems.append(f"{rows} rows for {acked} acknowledgements (+{unanswered} unanswered)")
    return StoreCheck(rows, acked, len(ids), unanswered, missing, not problems, "; ".join(problems))


def measure(
    kind: str,
    round_no: int,
    generator: Generator,
    args: argparse.Namespace,
    data: Path,
    api_key: str,
    cpus: CpuPlan,
    scratch: Path,
) -> Run:
    """Start one server, warm it up, measure it, stop it (and check framehook's database)."""
    workdir = scratch / f"{kind}-{round_no}"
    workdir.mkdir()
    if kind == "framehook":
        # framehook with its defaults: SQLite in WAL with synchronous=FULL, the download handler.
        env = framehook_env(
            api_key, f"sqlite:///{workdir / 'fh.db'}", FRAMEHOOK_HANDLERS="download"
        )
        server = framehook_serve(kind, workdir, env, worker=not args.no_worker, cpu=cpus.server)
        probes = [("/healthz", 200), ("/readyz", 200)]
    else:
        server = bare_server(kind, workdir, api_key, cpu=cpus.server)
        probes = [(ROUTE, 405)]  # a GET reaching the POST-only route: the app is serving
    warmup = Replay(
        [server.port], data, 0, args.warmup, args.connections, workdir, "warmup",
        cpu=cpus.generator, collect_ids=True,
    )  # fmt: skip
    m = measure_servers([server], probes, generator, warmup, args.duration)
    run = Run(kind, round_no, m.measured, m.warmup, m.server_cpu, m.position + m.measured.sent)
    if kind == "framehook":
        results = [r for r in (m.warmup, m.measured) if r is not None]
        run.store = check_store(workdir / "fh.db", results)
    return run


# --------------------------------------------------------------------------- report

COLUMNS = (
    Column("server", 10, left=True),
    Column("rnd", 3),
    Column("req/s", 9, ".1f"),
    Column("p50 ms", 8, ".2f"),
    Column("p99 ms", 8, ".2f"),
    Column("max ms", 8, ".2f"),
    Column("non-2xx", 7),
    Column("errors", 6),
    Column("srv cpu", 7, ".0%"),
    Column("gen cpu", 7, ".0%"),
)


def _row(run: Run) -> tuple[object, ...]:
    m = run.measured
    return (
        run.server, run.round, m.rps, m.p50_ms, m.p99_ms, m.max_ms, m.non_2xx, m.errors,
        run.server_cpu, m.generator_cpu,
    )  # fmt: skip


def _notes(runs: Sequence[Run], count: int, broken: list[str]) -> None:
    """The notes under the table; what they find broken goes to ``broken``."""
    for run in runs:
        results = [r for r in (run.warmup, run.measured) if r is not None]
        bad = sum(r.non_2xx for r in results)
        failed = sum(r.errors for r in results)
        if bad or failed:
            statuses: Counter[int] = Counter()
            for r in results:
                statuses.update(r.statuses)
            broken.append(
                f"{run.server} round {run.round}: {bad} non-2xx answers, {failed} timeouts/"
                f"socket errors (statuses {dict(statuses)})"
            )
        if run.end_position > count:
            print(f"note: {run.server} round {run.round} wrapped around the workload (duplicates)")
        if run.measured.generator_cpu >= SATURATED_GENERATOR:
            print(
                f"note: {run.server} round {run.round}: the load generator used "
                f"{run.measured.generator_cpu:.0%} of its CPU; the server may not be the bottleneck"
            )
        if run.store is not None:
            s = run.store
            print(
                f"store check round {run.round}: deliveries rows = {s.rows}, 2xx acknowledged = "
                f"{s.acked} (ids found: {s.acked_ids - s.missing}/{s.acked_ids}; "
                f"{s.unanswered} sent but unanswered at stop): {'ok' if s.ok else 'MISMATCH'}"
            )
            if not s.ok:
                broken.append(f"store check round {run.round}: {s.note}")


def _summary(runs: Sequence[Run]) -> dict[str, Any]:
    """The ratio and the p99 against their targets, printed; empty without both servers."""
    bare = [r.measured.rps for r in runs if r.server == "bare"]
    framehook = [r for r in runs if r.server == "framehook"]
    if not (bare and framehook):
        return {}
    ratio = statistics.median(r.measured.rps for r in framehook) / statistics.median(bare)
    # The worst p99 across rounds: a target on tail latency should not be averaged away.
    p99 = max(r.measured.p99_ms for r in framehook)
    ratio_met, p99_met = ratio >= TARGET_RATIO, p99 <= TARGET_P99_MS
    print(f"ratio framehook/bare = {ratio:.2f}")
    print(f"target ratio >= {TARGET_RATIO}: {'met' if ratio_met else 'NOT met'}")
    print(
        f"target framehook p99 <= {TARGET_P99_MS:g} ms: {p99:.2f} ms, "
        f"{'met' if p99_met else 'NOT met'}"
    )
    return {"ratio": round(ratio, 4), "ratio_met": ratio_met, "p99_ms": p99, "p99_met": p99_met}


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per server")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per server")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument("--generator", choices=("auto", "wrk", "httpx"), default="auto")
    parser.add_argument("--rounds", type=int, default=1, help="bare+framehook pairs to run")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write results")
    parser.add_argument("--seed", type=int, default=1, help="workload seed")
    parser.add_argument(
        "--max-rate",
        type=float,
        default=25_000,
        help="requests/s the workload is sized for (more than either server reaches here)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument(
        "--no-worker",
        action="store_true",
        help="run framehook serve --no-worker (the receiver alone, without the embedded worker)",
    )
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.warmup < 0 or args.connections < 1 or args.rounds < 1:
        parser.error("--duration > 0, --warmup >= 0, --connections >= 1, --rounds >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    args = _parse_args(argv)
    signal.signal(signal.SIGTERM, terminate)
    chosen = choose_generator(
        args.generator,
        "httpx",
        run_httpx,
        "falling back to the httpx client, which saturates its CPU long before the servers do: "
        "the ratio will read high.",
    )
    if chosen is None:
        return 2
    generator_name, generator = chosen
    if generator_name == "wrk":
        whole_seconds(args)
    cpus = plan_cpus()
    api_key = bench_api_key()
    count = max(10_000, math.ceil(args.max_rate * (args.warmup + args.duration)))
    scratch = Path(tempfile.mkdtemp(prefix="framehook-bench-"))
    data = scratch / "deliveries.tsv"
    workload = prepare_workload(count, api_key, data, seed=args.seed)
    print(
        f"generator: {generator_name}, {args.connections} connections; {cpus.note}; "
        f"warm-up {args.warmup:g} s + {args.duration:g} s per server, {args.rounds} round(s)"
    )
    runs: list[Run] = []
    broken: list[str] = []
    # SIGTERM ends this benchmark at once (exit status 143), without the report.
    with noting_failures(broken, sigterm=False):
        for round_no in range(1, args.rounds + 1):
            for kind in ("bare", "framehook"):
                runs.append(measure(kind, round_no, generator, args, data, api_key, cpus, scratch))
    print()
    print_table([_row(run) for run in runs], COLUMNS)
    print()
    _notes(runs, count, broken)
    summary = _summary(runs)
    report = {
        "config": {
            "generator": generator_name,
            "connections": args.connections,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "seed": args.seed,
            "cpus": cpus.note,
            "targets": {"ratio": TARGET_RATIO, "p99_ms": TARGET_P99_MS},
        },
        "workload": {"deliveries": count, "jobs": workload.jobs, "events": dict(workload.events)},
        "runs": [run.row() for run in runs],
        "summary": summary,
        "broken": broken,
    }
    return finish(broken, report, args.json, scratch, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
