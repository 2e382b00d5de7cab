"""History growth: what millions of prior deliveries cost the intake.

One run starts framehook (default ``serve``, SQLite, the download handler) on databases that
already hold ``--sizes`` prior deliveries, pinned to one CPU with the load generator on the
other, replays the same pre-signed deliveries against each and prints requests/s and p50/p99
latency, then each size's ratios to the empty database (medians over ``--rounds``). The issue
measured 0.85x the empty throughput and a doubled p99 at 5M on SQLite.

Prior history is made with SQL (``fill_history``): deliveries with raw bodies, their jobs and
ledger entries, a succeeded task and an attempt each, in a few ``INSERT ... SELECT``
statements (a recursive CTE on SQLite, ``generate_series`` on PostgreSQL), where sending
them would take hours. Their job ids and dedupe keys are scattered over the key space, as
Apiframe's UUIDs are, so the intake's new keys land among the old ones in the indexes: that is
what history costs (with keys that all sorted after the new ones, as a first version had, the
old pages were never touched). 5M took ~10 min on a 2-core machine; ``--reuse DIR`` keeps
each size's filled database for the next run. The prune tests use it too.

Exit status: 0 when the run is sound (a measurement: no target is enforced); 1 when it is
broken (a server did not start, a request failed); 2 for unusable arguments.

Usage::

    .venv/bin/python bench/history.py [--sizes 0,1000000] [--duration 10] [--warmup 2]
        [--connections 32] [--generator auto|wrk|httpx] [--rounds 1] [--json PATH] [--keep]
        [--reuse DIR]
"""

# Imports follow the sys.path entry below, which they need.
# ruff: noqa: E402

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as ``python bench/history.py``: make the ``bench`` and ``tests`` packages importable.
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))

import argparse
import math
import shutil
import signal
import statistics
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Engine, bindparam, text

from bench._harness import (
    Column,
    LoadResult,
    bench_api_key,
    choose_generator,
    each_round,
    finish,
    framehook_env,
    framehook_serve,
    measure_server,
    migrate,
    plan_cpus,
    print_table,
    terminate,
    whole_seconds,
)
from bench._workload import prepare_workload
from bench.ack import run_httpx
from receiver.db.checkpoints import Checkpointer
from receiver.db.engine import create_db_engine, writing
from receiver.db.models import UTCDateTime

__all__ = ["BODY", "fill_history", "main"]

BODY = (
    b'{"event":"completed","status":"COMPLETED","jobId":"history",'
    + b'"x":"'
    + (b"0" * 900)
    + b'"}'
)
"""A raw body about as big as a real completed event's (about 1 KB)."""

_CHUNK = 200_000
"""Rows per INSERT: each is one transaction, so a big fill never makes one huge WAL."""


def _numbers(engine: Engine) -> str:
    if engine.dialect.name == "sqlite":
        return (
            "WITH RECURSIVE n(i) AS (SELECT :first UNION ALL SELECT i + 1 FROM n WHERE i < :last) "
        )
    return "WITH n(i) AS (SELECT generate_series(CAST(:first AS bigint), CAST(:last AS bigint))) "


def _scattered(engine: Engine) -> str:
    """SQL for 8 hex digits that scatter with ``i`` (Knuth's multiplicative hash, one-to-one
    below 2**32): job ids that, like Apiframe's UUIDs, land all over the jobs and ledger
    indexes, so new ones are inserted among the old rather than all after them."""
    hashed = "(i * 2654435761) % 4294967296"
    if engine.dialect.name == "sqlite":
        return f"printf('%08x', {hashed})"
    return f"lpad(to_hex({hashed}), 8, '0')"


