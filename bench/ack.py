"""Acknowledgement throughput: framehook's receiver against two baselines.

* ``bare``: a Starlette endpoint that only checks the signature (``bench/bare_app.py``);
* ``naive``: what a user would write instead, Starlette + SQLModel with a session and a commit
  per request and framehook's SQLite durability (``bench/naive_app.py``).

Each round starts each server in turn (bare, naive, framehook), the server pinned to one CPU
and the load generator to the other, replays the *same* pre-signed, Apiframe-like deliveries
against each, and prints requests/s, p50/p99 latency and the ratios framehook/bare and
framehook/naive (min/median/max over ``--rounds``, each round's servers paired). Targets:
framehook/bare >= 0.5 with default SQLite durability, framehook p99 <= 25 ms.

Exit status: 0 when the run is sound, whether or not the targets are met (it is a measurement);
1 when it is broken: a server did not start, a request failed (non-2xx, timeout, socket error)
or an acknowledged delivery is missing from framehook's (or the naive receiver's) database; 2 for
unusable arguments.

Usage::

    .venv/bin/python bench/ack.py [--duration 10] [--warmup 2] [--connections 32]
        [--generator auto|wrk|httpx] [--rounds 1] [--json PATH] [--keep] [--base DIR]

``--base DIR`` measures a change: DIR is another framehook checkout (``git worktree add
/tmp/base main``), served as ``base`` right after ``framehook`` in each round, with the same
settings and workload; the ratio framehook/base is printed beside the others.
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
from collections.abc import Coroutine, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import AsyncExitStack, closing
from dataclasses import asdict, dataclass, field
from typing import Any, TypeVar

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
    clean_environment,
    each_round,
    finish,
    framehook_checkout,
    framehook_env,
    framehook_serve,
    measure_server,
    plan_cpus,
    print_table,
    terminate,
    uvicorn_server,
    whole_seconds,
)
from bench._workload import Signed, prepare_workload, read_deliveries

SERVERS = ("bare", "naive", "framehook")
TARGET_RATIO = 0.5
TARGET_P99_MS = 25.0
# Above this share of its CPU the load generator, not the server, is probably the bottleneck.
SATURATED_GENERATOR = 0.9

_T = TypeVar("_T")


# --------------------------------------------------------------------------- the httpx generator


@dataclass(slots=True)
class Tally:
    """What a Python generator's requests came to (``openloop.py``'s generator too)."""

    latencies: list[float] = field(default_factory=list)  # seconds, of answered requests
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    acked: list[str] = field(default_factory=list)  # every 2xx's X-Request-Id

    async def post(self, client: httpx.AsyncClient, url: str, d: Signed, since: float) -> None:
        """Send ``d``; its latency counts from ``since`` (a ``time.perf_counter()``)."""
        try:
            answer = await client.post(url, content=d.body, headers=d.headers())
        except httpx.TimeoutException:
            self.errors["timeout"] += 1
            return
        except httpx.TransportError:
            self.errors["socket"] += 1
            return
        self.latencies.append(time.perf_counter() - since)
        self.statuses[answer.status_code] += 1
        request_id = answer.headers.get("x-request-id")
        if 200 <= answer.status_code < 300 and request_id:
            self.acked.append(request_id)


async def open_clients(stack: AsyncExitStack, count: int) -> list[httpx.AsyncClient]:
    """``count`` single-connection clients, closed with ``stack``."""
    # One connection per client: a shared httpcore pool rescans all of its connections on
    # every request, which costs more CPU than the requests themselves.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    # The URL is plain http, but every client would still load the CA bundle: share one.
    tls = ssl.create_default_context()
    return [
        await stack.enter_async_context(
            httpx.AsyncClient(limits=limits, timeout=REQUEST_TIMEOUT_S, trust_env=False, verify=tls)
        )
        for _ in range(count)
    ]


def run_pinned(cpu: int | None, main: Coroutine[Any, Any, _T]) -> _T:
    """Run ``main`` in this (generator child) process pinned to ``cpu``, on uvloop if present."""
    # A process of its own, so the client never competes with the harness for the GIL.
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    try:
        import uvloop  # uvicorn[standard] brings it; it makes this client about 40% faster
    except ImportError:
        return asyncio.run(main)
    return uvloop.run(main)


async def _httpx_drive(
    url: str, deliveries: Sequence[Signed], start: int, seconds: float, connections: int
) -> LoadResult:
    position = start
    sent = 0
    tally = Tally()
    n = len(deliveries)

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal position, sent
        # Stop sending at the deadline but wait for what is in flight: every request sent is
        # answered or failed, so the database check is exact.
        while time.perf_counter() < deadline:
            d = deliveries[position % n]
            position += 1
            sent += 1
            await tally.post(client, url, d, time.perf_counter())

    async with AsyncExitStack() as stack:
        clients = await open_clients(stack, connections)
        began = time.perf_counter()
        cpu_began = time.process_time()
        deadline = began + seconds
        await asyncio.gather(*(worker(client) for client in clients))
        elapsed = time.perf_counter() - began
        cpu = time.process_time() - cpu_began
    tally.latencies.sort()
    return LoadResult.from_latencies(
        "httpx", elapsed, sent, tally.statuses, tally.errors, tally.latencies, cpu, tally.acked
    )


def _httpx_child(
    url: str, data: str, start: int, seconds: float, connections: int, cpu: int | None
) -> LoadResult:
    deliveries = read_deliveries(Path(data))
    return run_pinned(cpu, _httpx_drive(url, deliveries, start, seconds, connections))


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


def check_naive_store(db: Path, results: Sequence[LoadResult]) -> StoreCheck:
    """The naive receiver answers 202 only once its commit is done (200 for a repeat): its rows
    must be the 202s, plus at most the requests sent but never answered."""
    acked = sum(r.statuses.get(202, 0) for r in results)
    unanswered = sum(r.unanswered for r in results)
    with closing(sqlite3.connect(db)) as connection:
        rows = connection.execute("SELECT count(*) FROM naive_deliveries").fetchone()[0]
    ok = acked <= rows <= acked + unanswered
    note = "" if ok else f"{rows} rows for {acked} 202 answers (+{unanswered} unanswered)"
    return StoreCheck(rows, acked, acked, unanswered, 0, ok, note)


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
    if kind in ("framehook", "base"):
        # framehook with its defaults: SQLite in WAL with synchronous=FULL, the download handler.
        env = framehook_env(
            api_key, f"sqlite:///{workdir / 'fh.db'}", FRAMEHOOK_HANDLERS="download"
        )
        source = args.base if kind == "base" else None
        server = framehook_serve(
            kind, workdir, env, worker=not args.no_worker, cpu=cpus.server, source=source
        )
        probes = [("/healthz", 200), ("/readyz", 200)]
    elif kind == "naive":
        env = clean_environment() | {
            "APIFRAME_API_KEY": api_key,
            "NAIVE_DATABASE_URL": f"sqlite:///{workdir / 'naive.db'}",
        }
        server = uvicorn_server(kind, workdir, "bench.naive_app:app", env, cpu=cpus.server)
        probes = [(ROUTE, 405)]
    else:
        server = bare_server(kind, workdir, api_key, cpu=cpus.server)
        probes = [(ROUTE, 405)]  # a GET reaching the POST-only route: the app is serving
    m = measure_server(server, probes, generator, data, args, cpus, workdir, collect_ids=True)
    run = Run(kind, round_no, m.measured, m.warmup, m.server_cpu, m.position + m.measured.sent)
    results = [r for r in (m.warmup, m.measured) if r is not None]
    if kind in ("framehook", "base"):
        run.store = check_store(workdir / "fh.db", results)
    elif kind == "naive":
        run.store = check_naive_store(workdir / "naive.db", results)
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


def request_failures(results: Sequence[LoadResult | None]) -> str | None:
    """What went wrong with the requests of ``results`` (None: nothing; None results skipped)."""
    ran = [r for r in results if r is not None]
    bad = sum(r.non_2xx for r in ran)
    failed = sum(r.errors for r in ran)
    if not (bad or failed):
        return None
    statuses: Counter[int] = Counter()
    for r in ran:
        statuses.update(r.statuses)
    return f"{bad} non-2xx answers, {failed} timeouts/socket errors (statuses {dict(statuses)})"


def _notes(runs: Sequence[Run], count: int, broken: list[str]) -> None:
    """The notes under the table; what they find broken goes to ``broken``."""
    for run in runs:
        failures = request_failures([run.warmup, run.measured])
        if failures:
            broken.append(f"{run.server} round {run.round}: {failures}")
        if run.end_position > count:
            print(f"note: {run.server} round {run.round} wrapped around the workload (duplicates)")
        if run.measured.generator_cpu >= SATURATED_GENERATOR:
            print(
                f"note: {run.server} round {run.round}: the load generator used "
                f"{run.measured.generator_cpu:.0%} of its CPU; the server may not be the bottleneck"
            )
        if run.store is not None:
            s = run.store
            found = f"ids found: {s.acked_ids - s.missing}/{s.acked_ids}; "
            print(
                f"{run.server} store check round {run.round}: deliveries rows = {s.rows}, "
                f"{'202' if run.server == 'naive' else '2xx'} acknowledged = {s.acked} "
                f"({found if run.server != 'naive' else ''}"
                f"{s.unanswered} sent but unanswered at stop): {'ok' if s.ok else 'MISMATCH'}"
            )
            if not s.ok:
                broken.append(f"{run.server} store check round {run.round}: {s.note}")


def spread(values: Sequence[float]) -> dict[str, float]:
    """min/median/max of ``values`` (rounded for the report)."""
    return {
        "min": round(min(values), 4),
        "median": round(statistics.median(values), 4),
        "max": round(max(values), 4),
    }


def _ratios(runs: Sequence[Run], baseline: str, server: str = "framehook") -> list[float]:
    """``server``'s requests/s over ``baseline``'s, one ratio a round that measured both."""
    rps = {(r.server, r.round): r.measured.rps for r in runs}
    rounds = sorted({r.round for r in runs})
    return [
        rps[(server, n)] / rps[(baseline, n)]
        for n in rounds
        if rps.get((server, n)) and rps.get((baseline, n))
    ]


def _summary(runs: Sequence[Run]) -> dict[str, Any]:
    """The ratios (min/median/max over rounds) and the p99 against their targets, printed;
    empty without framehook and the bare endpoint."""
    framehook = [r for r in runs if r.server == "framehook"]
    ratios = {baseline: _ratios(runs, baseline) for baseline in ("bare", "naive", "base")}
    if not (framehook and ratios["bare"]):
        return {}
    for baseline, values in ratios.items():
        if values:
            seen = spread(values)
            print(
                f"ratio framehook/{baseline} = {seen['median']:.2f} (min {seen['min']:.2f}, "
                f"max {seen['max']:.2f} over {len(values)} round(s))"
            )
    base_bare = _ratios(runs, "bare", server="base")
    if base_bare:
        seen = spread(base_bare)
        print(
            f"ratio base/bare = {seen['median']:.2f} (min {seen['min']:.2f}, "
            f"max {seen['max']:.2f} over {len(base_bare)} round(s))"
        )
    ratio = statistics.median(ratios["bare"])
    # The worst p99 across rounds: a target on tail latency should not be averaged away.
    p99 = max(r.measured.p99_ms for r in framehook)
    ratio_met, p99_met = ratio >= TARGET_RATIO, p99 <= TARGET_P99_MS
    print(f"target ratio framehook/bare >= {TARGET_RATIO}: {'met' if ratio_met else 'NOT met'}")
    print(
        f"target framehook p99 <= {TARGET_P99_MS:g} ms: {p99:.2f} ms, "
        f"{'met' if p99_met else 'NOT met'}"
    )
    return {
        "ratio": round(ratio, 4),
        "ratio_met": ratio_met,
        "p99_ms": p99,
        "p99_met": p99_met,
        "ratio_bare": spread(ratios["bare"]),
        "ratio_naive": spread(ratios["naive"]) if ratios["naive"] else None,
        "ratio_base": spread(ratios["base"]) if ratios["base"] else None,
    }


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per server")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per server")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument("--generator", choices=("auto", "wrk", "httpx"), default="auto")
    parser.add_argument(
        "--rounds", type=int, default=1, help="rounds of bare, naive and framehook to run"
    )
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write results")
    parser.add_argument("--seed", type=int, default=1, help="workload seed")
    parser.add_argument(
        "--max-rate",
        type=float,
        default=40_000,
        help="requests/s the workload is sized for (more than either server reaches here)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument(
        "--no-worker",
        action="store_true",
        help="run framehook serve --no-worker (the receiver alone, without the embedded worker)",
    )
    parser.add_argument(
        "--base",
        type=framehook_checkout,
        default=None,
        metavar="DIR",
        help="another framehook checkout, measured beside this one in each round (as 'base')",
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
    broken: list[str] = []
    runs = each_round(
        args.rounds,
        (*SERVERS, "base") if args.base is not None else SERVERS,
        lambda kind, n: measure(kind, n, generator, args, data, api_key, cpus, scratch),
        broken,
    )
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
            "base": None if args.base is None else str(args.base),
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
