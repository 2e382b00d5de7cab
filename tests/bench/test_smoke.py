"""Smoke tests for the benchmark scripts: a small run of each, through real processes, must be
sound and print its figures."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


@dataclass(frozen=True)
class Ran:
    """A finished benchmark run, and where its ``--json`` report was asked to go."""

    done: subprocess.CompletedProcess[str]
    report: Path

    @property
    def stdout(self) -> str:
        return self.done.stdout

    @property
    def output(self) -> str:
        return self.done.stdout + self.done.stderr


def check_ack(run: Ran) -> None:
    """A 0.5 s ack benchmark, no warm-up (wrk if installed, else httpx), with this checkout as
    its ``--base`` too: exit 0, the bare, naive, framehook and base servers measured, the ratio
    lines, and every receiver's rows checked."""
    for line in ("framehook/bare", "framehook/naive", "framehook/base", "base/bare"):
        assert f"ratio {line} = " in run.stdout, run.output
    report = json.loads(run.report.read_text())
    assert [r["server"] for r in report["runs"]] == ["bare", "naive", "framehook", "base"]
    for stored in report["runs"][1:]:
        assert stored["store_check"]["ok"], stored
        assert stored["store_check"]["rows"] > 0, stored
    summary = report["summary"]
    assert summary["ratio"] > 0
    for key in ("ratio_bare", "ratio_naive", "ratio_base"):
        assert set(summary[key]) == {"min", "median", "max"}, summary


def check_hotpath(run: Ran) -> None:
    """Two rounds of 300 webhooks a process, this checkout as its own ``--base``: exit 0, each
    side measured in each round with every webhook answered 2xx, the CPU figures and the
    paired ratio printed."""
    report = json.loads(run.report.read_text())
    assert report["broken"] == []
    runs = report["runs"]
    assert sorted((r["side"], r["round"]) for r in runs) == [
        ("base", 1), ("base", 2), ("framehook", 1), ("framehook", 2),
    ]  # fmt: skip
    for r in runs:
        assert r["requests"] == 300, r
        assert set(r["statuses"]) <= {"200", "202"}, r
        assert r["cpu_us"] > 0, r
    assert set(report["summary"]["ratio_base_over_framehook"]) == {"min", "median", "max"}
    assert "ratio base/framehook CPU per webhook = " in run.stdout, run.output


def check_openloop(run: Ran) -> None:
    """1 s at 50 webhooks/s per setup, 3 jobs in flight so completed jobs come early: exit 0,
    every request sent on schedule and answered, both framehook setups' deliveries stored,
    serve's files all captured, and the p99 ratio lines."""
    report = json.loads(run.report.read_text())
    assert report["broken"] == []
    runs = report["runs"]
    assert [r["setup"] for r in runs] == ["bare", "no-worker", "serve"]
    for r in runs:
        assert r["sent"] == 50, r
        # 202 for a new event; a repeat in the workload is answered 200 by framehook.
        assert sum(r["statuses"].values()) == 50, r
        assert set(r["statuses"]) <= {"200", "202"}, r
    assert all(r["store_check"]["ok"] for r in runs[1:]), runs
    capture = runs[2]["capture"]
    assert capture["expected"] > 0, capture
    assert capture["captured"] == capture["expected"], capture
    assert "50/s serve     p99 min/median/max = " in run.stdout, run.output
    assert "p99/p99(no-worker) = " in run.stdout, run.output
    assert "captured " in run.stdout, run.output


def check_scale(run: Ran) -> None:
    """0.5 s per intake setup, no warm-up, 100 end-to-end events: exit 0, the four setups, the
    ratios, the end-to-end line and the 2-core note (about 15 s)."""
    for setup in ("bare HMAC endpoint x1", "framehook, PostgreSQL x1"):
        assert setup in run.stdout, run.output
    for setup in ("bare HMAC endpoint x2", "framehook, PostgreSQL x2"):
        assert setup in run.stdout, run.output
    assert "ratio framehook x1 / bare x1 = " in run.stdout, run.output
    assert "ratio framehook x2 / bare x2 = " in run.stdout, run.output
    assert "events/s end to end = " in run.stdout, run.output
    assert "machine: " in run.stdout, run.output
    summary = json.loads(run.report.read_text())
    assert summary["broken"] == []
    assert summary["summary"]["end_to_end"]["succeeded"] == 100
    assert len(summary["intake"]) == 4


def check_tasks(run: Ran) -> None:
    """500 tasks and 20 events per setup: exit 0, the ratio lines and the latency table."""
    assert "ratio framehook/bare = " in run.stdout, run.output
    # pgqueuer (the bench extra) beside it, or one line saying why its column is missing.
    assert ("ratio framehook/pgqueuer = " in run.stdout) or (
        "pgqueuer column skipped: pgqueuer is not installed" in run.stdout
    ), run.output
    assert "p50 ms" in run.stdout, run.output
    assert "postgres, serve+worker" in run.stdout, run.output
    assert run.report.exists()


def check_download(run: Ran) -> None:
    """8 MiB into local storage and the nanio S3 server: exit 0, checksums right, ratios shown."""
    lines = run.stdout.splitlines()
    table = [line.split() for line in lines if line.startswith(("local", "s3"))]
    captures = [row for row in table if row[-1] in ("True", "False")]
    assert [row[0] for row in captures] == ["local", "s3"]
    assert all(row[-1] == "True" for row in captures)  # every checksum matched the source
    assert "best ratio framehook/curl throughput" in run.stdout
    assert "s3 (nanio) server's own ingest" in run.stdout  # the server's bound, beside ours