def fill_history(
    engine: Engine, deliveries: int, at: datetime, prefix: str = "history", *, jobs: bool = True
) -> None:
    """Add ``deliveries`` deliveries received at ``at``, each with its raw body, its job, its
    dedupe ledger entry, a succeeded task finished at ``at`` and that task's one attempt (a
    prune removes the body, the task and the attempt).

    Args:
        engine: a migrated framehook database.
        deliveries: how many.
        at: when they were received and their tasks finished (timezone-aware).
        prefix: makes their request ids unique to this call, and ends their job ids.
        jobs: also add the jobs and ledger entries (a prune leaves them alone: without them,
            a prune test's history is made twice as fast).
    """
    numbers = _numbers(engine)
    sqlite = engine.dialect.name == "sqlite"
    false = "0" if sqlite else "false"
    for first in range(1, deliveries + 1, _CHUNK):
        last = min(first + _CHUNK - 1, deliveries)
        with writing(engine) as connection:
            mark = connection.execute(text("SELECT coalesce(max(id), 0) FROM deliveries")).scalar()
            connection.execute(
                text(
                    numbers + "INSERT INTO deliveries (received_at, source, request_id, job_id, "
                    "event, event_mismatch, outcome, dedupe_key, fingerprint, body) "
                    f"SELECT :at, 'webhook', :prefix || '-' || i, job, 'completed', {false}, "
                    "'accepted', 'job:' || job || '\\:completed', :prefix || '-fp-' || i, :body "
                    f"FROM (SELECT i, {_scattered(engine)} || '-' || :prefix AS job FROM n) AS h"
                ).bindparams(bindparam("at", type_=UTCDateTime())),
                {"first": first, "last": last, "at": at, "prefix": prefix, "body": BODY},
            )
            if jobs:
                # Each delivery's job and its dedupe ledger entry: what the intake looks up.
                connection.execute(
                    text(
                        "INSERT INTO jobs (id, status, progress, created_at, updated_at, "
                        "completed_at, test) SELECT job_id, 'COMPLETED', 100, :at, :at, :at, "
                        f"{false} FROM deliveries WHERE id > :mark"
                    ).bindparams(bindparam("at", type_=UTCDateTime())),
                    {"at": at, "mark": mark},
                )
                connection.execute(
                    text(
                        'INSERT INTO ledger ("key", fingerprint, first_seen_at) '
                        "SELECT dedupe_key, fingerprint, :at FROM deliveries WHERE id > :mark"
                    ).bindparams(bindparam("at", type_=UTCDateTime())),
                    {"at": at, "mark": mark},
                )
            task_mark = connection.execute(text("SELECT coalesce(max(id), 0) FROM tasks")).scalar()
            connection.execute(
                text(
                    "INSERT INTO tasks (delivery_id, job_id, handler, event, status, priority, "
                    "attempts, run_at, attempt_offset, created_at, updated_at, finished_at) "
                    "SELECT id, job_id, 'download', 'completed', 'succeeded', 0, 1, :at, 0, "
                    ":at, :at, :at FROM deliveries WHERE id > :mark ORDER BY id"
                ).bindparams(bindparam("at", type_=UTCDateTime())),
                {"at": at, "mark": mark},
            )
            connection.execute(
                text(
                    "INSERT INTO task_attempts (task_id, attempt, worker, started_at, "
                    "finished_at, outcome) SELECT id, 1, 'history', :at, :at, 'succeeded' "
                    "FROM tasks WHERE id > :mark ORDER BY id"
                ).bindparams(bindparam("at", type_=UTCDateTime())),
                {"at": at, "mark": task_mark},
            )
        if sqlite:
            # framehook leaves checkpoints to its Checkpointer: without one a chunk at a time,
            # the WAL would grow to the size of the whole history (GBs) before one ran.
            Checkpointer(engine).checkpoint(truncate=True)


# --------------------------------------------------------------------------- the benchmark


@dataclass(slots=True)
class Run:
    """framehook measured on a database with ``size`` prior deliveries."""

    size: int
    round: int
    fill_s: float
    database_mb: float
    measured: LoadResult
    server_cpu: float

    def row(self) -> dict[str, Any]:
        m = self.measured
        return {
            "prior_deliveries": self.size,
            "round": self.round,
            "fill_s": round(self.fill_s, 2),
            "database_mb": round(self.database_mb, 1),
            "requests_per_s": round(m.rps, 1),
            "p50_ms": round(m.p50_ms, 3),
            "p99_ms": round(m.p99_ms, 3),
            "max_ms": round(m.max_ms, 3),
            "non_2xx": m.non_2xx,
            "errors": m.errors,
            "server_cpu": round(self.server_cpu, 3),
        }


