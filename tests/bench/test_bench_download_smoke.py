"""Smoke test for bench/download.py: a small run through real processes must be sound."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_download_bench_runs_clean(tmp_path: Path) -> None:
    """8 MiB into local storage and the nanio S3 server: exit 0, checksums right, ratios shown."""
    if shutil.which("curl") is None:
        pytest.skip("curl is not installed")
    command = [sys.executable, str(ROOT / "bench" / "download.py"), "--size-mib", "8"]
    command += ["--rounds", "1", "--dir", str(tmp_path)]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    table = [line.split() for line in done.stdout.splitlines() if line.startswith(("local", "s3"))]
    captures = [row for row in table if row[-1] in ("True", "False")]
    assert [row[0] for row in captures] == ["local", "s3"]
    assert all(row[-1] == "True" for row in captures)  # every checksum matched the source
    assert "best ratio framehook/curl throughput" in done.stdout
    assert "s3 (nanio) server's own ingest" in done.stdout  # the server's bound, beside ours
