"""Open-loop latency at a fixed rate: what a receiver answers at 100 or 300 webhooks/s.

A closed-loop generator (``ack.py``: each connection sends its next request when the last is
answered) sends less while the server stalls, so the stall hardly shows in its percentiles
(coordinated omission). Here request *i* is due at ``t0 + i / rate`` whatever happened before,
and its latency runs from that due time: a stalled server, or a request waiting for a free
connection, shows up as latency. The generator (asyncio and httpx in a child process on the
other CPU) keeps up to ``--connections`` keep-alive connections, far more than these rates need,
and prints its own lateness (``gen lag``: the timer's resolution, about a millisecond) beside
the latencies, which include it.

Setups, each a real server process pinned to one CPU, each sent the *same* pre-signed
deliveries (``bench/_workload.py``) afresh per rate:

* ``bare``: the bare signature-checking endpoint (``bench/bare_app.py``);
* ``no-worker``: ``framehook serve --no-worker`` (the receiver alone; SQLite, the download
  handler's tasks queued);
* ``serve``: the default ``framehook serve``, its embedded worker capturing every completed
  job's files (images of ``--file-kib`` sizes) with the built-in ``download`` handler from a
  loopback CDN this script runs (``tests/support/cdn.py``), into local storage.

For each setup and rate: requests sent, errors, p50/p90/p99/max latency; then p99 over the
bare endpoint's and serve's p99 over ``--no-worker``'s, min/median/max over ``--rounds``.
Targets: serve p99 <= 15 ms at 100/s and <= 30 ms at 300/s. Soundness: every 2xx delivery must
be in framehook's database, and after serve's run the worker gets ``--drain`` seconds to
capture what was sent: captured/expected files are reported (a capture that failed for good
breaks the run).

Exit status: 0 when the run is sound, whether or not the targets are met (it is a measurement);
1 when it is broken (a server did not start, a request failed or timed out, an acknowledged
delivery is missing, a capture failed); 2 for unusable arguments.

Usage::

    .venv/bin/python bench/openloop.py [--rates 100,300] [--duration 10] [--warmup 2]
        [--rounds 3] [--connections 256] [--drain 60] [--file-kib 256,3072] [--in-flight 50]
        [--setups bare,no-worker,serve] [--json PATH] [--keep]
"""

# Imports follow the sys.path entry below, which they need.
# ruff: noqa: E402

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as ``python bench/openloop.py``: make the ``bench`` and ``tests`` packages importable.
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))

import argparse
import asyncio
import hashlib
import json
import math
import multiprocessing
import os
import shutil
import signal
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
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
    LoadResult,
    Replay,
    Server,
    bare_server,
    bench_api_key,
    each_round,
    finish,
    framehook_env,
    framehook_serve,
    measure_servers,
    percentile,
    plan_cpus,
    print_table,
    terminate,
)
from bench._workload import Signed, prepare_workload, read_deliveries, write_deliveries
from bench.ack import (
    StoreCheck,
    Tally,
    check_store,
    open_clients,
    request_failures,
    run_pinned,
    spread,
)
from receiver import sign
from receiver.dev.fakeapi.bodies import CDN_BASE_URL
from tests.support.cdn import FakeCdn, Route
from tests.support.media import media_bytes

SETUPS = ("bare", "no-worker", "serve")
BASELINES = {"no-worker": ("bare",), "serve": ("bare", "no-worker")}
"""Each setup's p99 is divided by these setups' (same rate, same round)."""
TARGET_P99_MS = {100.0: 15.0, 300.0: 30.0}
"""serve's p99 targets by rate (webhooks/s); other rates have none."""
FILE_SIZES = 6
"""Distinct file sizes the CDN serves, spread evenly (log scale) over ``--file-kib``."""


# --------------------------------------------------------------------------- the generator