def _database_mb(path: Path) -> float:
    files = [path, path.with_name(path.name + "-wal")]
    return sum(f.stat().st_size for f in files if f.exists()) / 1_000_000


def _filled(size: int, workdir: Path, env: dict[str, str], reuse: Path | None) -> Path:
    """A migrated database holding ``size`` prior deliveries: filled in ``workdir``, or, with
    ``reuse``, a copy of the one filled there by an earlier run (filled now if none was)."""
    database = workdir / "fh.db"
    kept = None if reuse is None else reuse / f"history-{size}.db"
    if kept is None or not kept.exists():
        # Filled under another name and renamed when done: an interrupted fill is never reused.
        target = database if kept is None else kept.with_name(kept.name + ".filling")
        target.unlink(missing_ok=True)
        url = f"sqlite:///{target}"
        migrate(env | {"FRAMEHOOK_DATABASE_URL": url}, workdir)
        if size:
            engine = create_db_engine(url)
            # A day old: history inside the retention window, as a busy receiver holds it.
            fill_history(engine, size, datetime.now(UTC) - timedelta(days=1))
            engine.dispose()
        if kept is not None:
            target.replace(kept)
    if kept is not None:
        migrate(env | {"FRAMEHOOK_DATABASE_URL": f"sqlite:///{kept}"}, workdir)  # a newer schema
        shutil.copyfile(kept, database)
    return database


def _measure(size: int, round_no: int, args: argparse.Namespace, setup: dict[str, Any]) -> Run:
    workdir: Path = setup["scratch"] / f"history-{size}-{round_no}"
    workdir.mkdir()
    env = framehook_env(setup["api_key"], f"sqlite:///{workdir / 'fh.db'}")
    env["FRAMEHOOK_HANDLERS"] = "download"
    began = time.monotonic()
    database = _filled(size, workdir, env, args.reuse)
    fill_s = time.monotonic() - began
    server = framehook_serve(
        f"framehook-{size}", workdir, env, worker=not args.no_worker, cpu=setup["cpus"].server
    )
    probes = [("/healthz", 200), ("/readyz", 200)]
    m = measure_server(
        server, probes, setup["generator"], setup["data"], args, setup["cpus"], workdir
    )
    return Run(size, round_no, fill_s, _database_mb(database), m.measured, m.server_cpu)


def _summary(runs: Sequence[Run], sizes: Sequence[int]) -> dict[str, Any]:
    """Each size's median throughput and p99 as ratios to the smallest size's, printed."""
    base = sizes[0]

    def medians(size: int) -> tuple[float, float]:
        chosen = [r.measured for r in runs if r.size == size]
        return (
            statistics.median(m.rps for m in chosen),
            statistics.median(m.p99_ms for m in chosen),
        )

    if not any(r.size == base for r in runs):
        return {}
    base_rps, base_p99 = medians(base)
    ratios: dict[str, Any] = {}
    for size in sizes[1:]:
        if not any(r.size == size for r in runs):
            continue
        rps, p99 = medians(size)
        throughput = rps / base_rps if base_rps else math.nan
        latency = p99 / base_p99 if base_p99 else math.nan
        name = "empty" if base == 0 else str(base)
        print(
            f"ratio {size}/{name}: throughput = {throughput:.2f}, p99 = {latency:.2f} "
            f"({rps:.0f} vs {base_rps:.0f} req/s, p99 {p99:.2f} vs {base_p99:.2f} ms)"
        )
        ratios[str(size)] = {"throughput": round(throughput, 4), "p99": round(latency, 4)}
    return ratios


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--sizes",
        default="0,1000000",
        help="prior deliveries, comma-separated; ratios are to the first (default 0,1000000)",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per size")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per size")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument("--generator", choices=("auto", "wrk", "httpx"), default="auto")
    parser.add_argument("--rounds", type=int, default=1, help="passes over all the sizes")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write results")
    parser.add_argument("--seed", type=int, default=1, help="workload seed")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument(
        "--reuse",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep each size's filled database in DIR, and measure copies of it (a 5M fill "
        "takes minutes; a copy, seconds)",
    )
    parser.add_argument("--no-worker", action="store_true", help="framehook serve --no-worker")
    args = parser.parse_args(argv)
    try:
        args.sizes = [int(size) for size in args.sizes.split(",")]
    except ValueError:
        parser.error("--sizes takes whole numbers, comma-separated (0,1000000)")
    if len(args.sizes) < 2 or min(args.sizes) < 0:
        parser.error("--sizes needs at least two sizes, none negative")
    if args.duration <= 0 or args.warmup < 0 or args.connections < 1 or args.rounds < 1:
        parser.error("--duration > 0, --warmup >= 0, --connections >= 1, --rounds >= 1")
    return args


