"""Scale-out on PostgreSQL: accepted webhooks/s with 1 and 2 receivers, and events/s drained
end to end by 3 workers.

Part 1, intake. Four setups in one run, each with the same load generator, connections and
pre-signed, Apiframe-like deliveries (``bench/_workload.py``, as ``bench/ack.py`` replays):
the bare endpoint (``bench/bare_app.py``: verifies the HMAC, answers 202, no database) as 1
process, then ``framehook serve --no-worker`` as 1 receiver on a fresh PostgreSQL database,
then both again with 2 processes. Prints accepted (2xx) webhooks/s, p50/p99, and each framehook
setup's ratio to the bare endpoint with as many processes, plus how 2 receivers compare with 1.

With 2 processes the load is balanced by the generator itself: wrk's threads (or, without
wrk, the Python generator's processes) connect to the receivers in turn, as an L4 balancer spreads
connections. A balancer process of its own (``tests/chaos/proxy.py`` is a Python one) would
take a share of this machine's two cores and cap both sides at its own speed.

The bare runs are also the check that the generator is not the bottleneck: the generator's
ceiling is at least what it drove the bare endpoint to.

Part 2, end to end: ``--events`` new ``completed`` events, each with one task for a no-op
handler (``bench.tasks:NoopHandler``), posted as fast as they are accepted to one receiver
while 3 ``framehook worker`` processes run; events/s from the first post to the last task
succeeded, and the workers' own drain rate (first attempt started to last finished).

Everything shares this machine's CPUs, PostgreSQL included: on a 2-core machine a second
receiver cannot bring a core of its own, only what the first one (about one core at most: one
Python process) and PostgreSQL leave idle; the output says so, and shows each setup's CPU use
(the receivers', the generator's, the whole machine's). Nothing is pinned.

Exit status: 0 when the run is sound (it is a measurement: no target is enforced); 1 when it
is broken: a server did not start or died, a request failed (non-2xx, socket error), an
acknowledged delivery is missing, tasks were not all drained in time; 2 for unusable
arguments.

Usage::

    .venv/bin/python bench/scale.py [--duration 10] [--warmup 2] [--connections 64]
        [--generator auto|wrk|python] [--events 5000] [--workers 3] [--json PATH]
"""

# Imports follow the sys.path entry below, which they need.
# ruff: noqa: E402

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as ``python bench/scale.py``: make the ``bench`` and ``tests`` packages importable.
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))

import argparse
import asyncio
import math
import multiprocessing
import os
import re
import signal
import statistics
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import psycopg

from bench._harness import (
    REQUEST_TIMEOUT_S,
    ROUTE,
    Column,
    Generator,
    LoadResult,
    Replay,
    ScratchDatabases,
    Server,
    bare_server,
    bench_api_key,
    busy_share,
    choose_generator,
    cpu_times,
    finish,
    framehook_env,
    framehook_serve,
    framehook_worker,
    measure_servers,
    migrate,
    noting_failures,
    postgres_server_url,
    print_table,
    terminate,
    wait_for_log,
    whole_seconds,
)
from bench._workload import Signed, completed, prepare_workload, read_deliveries

HANDLER = "bench.tasks:NoopHandler"  # a no-op handler subscribed to ``completed``
# Generator threads (wrk) or processes (Python): the same in every setup, so each setup meets
# the same generator; with 2 receivers, one each.
GENERATORS = 2
# Above this share of one core per generator thread, the generator may be what limits.
SATURATED_GENERATOR = 0.9
POLL_S = 0.05

# --------------------------------------------------------------------------- measuring


def merge(results: Sequence[LoadResult]) -> LoadResult:
    """Several generators' concurrent results as one: counts add up, the duration is the
    longest, and latency percentiles are the worst of theirs (they cannot be merged exactly)."""
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    for r in results:
        statuses.update(r.statuses)
        errors.update(r.socket_errors)
    return LoadResult(
        generator=results[0].generator,
        duration_s=max(r.duration_s for r in results),
        sent=sum(r.sent for r in results),
        statuses=dict(statuses),
        socket_errors=dict(errors),
        p50_ms=max(r.p50_ms for r in results),
        p99_ms=max(r.p99_ms for r in results),
        max_ms=max(r.max_ms for r in results),
        cpu_s=sum(r.cpu_s for r in results),
        acked_ids=[i for r in results for i in r.acked_ids],
    )