@dataclass(slots=True)
class OpenLoopResult(LoadResult):
    """A fixed-rate run: latencies from each request's due time, and the generator's own
    lateness (how long after its due time each request was handed to a connection's task)."""

    rate: float = 0.0
    p90_ms: float = 0.0
    lag_p99_ms: float = 0.0
    lag_max_ms: float = 0.0


async def _open_loop(
    url: str,
    deliveries: Sequence[Signed],
    start: int,
    rate: float,
    seconds: float,
    connections: int,
) -> OpenLoopResult:
    n = len(deliveries)
    total = max(1, math.floor(rate * seconds))
    tally = Tally()
    lags: list[float] = []
    # Single-connection clients, last in, first out: the few connections these rates need stay
    # warm, and the others are only opened if the server stalls.
    idle: asyncio.LifoQueue[httpx.AsyncClient] = asyncio.LifoQueue()

    async def one(i: int, due: float) -> None:
        # Waiting here for a free connection counts: the clock started at the due time.
        client = await idle.get()
        try:
            await tally.post(client, url, deliveries[(start + i) % n], since=due)
        finally:
            idle.put_nowait(client)

    async with AsyncExitStack() as stack:
        for client in await open_clients(stack, connections):
            idle.put_nowait(client)
        # One request off the clock first: httpx imports and sets up its HTTP/1.1 machinery on
        # the first, which would stall the loop past the first due times. A GET stores nothing.
        primer = await idle.get()
        await primer.get(url)
        idle.put_nowait(primer)
        tasks: list[asyncio.Task[None]] = []
        cpu_began = time.process_time()
        t0 = time.perf_counter() + 0.01
        for i in range(total):
            due = t0 + i / rate
            delay = due - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            lags.append(time.perf_counter() - due)
            tasks.append(asyncio.create_task(one(i, due)))
        # Every request sent is answered or failed (timeout) before the run ends, so the
        # database check is exact.
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - t0
        cpu = time.process_time() - cpu_began
    latencies = sorted(tally.latencies)
    lags.sort()
    result = OpenLoopResult.from_latencies(
        "openloop", elapsed, total, tally.statuses, tally.errors, latencies, cpu, tally.acked
    )
    assert isinstance(result, OpenLoopResult)
    result.rate = rate
    result.p90_ms = percentile(latencies, 90) * 1000
    result.lag_p99_ms = percentile(lags, 99) * 1000
    result.lag_max_ms = lags[-1] * 1000
    return result


def _open_loop_child(
    url: str, data: str, start: int, rate: float, seconds: float, connections: int, cpu: int | None
) -> OpenLoopResult:
    # Its own process, so the CDN's threads in the harness never hold the generator's GIL.
    deliveries = read_deliveries(Path(data))
    return run_pinned(cpu, _open_loop(url, deliveries, start, rate, seconds, connections))


def open_loop(rate: float, pool: ProcessPoolExecutor) -> Callable[[Replay], LoadResult]:
    """The generator at ``rate`` requests/s in ``pool``'s process, for ``measure_servers``."""

    def generate(replay: Replay) -> LoadResult:
        url = f"http://127.0.0.1:{replay.ports[0]}{ROUTE}"
        future = pool.submit(
            _open_loop_child, url, str(replay.data), replay.start, rate, replay.seconds,
            replay.connections, replay.cpu,
        )  # fmt: skip
        return future.result(timeout=replay.seconds + REQUEST_TIMEOUT_S + 120)

    return generate


# --------------------------------------------------------------------------- the CDN


def _cdn_paths(body: bytes, base: str) -> Iterator[str]:
    """The paths under ``base`` of every URL a delivery's result names."""

    def walk(value: Any) -> Iterator[str]:
        if isinstance(value, str) and value.startswith(base + "/"):
            yield value[len(base) :]
        elif isinstance(value, dict):
            for item in value.values():
                yield from walk(item)
        elif isinstance(value, list):
            for item in value:
                yield from walk(item)

    yield from walk(json.loads(body).get("result"))


