"""Smoke test for bench/tasks.py: a small run must be sound and print both parts' results."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import psycopg
import pytest

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"


def _postgres_reachable(url: str) -> bool:
    try:
        with psycopg.connect(
            url.replace("postgresql+psycopg://", "postgresql://"), connect_timeout=3
        ):
            return True
    except psycopg.Error:
        return False


@pytest.mark.slow
def test_queue_bench_runs_clean(tmp_path: Path) -> None:
    """500 tasks and 20 events per setup: exit 0, the ratio line and the latency table."""
    url = os.environ.get("FRAMEHOOK_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL
    # Without CI a missing server is a skip; under CI it must fail, as the other PG tests do.
    if not os.environ.get("CI") and not _postgres_reachable(url):
        pytest.skip(f"PostgreSQL unreachable at {url}")
    report = tmp_path / "queue.json"
    command = [sys.executable, str(ROOT / "bench" / "tasks.py"), "--tasks", "500"]
    command += ["--events", "20", "--json", str(report)]
    done = subprocess.run(
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "ratio framehook/bare = " in done.stdout, output
    assert "p50 ms" in done.stdout, output
    assert "postgres, serve+worker" in done.stdout, output
    assert report.exists()