# --------------------------------------------------------------------------- the Python generator

_CONTENT_LENGTH = re.compile(rb"(?i)\r\ncontent-length:\s*(\d+)")


def _request(port: int, d: Signed) -> bytes:
    """One delivery as the bytes of an HTTP/1.1 request, formatted once."""
    head = (
        f"POST {ROUTE} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\nX-Webhook-Signature: {d.signature}\r\n"
        f"X-Webhook-Event: {d.event}\r\nContent-Length: {len(d.body)}\r\n\r\n"
    )
    return head.encode("ascii") + d.body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    """Send one request on a keep-alive connection and read its answer; its status."""
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    match = _CONTENT_LENGTH.search(head)
    if match is not None:
        await reader.readexactly(int(match.group(1)))
    return int(head[9:12])


async def _raw_drive(
    port: int, data: str, start: int, seconds: float, connections: int
) -> LoadResult:
    """Replay the deliveries over ``connections`` keep-alive connections for ``seconds``.

    Plain asyncio streams and requests formatted once, as wrk does: an HTTP client library
    (httpx) costs a millisecond of CPU a request, which on two cores makes the generator the
    bottleneck (measured: httpx drove the bare endpoint to 600 requests/s, this to 15,000).
    """
    requests = [_request(port, d) for d in read_deliveries(Path(data))]
    n = len(requests)
    position, sent = start, 0
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()

    async def connection() -> None:
        nonlocal position, sent
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            # Stop sending at the deadline but wait for what is in flight.
            while time.perf_counter() < deadline:
                # Taken before the first await: every connection sends a delivery of its own.
                request = requests[position % n]
                position += 1
                sent += 1
                t0 = time.perf_counter()
                try:
                    async with asyncio.timeout(REQUEST_TIMEOUT_S):
                        status = await _exchange(reader, writer, request)
                except TimeoutError:
                    errors["timeout"] += 1
                    return  # the connection's state is unknown: drop it
                latencies.append(time.perf_counter() - t0)
                statuses[status] += 1
        except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError):
            errors["socket"] += 1
        finally:
            writer.close()

    began = time.perf_counter()
    cpu_began = time.process_time()
    deadline = began + seconds
    await asyncio.gather(*(connection() for _ in range(connections)))
    elapsed = time.perf_counter() - began
    latencies.sort()
    cpu = time.process_time() - cpu_began
    return LoadResult.from_latencies(
        "python", elapsed, sent, statuses, errors, latencies, cpu, acked_ids=[]
    )


def _raw_child(port: int, data: str, start: int, seconds: float, connections: int) -> LoadResult:
    # Its own process: the generator never competes with the bench for the GIL.
    drive = _raw_drive(port, data, start, seconds, connections)
    try:
        import uvloop  # uvicorn[standard] brings it
    except ImportError:
        return asyncio.run(drive)
    return uvloop.run(drive)


