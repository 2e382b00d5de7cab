"""Task queue: claim/complete throughput on PostgreSQL, and dispatch latency.

Part 1, throughput. A scratch PostgreSQL database is filled with ``--tasks`` queued tasks for a
no-op handler, recorded through framehook's own intake, and copied for each round. framehook's
``Worker`` drains one copy; a bare psycopg 3 ``FOR UPDATE SKIP LOCKED`` loop with the same
concurrency drains another; pgqueuer (the ``bench`` extra), on its psycopg driver, drains as
many no-op jobs from a database of its own with its schema installed through its API. Each side
runs in a child process pinned to the same CPU. Prints tasks/s per side and the ratios
framehook/bare and framehook/pgqueuer, min/median/max over ``--rounds``. Targets:
framehook/bare >= 0.5, framehook/pgqueuer >= 1. Without pgqueuer installed its column is skipped.

Part 2, dispatch latency: the time from the receiver's 202 to the handler's start, for signed
``completed`` events posted one at a time. Setups: ``framehook serve`` with its embedded
worker on SQLite and on PostgreSQL (target p50 <= 20 ms), and ``framehook serve --no-worker``
plus one ``framehook worker`` on PostgreSQL (target p50 <= 100 ms). Polling is set to 5 s, so
a fast start can only come from a wake-up.

Exit status: 0 when the run is sound, whether or not the targets are met (it is a measurement);
1 when it is broken: a server or child did not start or failed, tasks were not all drained in
time, a handler start is missing; 2 for unusable arguments.

Usage::

    .venv/bin/python bench/tasks.py [--tasks 20000] [--concurrency 8] [--rounds 3]
        [--events 200] [--json PATH] [--skip-latency] [--skip-throughput]
"""


# Imports follow the sys.path entry below, which they need.
# ruff: noqa: E402

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as ``python bench/tasks.py``: make the ``bench`` and ``tests`` packages importable.
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))

import argparse
import asyncio
import importlib.util
import json
import os
import signal
import statistics
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import psycopg

from bench._harness import (
    ROUTE,
    Column,
    CpuPlan,
    ScratchDatabases,
    Server,
    bench_api_key,
    clean_environment,
    finish,
    framehook_env,
    framehook_serve,
    framehook_worker,
    migrate,
    noting_failures,
    percentile,
    plan_cpus,
    postgres_server_url,
    print_table,
    taskset,
    terminate,
    wait_for_log,
)
from bench._workload import completed, encode, payload
from bench.latency_handler import STARTS_ENV
from handlers import HandlerContext, JobEvent

TARGET_RATIO = 0.5
TARGET_PGQUEUER_RATIO = 1.0
TARGET_ONE_PROCESS_P50_MS = 20.0
TARGET_ACROSS_PROCESSES_P50_MS = 100.0
HANDLER = "noop"
# The body of every event: one image, as small as a real completed event gets.
MODALITY = "image"
FILL_BATCH = 250
# The counter's period in the framehook child, and so the resolution of its end time.
COUNT_PERIOD_S = 0.05
# Unmeasured events first, through the whole path: they open the pools and connections, and
# prove the wake-ups work, before anything is timed.
WARMUP_EVENTS = 5
SEND_PAUSE_S = 0.02
# A handler start this long after the last 202 is missing (the poll alone would find it in 5 s).
STARTS_TIMEOUT_S = 30.0

CLAIM_SQL = (
    "UPDATE tasks SET status = 'running' WHERE id = (SELECT id FROM tasks WHERE status = 'queued'"
    " ORDER BY priority, run_at, id FOR UPDATE SKIP LOCKED LIMIT 1) RETURNING id"
)
COMPLETE_SQL = "UPDATE tasks SET status = 'succeeded' WHERE id = %s"
COUNT_SQL = "SELECT count(*) FROM tasks WHERE status = 'succeeded'"


# --------------------------------------------------------------------------- the task table