def check_flood(run: Ran) -> None:
    """0.3 s per phase, no warm-up, two flooders: exit 0, both setups quiet and flooded, the
    ratio lines, and the flooded phases really flooded (wrongly signed requests were answered)."""
    assert "ratio signed p50 flood/quiet (default limit, 64 KiB bodies) = " in run.stdout
    assert "ratio signed p50 flood/quiet (limit 1 MiB, 1 MiB bodies) = " in run.stdout
    phases = json.loads(run.report.read_text())["phases"]
    assert [p["phase"] for p in phases] == ["quiet", "flood", "quiet", "flood"]
    assert all(p["signed"] > 0 for p in phases), phases
    assert all(p["flood_rps"] > 0 for p in phases if p["phase"] == "flood"), phases


def check_forward(run: Ran) -> None:
    """5 jobs per setup after one warm-up: exit 0, both setups' lines, the ratios, and every
    job measured (each event verified by the app)."""
    assert "download only: 202 -> stored" in run.stdout, run.output
    assert "forward: 202 -> app 2xx" in run.stdout, run.output
    assert "ratio forward/download p50 = " in run.stdout, run.output
    summary = json.loads(run.report.read_text())
    assert summary["broken"] == []
    assert [s["jobs"] for s in summary["setups"].values()] == [5, 5]


def check_history(run: Ran) -> None:
    """An empty database against 2,000 prior deliveries made with SQL, 0.5 s each: exit 0,
    both rows measured and the ratio line."""
    assert "ratio 2000/empty: throughput = " in run.stdout, run.output
    summary = json.loads(run.report.read_text())
    assert summary["broken"] == []
    assert [r["prior_deliveries"] for r in summary["runs"]] == [0, 2000]


@dataclass(frozen=True)
class Bench:
    """A benchmark script, its smallest sound options and what its output must show."""

    script: str
    # "{report}", "{tmp}" and "{root}" stand for the report, the test's directory and this
    # checkout.
    args: tuple[str, ...]
    timeout: float
    check: Callable[[Ran], None]
    needs: str = ""  # "postgres" or "curl": without it the test is skipped (PostgreSQL: not in CI)


BENCHES = [
    Bench(
        "ack.py",
        ("--duration", "0.5", "--warmup", "0", "--json", "{report}", "--base", "{root}"),
        90,
        check_ack,
    ),
    Bench(
        "hotpath.py",
        (
            *("--requests", "300", "--warmup", "50", "--rounds", "2"),
            *("--base", "{root}", "--json", "{report}"),
        ),
        90,
        check_hotpath,
    ),
    Bench(
        "openloop.py",
        (
            *("--rates", "50", "--duration", "1", "--warmup", "0", "--rounds", "1"),
            *("--in-flight", "3", "--drain", "30", "--json", "{report}"),
        ),
        120,
        check_openloop,
    ),
    Bench(
        "scale.py",
        ("--duration", "0.5", "--warmup", "0", "--events", "100", "--json", "{report}"),
        110,
        check_scale,
        needs="postgres",
    ),
    Bench(
        "tasks.py",
        ("--tasks", "500", "--rounds", "1", "--events", "20", "--json", "{report}"),
        90,
        check_tasks,
        needs="postgres",
    ),
    Bench(
        "flood.py",
        ("--duration", "0.3", "--warmup", "0", "--flooders", "2", "--json", "{report}"),
        90,
        check_flood,
    ),
    Bench(
        "download.py",
        ("--size-mib", "8", "--rounds", "1", "--dir", "{tmp}"),
        300,
        check_download,
        needs="curl",
    ),
    Bench("forward.py", ("--jobs", "5", "--warmup", "1", "--json", "{report}"), 120, check_forward),
    Bench(
        "history.py",
        ("--sizes", "0,2000", "--duration", "0.5", "--warmup", "0", "--json", "{report}"),
        90,
        check_history,
    ),
]


def _postgres_reachable(url: str) -> bool:
    try:
        with psycopg.connect(
            url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3
        ):
            return True
    except psycopg.Error:
        return False


def _skip_without(needs: str) -> None:
    if needs == "postgres":
        url = os.environ.get("FRAMEHOOK_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL
        # Without CI a missing server is a skip; under CI it must fail, as the other PG tests do.
        if not os.environ.get("CI") and not _postgres_reachable(url):
            pytest.skip(f"PostgreSQL unreachable at {url}")
    elif needs == "curl" and shutil.which("curl") is None:
        pytest.skip("curl is not installed")


@pytest.mark.slow
@pytest.mark.parametrize("bench", [pytest.param(b, id=b.script) for b in BENCHES])
def test_bench_runs_clean(bench: Bench, tmp_path: Path) -> None:
    """Each benchmark, run small as a script, exits 0; its check says what else it must show."""
    _skip_without(bench.needs)
    report = tmp_path / "report.json"
    args = [arg.format(report=report, tmp=tmp_path, root=ROOT) for arg in bench.args]
    command = [sys.executable, str(ROOT / "bench" / bench.script), *args]
    done = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=bench.timeout, check=False
    )
    run = Ran(done, report)
    assert done.returncode == 0, run.output
    bench.check(run)