def run_python(replay: Replay) -> LoadResult:
    """``replay.units`` processes of the asyncio generator, process i to
    ``ports[i % len(ports)]`` with its share of the connections."""
    ports = replay.ports
    share = max(1, replay.connections // replay.units)
    futures = [
        generator_pool().submit(
            _raw_child, ports[i % len(ports)], str(replay.data), replay.start + i * replay.stride,
            replay.seconds, share,
        )
        for i in range(replay.units)
    ]  # fmt: skip
    return merge([f.result(timeout=replay.seconds + 120) for f in futures])


_POOL: list[ProcessPoolExecutor] = []


def generator_pool() -> ProcessPoolExecutor:
    """The generator's processes, started once (each takes a second to import this module)."""
    if not _POOL:
        context = multiprocessing.get_context("spawn")
        _POOL.append(ProcessPoolExecutor(GENERATORS, mp_context=context))
    return _POOL[0]


def scale_env(api_key: str, database_url: str, **extra: str) -> dict[str, str]:
    """framehook's defaults, on ``database_url``; never reaching out to Apiframe."""
    # Reconciliation would ask api.apiframe.ai about unfinished jobs: nothing to measure.
    # PYTHONPATH: the workers load HANDLER from this checkout.
    return framehook_env(
        api_key, database_url, FRAMEHOOK_RECONCILE="false", PYTHONPATH=str(ROOT), **extra
    )


# --------------------------------------------------------------------------- part 1


@dataclass(slots=True)
class Setup:
    """One measured setup of part 1."""

    kind: str  # bare or framehook
    processes: int
    measured: LoadResult
    warmup: LoadResult | None
    server_cpu: float  # the servers' CPU, in cores
    machine_busy: float  # share of all CPUs busy while measuring
    store: str = ""  # framehook: the database check's verdict
    problems: list[str] = field(default_factory=list)

    @property
    def label(self) -> str:
        name = "bare HMAC endpoint" if self.kind == "bare" else "framehook, PostgreSQL"
        return f"{name} x{self.processes}"

    @property
    def accepted_per_s(self) -> float:
        m = self.measured
        return m.ok / m.duration_s if m.duration_s > 0 else 0.0

    def row(self) -> dict[str, Any]:
        m = self.measured
        return {
            "setup": self.label,
            "kind": self.kind,
            "processes": self.processes,
            "accepted_per_s": round(self.accepted_per_s, 1),
            "p50_ms": round(m.p50_ms, 3),
            "p99_ms": round(m.p99_ms, 3),
            "responses": m.responses,
            "statuses": {str(k): v for k, v in sorted(m.statuses.items())},
            "socket_errors": m.socket_errors,
            "duration_s": round(m.duration_s, 3),
            "server_cpu_cores": round(self.server_cpu, 3),
            "generator_cpu_cores": round(m.generator_cpu, 3),
            "machine_busy": round(self.machine_busy, 3),
            "store_check": self.store,
            "problems": self.problems,
        }

    def cells(self) -> tuple[object, ...]:
        """Its line of the table (``COLUMNS``)."""
        m = self.measured
        return (
            self.label, self.accepted_per_s, m.p50_ms, m.p99_ms, m.non_2xx, m.errors,
            self.server_cpu, m.generator_cpu, self.machine_busy,
        )  # fmt: skip


COLUMNS = (
    Column("setup", 26, left=True),
    Column("accepted/s", 10, ".1f"),
    Column("p50 ms", 8, ".2f"),
    Column("p99 ms", 8, ".2f"),
    Column("non-2xx", 7),
    Column("errors", 6),
    Column("servers cpu", 11, ".2f"),
    Column("gen cpu", 7, ".2f"),
    Column("machine", 7, ".0%"),
)


def check_store(url: str, results: Sequence[LoadResult]) -> tuple[str, bool]:
    """Every 2xx must be a stored delivery: rows >= acknowledged, and no more than the
    requests sent (those in flight when the generator stopped may be stored unanswered)."""
    acked = sum(r.ok for r in results)
    sent = sum(r.sent for r in results)
    with psycopg.connect(url, autocommit=True) as connection:
        row = connection.execute("SELECT count(*) FROM deliveries").fetchone()
    rows = int(row[0]) if row else 0
    ok = acked <= rows <= sent
    return f"{rows} deliveries for {acked} acknowledged, {sent} sent", ok


def measure(
    kind: str,
    processes: int,
    generator: Generator,
    args: argparse.Namespace,
    data: Path,
    stride: int,
    api_key: str,
    databases: ScratchDatabases | None,
    template: str | None,
    scratch: Path,
) -> Setup:
    """Start ``processes`` servers of ``kind``, warm up, measure, stop, check."""
    workdir = scratch / f"{kind}-{processes}"
    workdir.mkdir()
    url = ""
    names = [f"{'bare' if kind == 'bare' else 'receiver'}-{n}" for n in range(1, processes + 1)]
    if kind == "bare":
        servers = [bare_server(name, workdir, api_key) for name in names]
        probes = [(ROUTE, 405)]  # a GET reaching the POST-only route: the app is serving
    else:
        assert databases is not None
        assert template is not None
        url = databases.url(databases.create(template=template))
        env = scale_env(api_key, url)
        servers = [framehook_serve(name, workdir, env, worker=False) for name in names]
        probes = [("/readyz", 200)]
    warmup = Replay(
        [s.port for s in servers], data, 0, args.warmup, args.connections, workdir, "warmup",
        units=GENERATORS, stride=stride,
    )  # fmt: skip
    m = measure_servers(servers, probes, generator, warmup, args.duration)
    setup = Setup(kind, processes, m.measured, m.warmup, m.server_cpu, m.machine_busy)
    results = [r for r in (m.warmup, m.measured) if r is not None]
    for r in results:
        if r.non_2xx or r.errors:
            setup.problems.append(
                f"{setup.label}: {r.non_2xx} non-2xx answers, {r.errors} socket errors "
                f"(statuses {r.statuses}, errors {r.socket_errors})"
            )
    if kind == "framehook":
        setup.store, ok = check_store(url, results)
        if not ok:
            setup.problems.append(f"{setup.label}: store check failed: {setup.store}")
    return setup


def ratios(setups: Sequence[Setup]) -> dict[str, float]:
    """framehook/bare with as many processes, and 2 receivers against 1."""
    rate = {(s.kind, s.processes): s.accepted_per_s for s in setups}
    out: dict[str, float] = {}
    for n in (1, 2):
        fh, base = rate.get(("framehook", n)), rate.get(("bare", n))
        if fh is not None and base:
            out[f"framehook x{n} / bare x{n}"] = fh / base
    if rate.get(("framehook", 1)) and ("framehook", 2) in rate:
        out["framehook x2 / framehook x1"] = rate[("framehook", 2)] / rate[("framehook", 1)]
    if rate.get(("bare", 1)) and ("framehook", 2) in rate:
        out["framehook x2 / bare x1"] = rate[("framehook", 2)] / rate[("bare", 1)]
    return out


def report_intake(setups: Sequence[Setup]) -> dict[str, Any]:
    """Part 1's table, ratios and notes, printed; its share of the JSON summary."""
    print()
    print("part 1: accepted webhooks/s (2xx answers), each setup measured the same way")
    print_table([s.cells() for s in setups], COLUMNS)
    print("(cpu columns in cores: 1.00 = one core busy; machine = share of all CPUs busy)")
    print()
    found = ratios(setups)
    for name, value in found.items():
        print(f"ratio {name} = {value:.2f}")
    bare_rates = [s.accepted_per_s for s in setups if s.kind == "bare"]
    framehook_rates = [s.accepted_per_s for s in setups if s.kind == "framehook"]
    if bare_rates and framehook_rates:
        headroom = statistics.median(bare_rates) / max(framehook_rates)
        print(
            f"generator: drove the bare endpoint to {max(bare_rates):.0f}/s, {headroom:.1f}x "
            f"framehook's best: {'not' if headroom >= 1.5 else 'perhaps'} the bottleneck"
        )
    for s in setups:
        if s.measured.generator_cpu >= SATURATED_GENERATOR * GENERATORS:
            print(f"note: {s.label}: the generator used {s.measured.generator_cpu:.2f} cores")
        if s.store:
            print(f"store check {s.label}: {s.store}")
    return {"ratios": {k: round(v, 4) for k, v in found.items()}}


# --------------------------------------------------------------------------- part 2


async def _post_all(port: int, deliveries: Sequence[Signed], connections: int) -> dict[str, Any]:
    """Post every delivery once over ``connections`` connections, as fast as answered."""
    todo = [_request(port, d) for d in reversed(deliveries)]
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()

    async def lane() -> None:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while todo:
                request = todo.pop()
                try:
                    async with asyncio.timeout(REQUEST_TIMEOUT_S * 4):
                        statuses[await _exchange(reader, writer, request)] += 1
                except (TimeoutError, OSError, asyncio.IncompleteReadError) as exc:
                    errors[type(exc).__name__] += 1
                    return
        finally:
            writer.close()

    began = time.time()
    await asyncio.gather(*(lane() for _ in range(connections)))
    return {"began": began, "ended": time.time(), "statuses": dict(statuses), "errors": errors}


def _post_child(port: int, deliveries: list[Signed], connections: int) -> Any:
    # Its own process: the poster never competes with the bench for the GIL.
    return asyncio.run(_post_all(port, deliveries, connections))


@dataclass(slots=True)
class EndToEnd:
    """Part 2's figures."""

    events: int
    workers: int
    post_s: float
    total_s: float
    drain_s: float  # first attempt started to last attempt finished (the workers alone)
    succeeded: int
    statuses: dict[int, int]
    machine_busy: float

    @property
    def per_s(self) -> float:
        return self.succeeded / self.total_s if self.total_s > 0 else 0.0

    def row(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "workers": self.workers,
            "events_per_s_end_to_end": round(self.per_s, 1),
            "posting_s": round(self.post_s, 3),
            "end_to_end_s": round(self.total_s, 3),
            "workers_drain_s": round(self.drain_s, 3),
            "workers_drain_per_s": round(self.events / self.drain_s, 1) if self.drain_s else 0,
            "succeeded": self.succeeded,
            "statuses": {str(k): v for k, v in self.statuses.items()},
            "machine_busy": round(self.machine_busy, 3),
        }


def _succeeded(connection: psycopg.Connection[Any]) -> int:
    row = connection.execute("SELECT count(*) FROM tasks WHERE status = 'succeeded'").fetchone()
    return int(row[0]) if row else 0


def end_to_end(
    args: argparse.Namespace,
    api_key: str,
    databases: ScratchDatabases,
    template: str,
    scratch: Path,
) -> EndToEnd:
    """Post ``args.events`` new completed events to one receiver while ``args.workers`` workers
    run the no-op handler; time until every task succeeded."""
    workdir = scratch / "end-to-end"
    workdir.mkdir()
    url = databases.url(databases.create(template=template))
    env = scale_env(api_key, url, FRAMEHOOK_HANDLERS=HANDLER)
    front = framehook_serve("receiver", workdir, env, worker=False)
    workers = [framehook_worker(f"worker-{n}", workdir, env) for n in range(1, args.workers + 1)]
    deliveries = [completed(str(uuid.uuid4()), api_key, "image") for _ in range(args.events)]
    servers: list[Server] = [front, *workers]
    try:
        for server in servers:
            server.start()
        front.wait_ready([("/readyz", 200)])
        for worker in workers:
            wait_for_log(worker, '"worker started"')
        machine_before = cpu_times()
        deadline = time.monotonic() + 60 + args.events / 20
        context = multiprocessing.get_context("spawn")
        with (
            ProcessPoolExecutor(1, mp_context=context) as pool,
            psycopg.connect(url, autocommit=True) as connection,
        ):
            future = pool.submit(_post_child, front.port, deliveries, 32)
            done = 0
            while done < args.events and time.monotonic() < deadline:
                time.sleep(POLL_S)
                done = _succeeded(connection)
                for server in servers:
                    server.check_alive()
            finished = time.time()
            posted = future.result(timeout=120)
            row = connection.execute(
                "SELECT extract(epoch FROM max(finished_at) - min(started_at)) FROM task_attempts"
            ).fetchone()
        machine = busy_share(machine_before, cpu_times())
    finally:
        for server in reversed(servers):
            server.stop()
    return EndToEnd(
        events=args.events,
        workers=args.workers,
        post_s=posted["ended"] - posted["began"],
        total_s=finished - posted["began"],
        drain_s=float(row[0]) if row and row[0] is not None else 0.0,
        succeeded=done,
        statuses={int(k): v for k, v in posted["statuses"].items()},
        machine_busy=machine,
    )


def report_end_to_end(e2e: EndToEnd) -> dict[str, Any]:
    """Part 2's lines, printed; its JSON row."""
    print()
    print(
        f"part 2: end to end, {e2e.events} completed events posted to 1 receiver, one "
        f"no-op task each, {e2e.workers} workers"
    )
    r = e2e.row()
    print(
        f"events/s end to end = {e2e.per_s:.1f} ({e2e.succeeded} succeeded "
        f"{e2e.total_s:.2f} s after the first post; posting took {e2e.post_s:.2f} s; "
        f"machine {e2e.machine_busy:.0%} busy)"
    )
    print(
        f"workers' drain = {r['workers_drain_per_s']} tasks/s (first attempt started to "
        f"last finished: {e2e.drain_s:.2f} s)"
    )
    return r


# --------------------------------------------------------------------------- main


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds a setup")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds a setup")
    parser.add_argument("--connections", type=int, default=64, help="concurrent connections")
    parser.add_argument("--generator", choices=("auto", "wrk", "python"), default="auto")
    parser.add_argument("--events", type=int, default=5000, help="end-to-end events (part 2)")
    parser.add_argument("--workers", type=int, default=3, help="worker processes (part 2)")
    parser.add_argument(
        "--max-rate",
        type=float,
        default=15_000,
        help="requests/s the workload is sized for (more than any setup reaches here)",
    )
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write results")
    parser.add_argument("--seed", type=int, default=1, help="workload seed")
    parser.add_argument(
        "--jobs-in-flight",
        type=int,
        default=50,
        help="jobs whose events interleave (each event updates its job's row: fewer, hotter rows)",
    )
    args = parser.parse_args(argv)
    if (
        args.duration <= 0
        or args.warmup < 0
        or args.connections < GENERATORS
        or args.events < 1
        or args.workers < 1
        or args.jobs_in_flight < 1
    ):
        parser.error(
            f"--duration > 0, --warmup >= 0, --connections >= {GENERATORS}, --events >= 1, "
            "--workers >= 1 and --jobs-in-flight >= 1"
        )
    return args