def fill(url: str, count: int) -> None:
    """framehook's schema plus ``count`` queued ``noop`` tasks, recorded by the real intake
    (deliveries, jobs and tasks, as webhooks would leave them)."""
    from receiver.apiframe.events import parse_body
    from receiver.db.engine import create_db_engine, writing
    from receiver.db.schema import upgrade
    from receiver.intake.recorder import Arrival, Recorder, Subscription

    engine = create_db_engine(url)
    try:
        upgrade(engine)
        recorder = Recorder("postgresql", [Subscription(HANDLER, frozenset({"completed"}))])
        for start in range(0, count, FILL_BATCH):
            arrivals = []
            for _ in range(min(FILL_BATCH, count - start)):
                body = encode(payload("completed", str(uuid.uuid4()), MODALITY))
                arrivals.append(
                    Arrival(
                        parsed=parse_body(body),
                        body=body,
                        received_at=datetime.now(UTC),
                        request_id="bench",
                    )
                )
            with writing(engine) as connection:
                recorder.record_many(connection, arrivals)
    finally:
        engine.dispose()
    with psycopg.connect(url, autocommit=True) as connection:
        # Both copies start with fresh statistics and no dead rows.
        connection.execute("VACUUM ANALYZE")


def pgqueuer_missing() -> str | None:
    """Why the pgqueuer side cannot run here (``None``: it can)."""
    if importlib.util.find_spec("pgqueuer") is None:
        return "pgqueuer is not installed (pip install '.[bench]')"
    return None


async def _fill_pgqueuer(url: str, count: int) -> None:
    from pgqueuer import Queries

    body = encode(payload("completed", str(uuid.uuid4()), MODALITY))
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as connection:
        queries = Queries.from_psycopg_connection(connection)
        await queries.install()
        for start in range(0, count, FILL_BATCH):
            n = min(FILL_BATCH, count - start)
            # A payload the size of framehook's event body: both sides move the same bytes.
            await queries.enqueue([HANDLER] * n, [body] * n, [0] * n)
        await connection.execute("VACUUM ANALYZE")


def fill_pgqueuer(url: str, count: int) -> None:
    """pgqueuer's schema (installed through its API, as ``pgq install`` does) and ``count``
    queued jobs for the no-op entrypoint."""
    asyncio.run(_fill_pgqueuer(url, count))


def pgqueuer_statuses(url: str) -> dict[str, int]:
    """The jobs pgqueuer logged as successful, and those left in its queue, by status."""
    with psycopg.connect(url, autocommit=True) as connection:
        left = connection.execute("SELECT status, count(*) FROM pgqueuer GROUP BY status")
        statuses = {f"left {s}": int(n) for s, n in left.fetchall()}
        logged = connection.execute(
            "SELECT count(*) FROM pgqueuer_log WHERE status = 'successful'"
        ).fetchone()
    return statuses | {"succeeded": int(logged[0]) if logged else 0}


def task_statuses(url: str) -> dict[str, int]:
    """``status -> count`` of the tasks table."""
    with psycopg.connect(url, autocommit=True) as connection:
        rows = connection.execute("SELECT status, count(*) FROM tasks GROUP BY status").fetchall()
    return {str(status): int(n) for status, n in rows}


def commits(server: ScratchDatabases, name: str) -> int:
    """Transactions committed in database ``name`` so far (pg_stat_database)."""
    with server.admin() as connection:
        row = connection.execute(
            "SELECT xact_commit FROM pg_stat_database WHERE datname = %s", (name,)
        ).fetchone()
    return int(row[0]) if row else 0


# --------------------------------------------------------------------------- the drain children


class NoopHandler:
    """The handler whose tasks part 1 drains: it does nothing, so only the queue is measured."""

    name = HANDLER
    events = frozenset({"completed"})

    async def __call__(self, event: JobEvent, ctx: HandlerContext) -> None:
        return None