def rebased(deliveries: Sequence[Signed], base: str, api_key: str) -> list[Signed]:
    """The deliveries with their result URLs moved from Apiframe's CDN to ``base``, signed
    again (a repeat stays the same bytes as its original)."""
    old, new = CDN_BASE_URL.encode(), base.encode()
    out = []
    for d in deliveries:
        body = d.body.replace(old, new)
        out.append(d if body == d.body else Signed(d.event, sign(body, api_key), body))
    return out


def serve_files(cdn: FakeCdn, deliveries: Sequence[Signed], base: str, kib: Sequence[int]) -> int:
    """Route every file the deliveries name to a PNG of one of ``FILE_SIZES`` sizes (the same
    few bodies shared: the CDN holds megabytes, not gigabytes); returns how many paths."""
    low, high = kib
    sizes = [
        round(low * (high / low) ** (i / max(1, FILE_SIZES - 1))) * 1024 for i in range(FILE_SIZES)
    ]
    bodies = [media_bytes("png", size, seed=i) for i, size in enumerate(sizes)]
    for d in deliveries:
        if d.event != "completed":
            continue
        for path in _cdn_paths(d.body, base):
            pick = int.from_bytes(hashlib.sha256(path.encode()).digest()[:4], "big")
            cdn.route(path, Route(body=bodies[pick % len(bodies)], content_type="image/png"))
    return len(cdn.routes)


# --------------------------------------------------------------------------- runs


@dataclass(slots=True)
class Capture:
    """serve's worker after the run: the files the jobs name and those stored."""

    expected: int
    captured: int
    dead_tasks: int
    unfinished_tasks: int
    drain_s: float