def machine_note() -> str:
    cores = len(os.sched_getaffinity(0))
    note = f"{cores} CPU{'s' if cores != 1 else ''} (os.cpu_count() = {os.cpu_count()})"
    if cores <= 2:
        note += (
            ": receivers, PostgreSQL and the load generator all share them; one receiver (one "
            "Python process) uses about one core at most, so a second can add only what the "
            "first leaves idle, not a core of its own"
        )
    return note


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, terminate)
    chosen = choose_generator(args.generator, "python", run_python, "using the Python generator")
    if chosen is None:
        return 2
    generator_name, generator = chosen
    if generator_name == "wrk":
        whole_seconds(args)
    print(f"machine: {machine_note()}; nothing pinned")
    api_key = bench_api_key()
    # Each generator thread/process replays its own stretch of the workload.
    per_generator = math.ceil(args.max_rate * (args.warmup + args.duration) / GENERATORS)
    count = max(10_000, per_generator * GENERATORS)
    scratch = Path(tempfile.mkdtemp(prefix="framehook-bench-scale-"))
    data = scratch / "deliveries.tsv"
    prepare_workload(count, api_key, data, seed=args.seed, in_flight=args.jobs_in_flight)
    units = "threads" if generator_name == "wrk" else "processes"
    print(
        f"generator: {generator_name}, {GENERATORS} {units} (with 2 servers, one each), "
        f"{args.connections} connections; warm-up {args.warmup:g} s + {args.duration:g} s "
        "per setup"
    )
    databases = ScratchDatabases(postgres_server_url())
    broken: list[str] = []
    setups: list[Setup] = []
    e2e: EndToEnd | None = None
    try:
        with noting_failures(broken, psycopg.Error):
            databases.check()
            # Migrated once; every setup gets a copy (CREATE DATABASE ... TEMPLATE: instant).
            template = databases.create()
            migrate(scale_env(api_key, databases.url(template)), scratch)
            for processes in (1, 2):
                for kind in ("bare", "framehook"):
                    setup = measure(
                        kind, processes, generator, args, data, per_generator, api_key,
                        databases, template, scratch,
                    )  # fmt: skip
                    setups.append(setup)
                    broken.extend(setup.problems)
            e2e = end_to_end(args, api_key, databases, template, scratch)
            if e2e.succeeded < e2e.events:
                broken.append(f"end to end: {e2e.succeeded}/{e2e.events} tasks succeeded in time")
            if set(e2e.statuses) - {200, 202}:
                broken.append(f"end to end: posting got {e2e.statuses}")
    finally:
        for pool in _POOL:
            pool.shutdown(cancel_futures=True)
        broken.extend(databases.drop_all())
    summary: dict[str, Any] = {}
    if setups:
        summary |= report_intake(setups)
    if e2e is not None:
        summary["end_to_end"] = report_end_to_end(e2e)
    report = {
        "config": {
            "generator": generator_name,
            "generator_units": GENERATORS,
            "connections": args.connections,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "events": args.events,
            "workers": args.workers,
            "machine": machine_note(),
        },
        "intake": [s.row() for s in setups],
        "summary": summary,
        "broken": broken,
    }
    return finish(broken, report, args.json, scratch)


if __name__ == "__main__":
    sys.exit(main())
