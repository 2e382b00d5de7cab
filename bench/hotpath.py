"""CPU per webhook on the receiver's own hot path: this checkout against another, in process.

``bench/ack.py`` measures what Apiframe sees (HTTP, saturation), but on a shared VM its
rounds swing by ±15 %, more than most changes to the hot path are worth. This benchmark
measures what such a change alters: the CPU seconds the receiver spends per webhook, with no
sockets, HTTP parser or load generator in the way. Each measurement is a fresh process
(``bench/_hotpath_child.py``) that builds the app as ``framehook serve --no-worker`` does
(SQLite with its default durability, JSON logs), starts it, and sends the same signed,
Apiframe-like deliveries straight to it as ASGI calls, ``--concurrency`` at a time, so the
group commit batches them as under load. The CPU time counts every thread of the process
(the commit's fsync and the checkpointer too).

Rounds alternate which checkout goes first, and each round's two figures are paired: the ratio
base/this (> 1: this checkout needs less CPU per webhook) is printed as min/median/max over
``--rounds``. Without ``--base`` only this checkout is measured.

Exit status: 0 when the run is sound; 1 when a child failed or a delivery was not answered
2xx; 2 for unusable arguments.

Usage::

    .venv/bin/python bench/hotpath.py [--base DIR] [--requests 8000] [--warmup 1000]
        [--concurrency 32] [--rounds 8] [--json PATH]
"""

# Imports follow the sys.path entry below, which they need.
# ruff: noqa: E402

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as ``python bench/hotpath.py``: make the ``bench`` package importable.
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))

import argparse
import json
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass

from bench._harness import (
    bench_api_key,
    framehook_checkout,
    framehook_env,
    plan_cpus,
    taskset,
    with_checkout,
)
from bench._workload import prepare_workload
from bench.ack import spread

CHILD = Path(__file__).with_name("_hotpath_child.py")
CHILD_TIMEOUT_S = 600.0


@dataclass(frozen=True)
class Measured:
    """One child's figures."""

    side: str  # "framehook" (this checkout) or "base"
    round: int
    requests: int
    statuses: dict[str, int]
    cpu_s: float
    wall_s: float

    @property
    def cpu_us(self) -> float:
        """CPU microseconds per webhook."""
        return self.cpu_s / self.requests * 1e6

    @property
    def rate(self) -> float:
        """Webhooks per second of wall time."""
        return self.requests / self.wall_s


class ChildFailed(RuntimeError):
    """A measurement process failed."""


def measure(
    side: str,
    round_no: int,
    source: Path | None,
    args: argparse.Namespace,
    data: Path,
    api_key: str,
    scratch: Path,
    cpu: int | None,
) -> Measured:
    """One fresh process of ``side`` on a fresh database."""
    workdir = scratch / f"{side}-{round_no}"
    workdir.mkdir()
    env = framehook_env(api_key, f"sqlite:///{workdir / 'fh.db'}")
    if source is not None:
        env = with_checkout(env, source)
    argv = [*taskset(cpu), sys.executable, str(CHILD), str(data)]
    argv += [str(args.warmup), str(args.requests), str(args.concurrency)]
    log = workdir / "child.log"
    with log.open("wb") as stderr:
        done = subprocess.run(
            argv,
            env=env,
            cwd=workdir,
            stdout=subprocess.PIPE,
            stderr=stderr,
            timeout=CHILD_TIMEOUT_S,
            check=False,
        )
    if done.returncode != 0:
        tail = log.read_text(errors="replace")[-800:]
        raise ChildFailed(f"{side} round {round_no}: exit {done.returncode}: {tail}")
    figures = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return Measured(side, round_no, **figures)


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--base",
        type=framehook_checkout,
        default=None,
        metavar="DIR",
        help="another framehook checkout (git worktree add /tmp/base main) measured beside this",
    )
    parser.add_argument("--requests", type=int, default=8000, help="measured webhooks a process")
    parser.add_argument("--warmup", type=int, default=1000, help="webhooks sent first, unmeasured")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--rounds", type=int, default=8, help="processes per checkout")
    parser.add_argument("--seed", type=int, default=1, help="workload seed")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write results")
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    args = parser.parse_args(argv)
    if min(args.requests, args.concurrency, args.rounds) < 1 or args.warmup < 0:
        parser.error("--requests, --concurrency and --rounds >= 1, --warmup >= 0")
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    args = _parse_args(argv)
    cpus = plan_cpus()
    api_key = bench_api_key()
    scratch = Path(tempfile.mkdtemp(prefix="framehook-hotpath-"))
    try:
        data = scratch / "deliveries.tsv"
        prepare_workload(args.warmup + args.requests, api_key, data, seed=args.seed)
        sides: list[tuple[str, Path | None]] = [("framehook", None)]
        if args.base is not None:
            sides.append(("base", args.base))
        print(
            f"{args.rounds} round(s) of {args.warmup} + {args.requests} webhooks a process, "
            f"{args.concurrency} in flight; {cpus.note}"
        )
        runs: list[Measured] = []
        broken: list[str] = []
        try:
            for n in range(1, args.rounds + 1):
                # Which checkout goes first alternates: a drift of the machine during a round
                # favours neither.
                for side, source in sides if n % 2 else sides[::-1]:
                    run = measure(side, n, source, args, data, api_key, scratch, cpus.server)
                    runs.append(run)
                    print(
                        f"{side:<10} round {n}: {run.cpu_us:7.1f} µs CPU/webhook, "
                        f"{run.rate:8.1f} webhooks/s, statuses {run.statuses}"
                    )
                    if set(run.statuses) - {"200", "202"}:
                        broken.append(f"{side} round {n}: answers {run.statuses}")
        except (ChildFailed, subprocess.TimeoutExpired) as exc:
            broken.append(str(exc))
        summary = _summary(runs)
        if args.json is not None:
            report = {
                "config": {**vars(args), "base": str(args.base), "json": str(args.json)},
                "runs": [asdict(r) | {"cpu_us": r.cpu_us} for r in runs],
                "summary": summary,
                "broken": broken,
            }
            args.json.write_text(json.dumps(report, indent=2))
        for problem in broken:
            print(f"BROKEN: {problem}")
        return 1 if broken else 0
    finally:
        if args.keep:
            print(f"scratch kept: {scratch}")
        else:
            shutil.rmtree(scratch, ignore_errors=True)


def _summary(runs: Sequence[Measured]) -> dict[str, object]:
    """Per side: CPU µs per webhook; with both sides, the paired ratios base/framehook."""
    summary: dict[str, object] = {}
    for side in ("framehook", "base"):
        values = [r.cpu_us for r in runs if r.side == side]
        if values:
            seen = spread(values)
            summary[f"{side}_cpu_us"] = seen
            print(
                f"{side} CPU per webhook: {seen['median']:.1f} µs "
                f"(min {seen['min']:.1f}, max {seen['max']:.1f})"
            )
    by_round = {(r.side, r.round): r.cpu_us for r in runs}
    ratios = [
        by_round[("base", n)] / by_round[("framehook", n)]
        for n in sorted({r.round for r in runs})
        if ("base", n) in by_round and ("framehook", n) in by_round
    ]
    if ratios:
        seen = spread(ratios)
        summary["ratio_base_over_framehook"] = seen
        print(
            f"ratio base/framehook CPU per webhook = {seen['median']:.3f} (min {seen['min']:.3f}, "
            f"max {seen['max']:.3f} over {len(ratios)} round(s)); > 1: this checkout is leaner"
        )
    return summary


if __name__ == "__main__":
    sys.exit(main())