def _captures(db: Path) -> tuple[int, int, int, int]:
    """(files the jobs name, assets stored, dead tasks, tasks not finished) in ``db``."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=10)) as connection:
        expected = connection.execute(
            "SELECT coalesce(sum(files_expected), 0) FROM jobs WHERE NOT test"
        ).fetchone()[0]
        captured = connection.execute("SELECT count(*) FROM assets").fetchone()[0]
        dead, unfinished = connection.execute(
            "SELECT coalesce(sum(status = 'dead'), 0), "
            "coalesce(sum(status IN ('waiting', 'queued', 'running')), 0) FROM tasks"
        ).fetchone()
    return int(expected), int(captured), int(dead), int(unfinished)


def wait_for_captures(db: Path, server: Server, seconds: float) -> Capture:
    """Until the worker has no task left to run (or ``seconds`` pass)."""
    began = time.monotonic()
    while True:
        server.check_alive()
        expected, captured, dead, unfinished = _captures(db)
        waited = time.monotonic() - began
        if unfinished == 0 or waited >= seconds:
            return Capture(expected, captured, dead, unfinished, waited)
        time.sleep(0.25)


@dataclass(slots=True)
class Run:
    """One setup at one rate: a warm-up and a measured run against a fresh server."""

    setup: str
    rate: float
    round: int
    measured: OpenLoopResult
    warmup: LoadResult | None
    server_cpu: float
    store: StoreCheck | None = None
    capture: Capture | None = None

    def row(self) -> dict[str, Any]:
        m = self.measured
        return {
            "setup": self.setup,
            "rate": self.rate,
            "round": self.round,
            "sent": m.sent,
            "statuses": {str(k): v for k, v in sorted(m.statuses.items())},
            "non_2xx": m.non_2xx,
            "socket_errors": m.socket_errors,
            "p50_ms": round(m.p50_ms, 3),
            "p90_ms": round(m.p90_ms, 3),
            "p99_ms": round(m.p99_ms, 3),
            "max_ms": round(m.max_ms, 3),
            "generator_lag_p99_ms": round(m.lag_p99_ms, 3),
            "generator_lag_max_ms": round(m.lag_max_ms, 3),
            "duration_s": round(m.duration_s, 3),
            "server_cpu": round(self.server_cpu, 3),
            "generator_cpu": round(m.generator_cpu, 3),
            "warmup_requests": None if self.warmup is None else self.warmup.sent,
            "store_check": None if self.store is None else asdict(self.store),
            "capture": None if self.capture is None else asdict(self.capture),
        }


@dataclass(frozen=True, slots=True)
class Setup:
    """What every run shares."""

    args: argparse.Namespace
    data: Path
    api_key: str
    cpus: CpuPlan
    scratch: Path
    pool: ProcessPoolExecutor  # the generator's process, started once for every run


def measure(setup_name: str, rate: float, round_no: int, s: Setup) -> Run:
    """Start one fresh server, warm it up and measure it at ``rate``; for serve, wait for its
    worker; stop it and check its database."""
    args = s.args
    workdir = s.scratch / f"{setup_name}-{rate:g}-{round_no}"
    workdir.mkdir()
    db = workdir / "fh.db"
    if setup_name == "bare":
        server = bare_server(setup_name, workdir, s.api_key, cpu=s.cpus.server)
        probes = [(ROUTE, 405)]  # a GET reaching the POST-only route: the app is serving
    else:
        env = framehook_env(
            s.api_key,
            f"sqlite:///{db}",
            FRAMEHOOK_HANDLERS="download",
            FRAMEHOOK_STORAGE_URL=str(workdir / "assets"),
            # The CDN is on loopback over plain http: allow exactly that.
            FRAMEHOOK_ASSET_HOSTS="localhost",
            FRAMEHOOK_ASSET_ALLOW_HTTP="true",
            FRAMEHOOK_ASSET_ALLOW_NETWORKS="127.0.0.0/8,::1/128",
        )
        worker = setup_name == "serve"
        server = framehook_serve(setup_name, workdir, env, worker=worker, cpu=s.cpus.server)
        probes = [("/healthz", 200), ("/readyz", 200)]
    captures: list[Capture] = []

    def drain() -> None:
        if setup_name == "serve":
            captures.append(wait_for_captures(db, server, args.drain))

    warmup = Replay(
        [server.port], s.data, 0, args.warmup, args.connections, workdir, "warmup",
        cpu=s.cpus.generator, collect_ids=True,
    )  # fmt: skip
    generator = open_loop(rate, s.pool)
    m = measure_servers([server], probes, generator, warmup, args.duration, drain)
    assert isinstance(m.measured, OpenLoopResult)
    run = Run(setup_name, rate, round_no, m.measured, m.warmup, m.server_cpu)
    if setup_name != "bare":
        run.store = check_store(db, [r for r in (m.warmup, m.measured) if r is not None])
    run.capture = captures[0] if captures else None
    # The captured files are counted: free the disk for the next run (hundreds of MB each).
    shutil.rmtree(workdir / "assets", ignore_errors=True)
    return run


# --------------------------------------------------------------------------- report

COLUMNS = (
    Column("setup", 9, left=True),
    Column("rate", 5, ".0f"),
    Column("rnd", 3),
    Column("sent", 6),
    Column("errors", 6),
    Column("p50 ms", 8, ".2f"),
    Column("p90 ms", 8, ".2f"),
    Column("p99 ms", 8, ".2f"),
    Column("max ms", 8, ".2f"),
    Column("gen lag p99", 11, ".2f"),
    Column("srv cpu", 7, ".0%"),
    Column("captured", 11, left=False),
)


def _row(run: Run) -> tuple[object, ...]:
    m = run.measured
    c = run.capture
    captured = "" if c is None else f"{c.captured}/{c.expected}"
    return (
        run.setup, run.rate, run.round, m.sent, m.non_2xx + m.errors, m.p50_ms, m.p90_ms,
        m.p99_ms, m.max_ms, m.lag_p99_ms, run.server_cpu, captured,
    )  # fmt: skip


def _text(spread: dict[str, float], unit: str = "") -> str:
    return f"{spread['min']:.2f}/{spread['median']:.2f}/{spread['max']:.2f}{unit}"


def _p99_ratios(runs: Sequence[Run], rate: float, setup: str, baseline: str) -> list[float]:
    """``setup``'s p99 over ``baseline``'s at ``rate``, one ratio a round that measured both."""
    p99 = {(r.setup, r.round): r.measured.p99_ms for r in runs if r.rate == rate}
    rounds = sorted({r.round for r in runs})
    return [
        p99[(setup, n)] / p99[(baseline, n)]
        for n in rounds
        if p99.get((setup, n)) and p99.get((baseline, n))
    ]


def _summary(runs: Sequence[Run], rates: Sequence[float]) -> dict[str, Any]:
    """Per rate: each setup's p99, the ratios and serve's target, min/median/max over rounds
    (printed)."""
    summary: dict[str, Any] = {}
    for rate in rates:
        at: dict[str, Any] = {}
        for setup in SETUPS:
            p99s = [r.measured.p99_ms for r in runs if r.rate == rate and r.setup == setup]
            if not p99s:
                continue
            at[setup] = {"p99_ms": spread(p99s)}
            line = f"{rate:g}/s {setup:<9} p99 min/median/max = {_text(at[setup]['p99_ms'], ' ms')}"
            for baseline in BASELINES.get(setup, ()):
                ratios = _p99_ratios(runs, rate, setup, baseline)
                if ratios:
                    seen = at[setup][f"p99_over_{baseline}"] = spread(ratios)
                    line += f"; p99/p99({baseline}) = {_text(seen)}"
            print(line)
        target = TARGET_P99_MS.get(rate)
        if target is not None and "serve" in at:
            # The worst round: a tail-latency target should not be averaged away.
            worst = at["serve"]["p99_ms"]["max"]
            met = worst <= target
            at["serve"]["target_p99_ms"] = target
            at["serve"]["target_met"] = met
            print(
                f"target serve p99 <= {target:g} ms at {rate:g}/s: worst round {worst:.2f} ms, "
                f"{'met' if met else 'NOT met'}"
            )
        summary[f"{rate:g}"] = at
    return summary


def _notes(runs: Sequence[Run], broken: list[str]) -> None:
    """The soundness lines under the table; what they find broken goes to ``broken``."""
    for run in runs:
        name = f"{run.setup} at {run.rate:g}/s round {run.round}"
        failures = request_failures([run.warmup, run.measured])
        if failures:
            broken.append(f"{name}: {failures}")
        if run.measured.lag_p99_ms > 2.0:
            print(
                f"note: {name}: the generator itself was {run.measured.lag_p99_ms:.1f} ms late "
                "(p99: a busy machine, or a burst of answers after a stall holding its loop); "
                "that lateness is in the latencies"
            )
        if run.store is not None and not run.store.ok:
            broken.append(f"{name}: store check: {run.store.note}")
        c = run.capture
        if c is not None:
            state = "drained" if c.unfinished_tasks == 0 else f"{c.unfinished_tasks} tasks left"
            print(
                f"{name}: captured {c.captured}/{c.expected} files ({state} "
                f"{c.drain_s:.1f} s after the run; {c.dead_tasks} dead tasks)"
            )
            if c.dead_tasks:
                broken.append(f"{name}: {c.dead_tasks} capture tasks failed for good (dead)")
    checked = [r.store for r in runs if r.store is not None]
    if checked and all(s.ok for s in checked):
        acked = sum(s.acked for s in checked)
        print(f"store check: all {acked} acknowledged deliveries are in framehook's databases")


# --------------------------------------------------------------------------- main


def _numbers(text: str, kind: type[float] | type[int]) -> list[Any]:
    return [kind(part) for part in text.split(",") if part.strip()]


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rates", default="100,300", help="webhooks/s, comma-separated")
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds a rate")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds a rate")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of every setup and rate")
    parser.add_argument(
        "--connections", type=int, default=256, help="most connections the generator opens"
    )
    parser.add_argument(
        "--drain", type=float, default=60.0, help="seconds serve's worker gets after a run"
    )
    parser.add_argument(
        "--file-kib", default="256,3072", help="smallest,largest file the CDN serves (KiB)"
    )
    parser.add_argument("--seed", type=int, default=1, help="workload seed")
    parser.add_argument(
        "--in-flight", type=int, default=50, help="jobs the workload interleaves at a time"
    )
    parser.add_argument(
        "--setups", default=",".join(SETUPS), help="which setups to run, comma-separated"
    )
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write results")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)
    try:
        args.rates = _numbers(args.rates, float)
        args.file_kib = _numbers(args.file_kib, int)
    except ValueError:
        parser.error("--rates and --file-kib take comma-separated numbers")
    args.setups = [name.strip() for name in args.setups.split(",") if name.strip()]
    if not args.setups or not set(args.setups) <= set(SETUPS):
        parser.error(f"--setups takes some of {','.join(SETUPS)}")
    if not args.rates or min(args.rates) <= 0:
        parser.error("--rates needs at least one rate, each > 0")
    if len(args.file_kib) != 2 or not 0 < args.file_kib[0] <= args.file_kib[1]:
        parser.error("--file-kib takes two sizes in KiB, smallest first: 256,3072")
    if args.duration <= 0 or args.warmup < 0 or args.rounds < 1 or args.connections < 1:
        parser.error("--duration > 0, --warmup >= 0, --rounds >= 1, --connections >= 1")
    if args.drain < 0 or args.in_flight < 1:
        parser.error("--drain >= 0, --in-flight >= 1")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    args = _parse_args(argv)
    signal.signal(signal.SIGTERM, terminate)
    cpus = plan_cpus()
    if cpus.generator is not None:
        # The CDN's threads run here: on the generator's CPU, never the server's.
        os.sched_setaffinity(0, {cpus.generator})
    api_key = bench_api_key()
    # Every run starts at the first delivery, so the workload covers the longest run once.
    count = max(1000, math.ceil(max(args.rates) * (args.warmup + args.duration)) + 100)
    scratch = Path(tempfile.mkdtemp(prefix="framehook-bench-"))
    data = scratch / "deliveries.tsv"
    workload = prepare_workload(count, api_key, data, seed=args.seed, in_flight=args.in_flight)
    broken: list[str] = []
    with FakeCdn() as cdn:
        base = f"http://localhost:{cdn.port}"
        deliveries = rebased(read_deliveries(data), base, api_key)
        write_deliveries(data, deliveries)
        files = serve_files(cdn, deliveries, base, args.file_kib)
        print(
            f"CDN: {files} files ({args.file_kib[0]}-{args.file_kib[1]} KiB PNGs) at {base}; "
            f"{cpus.note}; up to {args.connections} connections; warm-up {args.warmup:g} s + "
            f"{args.duration:g} s per setup and rate, {args.rounds} round(s)"
        )
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(1, mp_context=spawn) as pool:
            setup = Setup(args, data, api_key, cpus, scratch, pool)
            cases = [(rate, name) for rate in args.rates for name in SETUPS if name in args.setups]
            runs = each_round(
                args.rounds, cases, lambda case, n: measure(case[1], case[0], n, setup), broken
            )
    print()
    print_table([_row(run) for run in runs], COLUMNS)
    print()
    _notes(runs, broken)
    summary = _summary(runs, args.rates)
    report = {
        "config": {
            "rates": args.rates,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "connections": args.connections,
            "drain_s": args.drain,
            "file_kib": args.file_kib,
            "seed": args.seed,
            "in_flight": args.in_flight,
            "setups": args.setups,
            "cpus": cpus.note,
            "targets": {"serve_p99_ms": {f"{k:g}": v for k, v in TARGET_P99_MS.items()}},
        },
        "workload": {"deliveries": count, "jobs": workload.jobs, "events": dict(workload.events)},
        "runs": [run.row() for run in runs],
        "summary": summary,
        "broken": broken,
    }
    return finish(broken, report, args.json, scratch, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