COLUMNS = (
    Column("prior", 9),
    Column("rnd", 3),
    Column("fill s", 7, ".1f"),
    Column("db MB", 7, ".0f"),
    Column("req/s", 9, ".1f"),
    Column("p50 ms", 8, ".2f"),
    Column("p99 ms", 8, ".2f"),
    Column("max ms", 8, ".2f"),
    Column("non-2xx", 7),
    Column("errors", 6),
    Column("srv cpu", 7, ".0%"),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    args = _parse_args(argv)
    signal.signal(signal.SIGTERM, terminate)
    chosen = choose_generator(
        args.generator,
        "httpx",
        run_httpx,
        "falling back to the httpx client, which saturates its CPU before framehook does: "
        "the ratios will read close to 1.",
    )
    if chosen is None:
        return 2
    generator_name, generator = chosen
    if generator_name == "wrk":
        whole_seconds(args)
    cpus = plan_cpus()
    scratch = Path(tempfile.mkdtemp(prefix="framehook-bench-history-"))
    api_key = bench_api_key()
    count = max(10_000, math.ceil(25_000 * (args.warmup + args.duration)))
    data = scratch / "deliveries.tsv"
    prepare_workload(count, api_key, data, seed=args.seed)
    setup = {"scratch": scratch, "api_key": api_key, "cpus": cpus, "generator": generator}
    setup["data"] = data
    print(
        f"generator: {generator_name}, {args.connections} connections; {cpus.note}; prior "
        f"deliveries {args.sizes}; warm-up {args.warmup:g} s + {args.duration:g} s each, "
        f"{args.rounds} round(s)"
    )
    broken: list[str] = []
    runs = each_round(
        args.rounds, args.sizes, lambda size, n: _measure(size, n, args, setup), broken
    )
    for run in runs:
        if run.measured.non_2xx or run.measured.errors:
            broken.append(
                f"{run.size} prior deliveries, round {run.round}: {run.measured.non_2xx} "
                f"non-2xx, {run.measured.errors} timeouts/socket errors"
            )
    print()
    print_table(
        [
            (
                r.size, r.round, r.fill_s, r.database_mb, r.measured.rps, r.measured.p50_ms,
                r.measured.p99_ms, r.measured.max_ms, r.measured.non_2xx, r.measured.errors,
                r.server_cpu,
            )
            for r in runs
        ],
        COLUMNS,
    )  # fmt: skip
    print()
    summary = _summary(runs, args.sizes)
    report = {
        "config": {
            "generator": generator_name,
            "connections": args.connections,
            "duration_s": args.duration,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "sizes": args.sizes,
            "cpus": cpus.note,
        },
        "runs": [run.row() for run in runs],
        "summary": summary,
        "broken": broken,
    }
    return finish(broken, report, args.json, scratch, keep=args.keep)


if __name__ == "__main__":
    sys.exit(main())