async def _framehook_drain(config: dict[str, Any]) -> dict[str, Any]:
    from receiver.db.engine import create_db_engine, ping
    from receiver.logs import configure_logging
    from receiver.queue.tasks import TaskQueue
    from receiver.queue.worker import Worker
    from receiver.retry import RetryPolicy
    from receiver.services import http_client
    from receiver.settings import Settings
    from storage import MemoryStorage

    url: str = config["url"]
    expected: int = config["tasks"]
    # Logging as `framehook worker` does (a JSON line per task, to stderr, a file here): that
    # cost is part of running the real worker.
    configure_logging("json", "info")
    # What `framehook worker` gives its engine: a connection per running task, plus four.
    engine = create_db_engine(url, pool_size=config["concurrency"] + 4)
    counter = psycopg.connect(url, autocommit=True)
    # What handlers are handed; the no-op handler touches neither.
    http = http_client(Settings())
    try:
        ping(engine)  # connected before the clock starts, as the bare side is
        queue = TaskQueue(engine, "bench", lease_seconds=30)
        worker = Worker(
            queue,
            [NoopHandler()],
            RetryPolicy(),
            MemoryStorage(),
            http,
            concurrency=config["concurrency"],
            poll_seconds=0.05,
        )

        def succeeded() -> int:
            row = counter.execute(COUNT_SQL).fetchone()
            return int(row[0]) if row else 0

        stop = asyncio.Event()
        cpu_began = time.process_time()
        began = time.perf_counter()
        deadline = began + config["timeout"]
        run = asyncio.create_task(worker.run(stop))
        done = 0
        try:
            while done < expected and not run.done() and time.perf_counter() < deadline:
                await asyncio.sleep(COUNT_PERIOD_S)
                done = await asyncio.to_thread(succeeded)
            elapsed = time.perf_counter() - began
            cpu = time.process_time() - cpu_began
        finally:
            stop.set()
            await run  # re-raises whatever stopped the worker early
    finally:
        await http.aclose()
        counter.close()
        engine.dispose()
    return {"done": done, "seconds": elapsed, "cpu_s": cpu}


