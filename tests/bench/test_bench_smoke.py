"""Smoke test for bench/ack.py: a one-second run must be sound and print the ratio."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_ack_bench_runs_clean(tmp_path: Path) -> None:
    """A 1 s ack benchmark (wrk if installed, else httpx) exits 0 and prints the ratio line."""
    report = tmp_path / "ack.json"
    command = [sys.executable, str(ROOT / "bench" / "ack.py"), "--duration", "1"]
    command += ["--warmup", "0.5", "--json", str(report)]
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
    assert report.exists()