def _bare_drain(config: dict[str, Any]) -> dict[str, Any]:
    url: str = config["url"]
    concurrency: int = config["concurrency"]
    connections = [psycopg.connect(url, connect_timeout=5) for _ in range(concurrency)]
    for connection in connections:
        # framehook's engine forces this on its sessions; the baseline pays the same fsync.
        connection.execute("SET synchronous_commit = on")
        connection.commit()
    done = [0] * concurrency
    errors: list[str] = []
    # Every thread connected and waiting: the clock starts when they all go.
    start = threading.Barrier(concurrency + 1)

    def loop(i: int) -> None:
        connection = connections[i]
        start.wait()
        try:
            with connection.cursor() as cursor:
                while True:
                    cursor.execute(CLAIM_SQL)
                    row = cursor.fetchone()
                    if row is None:
                        # Nothing queued is left unlocked, and nothing new arrives: done.
                        connection.commit()
                        return
                    cursor.execute(COMPLETE_SQL, (row[0],))
                    connection.commit()
                    done[i] += 1
        except Exception as exc:
            errors.append(f"{type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=loop, args=(i,), daemon=True) for i in range(concurrency)]
    for thread in threads:
        thread.start()
    start.wait()
    cpu_began = time.process_time()
    began = time.perf_counter()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - began
    cpu = time.process_time() - cpu_began
    for connection in connections:
        connection.close()
    if errors:
        raise RuntimeError("; ".join(errors))
    return {"done": sum(done), "seconds": elapsed, "cpu_s": cpu}


async def _pgqueuer_drain(config: dict[str, Any]) -> dict[str, Any]:
    from pgqueuer import Job, Queries, QueueManager

    url: str = config["url"]
    expected: int = config["tasks"]

    async def noop(job: Job) -> None:
        return None

    # As pgqueuer's own drain benchmark runs it: one queue manager per connection, each
    # dequeuing batches of its default size; as many connections as the bare loop has.
    connections = [
        await psycopg.AsyncConnection.connect(url, autocommit=True)
        for _ in range(config["concurrency"])
    ]
    counter = await psycopg.AsyncConnection.connect(url, autocommit=True)

    async def left() -> int:
        # pgqueuer deletes a job from its queue when it records the outcome.
        row = await (await counter.execute("SELECT count(*) FROM pgqueuer")).fetchone()
        return int(row[0]) if row else 0

    try:
        managers = [QueueManager(Queries.from_psycopg_connection(c)) for c in connections]
        for manager in managers:
            manager.entrypoint(HANDLER)(noop)
        cpu_began = time.process_time()
        began = time.perf_counter()
        deadline = began + config["timeout"]
        # Ended as framehook's side is: when the database shows every job done (pgqueuer's
        # drain mode would add its own exit checks, seconds of them, to the time).
        run = asyncio.gather(*(m.run() for m in managers))
        remaining = expected
        while remaining and not run.done() and time.perf_counter() < deadline:
            await asyncio.sleep(COUNT_PERIOD_S)
            remaining = await left()
        elapsed = time.perf_counter() - began
        cpu = time.process_time() - cpu_began
        for manager in managers:
            manager.shutdown.set()
        await run  # re-raises whatever stopped a manager early
    finally:
        for connection in (*connections, counter):
            await connection.close()
    return {"done": expected - remaining, "seconds": elapsed, "cpu_s": cpu}


DRAINS = {"framehook": "_framehook-drain", "bare": "_bare-drain", "pgqueuer": "_pgqueuer-drain"}
CHILDREN = set(DRAINS.values())


def child_main(kind: str, raw: str) -> int:
    """A drain child: runs one side and prints its result as the last line of stdout."""
    config = json.loads(raw)
    if kind == "_framehook-drain":
        result = asyncio.run(_framehook_drain(config))
    elif kind == "_pgqueuer-drain":
        result = asyncio.run(_pgqueuer_drain(config))
    else:
        result = _bare_drain(config)
    print(json.dumps(result), flush=True)
    return 0


# --------------------------------------------------------------------------- part 1


@dataclass(slots=True)
class Drain:
    """One side's drain of the task table in one round."""

    side: str
    round: int
    tasks: int
    done: int
    seconds: float
    cpu_s: float
    commits: int
    statuses: dict[str, int]

    @property
    def rate(self) -> float:
        return self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def cpu(self) -> float:
        return self.cpu_s / self.seconds if self.seconds > 0 else 0.0

    @property
    def sound(self) -> bool:
        return self.done >= self.tasks and self.statuses == {"succeeded": self.tasks}

    def row(self) -> dict[str, Any]:
        return asdict(self) | {"tasks_per_s": round(self.rate, 1), "client_cpu": self.cpu}

    def cells(self) -> tuple[object, ...]:
        """Its line of the table (``DRAIN_COLUMNS``)."""
        per_task = self.commits / self.done if self.done else 0.0
        return (self.side, self.round, self.done, self.seconds, self.rate, self.cpu, per_task)


DRAIN_COLUMNS = (
    Column("side", 10, left=True),
    Column("round", 5),
    Column("tasks", 7),
    Column("seconds", 8, ".2f"),
    Column("tasks/s", 9, ".1f"),
    Column("client cpu", 10, ".0%"),
    Column("xact/task", 9, ".2f"),
)


def drain_timeout(tasks: int) -> float:
    """Generous: a side slower than 50 tasks/s is broken, not slow."""
    return 60.0 + tasks / 50


def run_drain(
    side: str,
    round_: int,
    server: ScratchDatabases,
    name: str,
    args: argparse.Namespace,
    cpus: CpuPlan,
    scratch: Path,
) -> Drain:
    """Drain database ``name`` with one side, in a pinned child process."""
    url = server.url(name)
    timeout = drain_timeout(args.tasks)
    config = {"url": url, "tasks": args.tasks, "concurrency": args.concurrency, "timeout": timeout}
    argv = [*taskset(cpus.server), sys.executable, str(Path(__file__).resolve())]
    argv += [DRAINS[side], json.dumps(config)]
    log = scratch / f"drain-{side}-{round_}.log"
    before = commits(server, name)
    with log.open("wb") as err:
        done = subprocess.run(
            argv,
            stdout=subprocess.PIPE,
            stderr=err,
            env=clean_environment(),
            cwd=scratch,
            timeout=timeout + 60,
            check=False,
        )
    lines = done.stdout.decode(errors="replace").strip().splitlines()
    if done.returncode != 0 or not lines:
        tail = "\n".join(log.read_text(errors="replace").splitlines()[-15:])
        raise RuntimeError(f"{side} drain exited with status {done.returncode}; {log}:\n{tail}")
    result = json.loads(lines[-1])
    return Drain(
        side=side,
        round=round_,
        tasks=args.tasks,
        done=int(result["done"]),
        seconds=float(result["seconds"]),
        cpu_s=float(result["cpu_s"]),
        commits=commits(server, name) - before,
        statuses=pgqueuer_statuses(url) if side == "pgqueuer" else task_statuses(url),
    )


def throughput(
    args: argparse.Namespace,
    server: ScratchDatabases,
    cpus: CpuPlan,
    scratch: Path,
    broken: list[str],
) -> list[Drain]:
    """Part 1: fill once per queue, then each round drains a fresh copy with each side."""
    began = time.perf_counter()
    filled = server.create()
    fill(server.url(filled), args.tasks)
    statuses = task_statuses(server.url(filled))
    if statuses != {"queued": args.tasks}:
        broken.append(f"fill made {statuses}, not {args.tasks} queued tasks")
        return []
    templates = {"bare": filled, "framehook": filled}
    skipped = pgqueuer_missing()
    if skipped is None:
        templates["pgqueuer"] = server.create()
        fill_pgqueuer(server.url(templates["pgqueuer"]), args.tasks)
    print(
        f"throughput: {args.tasks} queued '{HANDLER}' tasks recorded through the intake"
        f"{'' if skipped else ' (and as many pgqueuer jobs)'} in "
        f"{time.perf_counter() - began:.1f} s; concurrency {args.concurrency}, "
        f"{args.rounds} round(s)"
    )
    if skipped:
        print(f"pgqueuer column skipped: {skipped}")
    drains = []
    for round_ in range(1, args.rounds + 1):
        # The bare loop first, as bench/ack.py measures the baseline first; each side gets an
        # identical copy: same rows, same physical layout, no dead tuples.
        for side, template in templates.items():
            copy = server.create(template=template)
            drain = run_drain(side, round_, server, copy, args, cpus, scratch)
            drains.append(drain)
            if not drain.sound:
                broken.append(
                    f"{side} drain (round {round_}): {drain.done}/{drain.tasks} succeeded "
                    f"within {drain_timeout(args.tasks):.0f} s; tasks by status {drain.statuses}"
                )
    return drains


def spread(values: Sequence[float]) -> str:
    """``min/median/max`` of ``values``, to two decimals."""
    return "/".join(f"{v:.2f}" for v in (min(values), statistics.median(values), max(values)))


def report_throughput(drains: Sequence[Drain]) -> dict[str, Any]:
    """Part 1's table, rates and ratios, printed; its share of the JSON summary."""
    print()
    print_table([d.cells() for d in drains], DRAIN_COLUMNS)
    print()
    rates: dict[str, list[float]] = {}
    for d in drains:
        rates.setdefault(d.side, []).append(d.rate)
    for side, values in rates.items():
        print(f"{side} tasks/s min/median/max = {spread(values)}")
    summary: dict[str, Any] = {}
    ours = rates.get("framehook", [])
    for other, target in (("bare", TARGET_RATIO), ("pgqueuer", TARGET_PGQUEUER_RATIO)):
        theirs = rates.get(other, [])
        if not ours or len(theirs) != len(ours) or not all(theirs):
            continue
        # Ratios within each round: the sides of one round ran under the same load.
        ratios = [f / t for f, t in zip(ours, theirs, strict=True)]
        median = statistics.median(ratios)
        met = median >= target
        print(
            f"ratio framehook/{other} = {median:.2f} "
            f"(min/median/max {spread(ratios)} over {len(ratios)} round(s)); "
            f"target >= {target:g}: {'met' if met else 'NOT met'}"
        )
        summary[f"ratio_{other}"] = {
            "min": round(min(ratios), 4),
            "median": round(median, 4),
            "max": round(max(ratios), 4),
            "met": met,
        }
    if "ratio_bare" in summary:
        # The keys earlier runs reported, kept for whoever reads the JSON.
        summary |= {
            "ratio": summary["ratio_bare"]["median"],
            "ratio_met": summary["ratio_bare"]["met"],
        }
    cpu = [d.cpu for d in drains if d.side == "framehook"]
    if cpu and statistics.median(cpu) >= 0.9:
        print(
            f"note: the framehook worker used {statistics.median(cpu):.0%} of its CPU: it is "
            "bound by its own Python work, not by PostgreSQL"
        )
    return summary


# --------------------------------------------------------------------------- part 2


@dataclass(frozen=True, slots=True)
class Setup:
    """One way of running framehook for the latency measurement."""

    name: str
    database: str  # sqlite or postgres
    split: bool  # serve --no-worker plus a `framehook worker` process

    @property
    def target_ms(self) -> float:
        return TARGET_ACROSS_PROCESSES_P50_MS if self.split else TARGET_ONE_PROCESS_P50_MS


SETUPS = (
    Setup("sqlite, one process", "sqlite", split=False),
    Setup("postgres, one process", "postgres", split=False),
    Setup("postgres, serve+worker", "postgres", split=True),
)


@dataclass(slots=True)
class Latency:
    """Dispatch latencies of one setup, in ms, sorted (negative: the handler started before
    the 202 reached the sender)."""

    setup: str
    target_ms: float
    sent: int
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def missing(self) -> int:
        return self.sent - len(self.latencies_ms)

    def pct(self, p: float) -> float:
        return percentile(self.latencies_ms, p)

    @property
    def met(self) -> bool:
        return bool(self.latencies_ms) and self.pct(50) <= self.target_ms

    def row(self) -> dict[str, Any]:
        ms = self.latencies_ms
        return {
            "setup": self.setup,
            "events": self.sent,
            "started": len(ms),
            "p50_ms": round(self.pct(50), 3),
            "p90_ms": round(self.pct(90), 3),
            "p99_ms": round(self.pct(99), 3),
            "min_ms": round(ms[0], 3) if ms else None,
            "max_ms": round(ms[-1], 3) if ms else None,
            "target_p50_ms": self.target_ms,
            "met": self.met,
        }

    def cells(self) -> tuple[object, ...]:
        """Its line of the table (``LATENCY_COLUMNS``)."""
        ms = self.latencies_ms
        low, high = (ms[0], ms[-1]) if ms else (0.0, 0.0)
        return (
            self.setup, self.sent, self.pct(50), self.pct(90), self.pct(99), low, high,
            self.missing,
        )  # fmt: skip


LATENCY_COLUMNS = (
    Column("setup", 24, left=True),
    Column("events", 6),
    Column("p50 ms", 8, ".2f"),
    Column("p90 ms", 8, ".2f"),
    Column("p99 ms", 8, ".2f"),
    Column("min ms", 8, ".2f"),
    Column("max ms", 8, ".2f"),
    Column("missing", 7),
)


def read_starts(path: Path) -> dict[str, float]:
    """``job id -> first handler start`` from the handler's file."""
    starts: dict[str, float] = {}
    for line in path.read_text(encoding="ascii", errors="replace").splitlines():
        parts = line.split()
        if len(parts) != 2:
            continue  # a line being written as we read: the next read sees it whole
        try:
            starts.setdefault(parts[0], float(parts[1]))
        except ValueError:
            continue
    return starts


def wait_for_starts(
    path: Path, jobs: Sequence[str], servers: Sequence[Server], timeout: float
) -> dict[str, float]:
    """The handler starts of ``jobs``, waiting up to ``timeout`` for the last of them."""
    deadline = time.monotonic() + timeout
    while True:
        starts = read_starts(path)
        if all(j in starts for j in jobs) or time.monotonic() > deadline:
            return starts
        for server in servers:
            server.check_alive()
        time.sleep(0.05)


def send(client: httpx.Client, api_key: str, count: int) -> dict[str, float]:
    """Post ``count`` new ``completed`` events one at a time; ``job id -> time of its 202``."""
    acked: dict[str, float] = {}
    for _ in range(count):
        job = str(uuid.uuid4())
        delivery = completed(job, api_key, MODALITY)
        answer = client.post(ROUTE, content=delivery.body, headers=delivery.headers())
        at = time.time()
        if answer.status_code != 202:
            raise RuntimeError(f"POST {ROUTE} answered {answer.status_code}: {answer.text[:200]}")
        acked[job] = at
        # One event at a time with a gap: each finds an idle worker, so this is latency, not
        # queueing behind the previous one.
        time.sleep(SEND_PAUSE_S)
    return acked


def measure_latency(
    setup: Setup,
    args: argparse.Namespace,
    server: ScratchDatabases | None,
    cpus: CpuPlan,
    scratch: Path,
    api_key: str,
) -> Latency:
    """Start one setup, send the warm-up and measured events, stop it."""
    workdir = scratch / setup.name.replace(", ", "-").replace("+", "-").replace(" ", "-")
    workdir.mkdir()
    starts_file = workdir / "starts.txt"
    starts_file.touch()
    extra = {STARTS_ENV: str(starts_file), "PYTHONPATH": str(ROOT)}
    if setup.database == "sqlite":
        url = f"sqlite:///{workdir / 'fh.db'}"
    else:
        assert server is not None
        url = server.url(server.create())
        extra["FRAMEHOOK_AUTO_MIGRATE"] = "true"
    env = framehook_env(
        api_key,
        url,
        FRAMEHOOK_HANDLERS="bench.latency_handler:LatencyHandler",
        # Polling would find a task within 5 s: far outside the targets, so a fast start can
        # only come from a wake-up.
        FRAMEHOOK_POLL_SECONDS="5",
        **extra,
    )
    # The worker shares the receiver's CPU: the across-processes setup gets the same CPU budget
    # as the one-process ones, and what differs is only the hop through LISTEN/NOTIFY.
    processes = [framehook_serve("serve", workdir, env, worker=not setup.split, cpu=cpus.server)]
    if setup.split:
        migrate(env, workdir)
        processes.append(framehook_worker("worker", workdir, env, cpu=cpus.server))
    try:
        for process in processes:
            process.start()
        processes[0].wait_ready([("/readyz", 200)])
        if setup.split:
            wait_for_log(processes[1], '"worker started"')
        with httpx.Client(base_url=processes[0].base_url, timeout=10.0, trust_env=False) as client:
            warm = send(client, api_key, WARMUP_EVENTS)
            seen = wait_for_starts(starts_file, list(warm), processes, STARTS_TIMEOUT_S)
            if not all(j in seen for j in warm):
                raise RuntimeError(f"{setup.name}: warm-up events never reached the handler")
            acked = send(client, api_key, args.events)
        starts = wait_for_starts(starts_file, list(acked), processes, STARTS_TIMEOUT_S)
        for process in processes:
            process.check_alive()
    finally:
        for process in reversed(processes):
            process.stop()
    latencies = sorted((starts[j] - t) * 1000 for j, t in acked.items() if j in starts)
    return Latency(setup.name, setup.target_ms, len(acked), latencies)


def report_latency(latencies: Sequence[Latency]) -> dict[str, Any]:
    """Part 2's table and targets, printed; its share of the JSON summary."""
    print()
    print_table([r.cells() for r in latencies], LATENCY_COLUMNS)
    print()
    for r in latencies:
        print(
            f"target {r.setup} p50 <= {r.target_ms:g} ms: {r.pct(50):.2f} ms, "
            f"{'met' if r.met else 'NOT met'}"
        )
    return {"latency": {r.setup: {"p50_ms": r.pct(50), "met": r.met} for r in latencies}}


# --------------------------------------------------------------------------- main


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--tasks", type=int, default=20_000, help="tasks to drain (part 1)")
    parser.add_argument("--concurrency", type=int, default=8, help="claims in flight (part 1)")
    parser.add_argument("--rounds", type=int, default=3, help="drains per side (part 1)")
    parser.add_argument("--events", type=int, default=200, help="events per setup (part 2)")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write results")
    parser.add_argument("--skip-latency", action="store_true", help="skip part 2")
    parser.add_argument("--skip-throughput", action="store_true", help="skip part 1")
    args = parser.parse_args(argv)
    if min(args.tasks, args.concurrency, args.events, args.rounds) < 1:
        parser.error("--tasks, --concurrency, --events and --rounds must be >= 1")
    if args.skip_latency and args.skip_throughput:
        parser.error("--skip-latency and --skip-throughput together leave nothing to run")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    raw = list(sys.argv[1:] if argv is None else argv)
    if len(raw) == 2 and raw[0] in CHILDREN:
        return child_main(raw[0], raw[1])
    args = _parse_args(raw)
    signal.signal(signal.SIGTERM, terminate)
    cpus = plan_cpus()
    if cpus.generator is not None:
        # This process is the latency sender: keep it off the servers' CPU, as bench/ack.py
        # does with its load generator. (Children started through taskset go where told.)
        os.sched_setaffinity(0, {cpus.generator})
    print(f"cpus: {cpus.note} (the drain children and framehook processes on the server CPU)")
    scratch = Path(tempfile.mkdtemp(prefix="framehook-bench-tasks-"))
    server: ScratchDatabases | None = ScratchDatabases(postgres_server_url())
    broken: list[str] = []
    drains: list[Drain] = []
    latencies: list[Latency] = []
    try:
        with noting_failures(broken, psycopg.Error, httpx.HTTPError):
            try:
                assert server is not None
                server.check()
            except psycopg.Error as exc:
                broken.append(f"PostgreSQL unreachable at {postgres_server_url()}: {exc}")
                server = None
            if not args.skip_throughput and server is not None:
                drains = throughput(args, server, cpus, scratch, broken)
                # Free the disk and the server before the latency part.
                broken.extend(server.drop_all())
            if not args.skip_latency:
                api_key = bench_api_key()
                for setup in SETUPS:
                    if setup.database == "postgres" and server is None:
                        continue
                    latency = measure_latency(setup, args, server, cpus, scratch, api_key)
                    latencies.append(latency)
                    if latency.missing:
                        broken.append(f"{setup.name}: {latency.missing} handler starts missing")
    finally:
        if server is not None:
            broken.extend(server.drop_all())
    summary: dict[str, Any] = {}
    if drains:
        summary |= report_throughput(drains)
    if latencies:
        summary |= report_latency(latencies)
    report = {
        "config": {
            "tasks": args.tasks,
            "concurrency": args.concurrency,
            "rounds": args.rounds,
            "events": args.events,
            "cpus": cpus.note,
            "targets": {
                "ratio": TARGET_RATIO,
                "ratio_pgqueuer": TARGET_PGQUEUER_RATIO,
                "one_process_p50_ms": TARGET_ONE_PROCESS_P50_MS,
                "across_processes_p50_ms": TARGET_ACROSS_PROCESSES_P50_MS,
            },
        },
        "throughput": [d.row() for d in drains],
        "latency": [r.row() for r in latencies],
        "summary": summary,
        "broken": broken,
    }
    return finish(broken, report, args.json, scratch)


if __name__ == "__main__":
    sys.exit(main())
