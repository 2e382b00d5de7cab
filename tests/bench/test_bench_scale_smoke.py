"""Smoke test for bench/scale.py: a tiny run must be sound and print every figure and ratio."""

from __future__ import annotations

import json
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
def test_scale_bench_runs_clean(tmp_path: Path) -> None:
    """1 s per intake setup, no warm-up, 100 end-to-end events: exit 0, the four setups, the
    ratios, the end-to-end line and the 2-core note (about 20 s)."""
    url = os.environ.get("FRAMEHOOK_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL
    # Without CI a missing server is a skip; under CI it must fail, as the other PG tests do.
    if not os.environ.get("CI") and not _postgres_reachable(url):
        pytest.skip(f"PostgreSQL unreachable at {url}")
    report = tmp_path / "scale.json"
    command = [sys.executable, str(ROOT / "bench" / "scale.py"), "--duration", "1"]
    command += ["--warmup", "0", "--events", "100", "--json", str(report)]
    done = subprocess.run(
        command,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=110,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    for setup in ("bare HMAC endpoint x1", "framehook, PostgreSQL x1"):
        assert setup in done.stdout, output
    for setup in ("bare HMAC endpoint x2", "framehook, PostgreSQL x2"):
        assert setup in done.stdout, output
    assert "ratio framehook x1 / bare x1 = " in done.stdout, output
    assert "ratio framehook x2 / bare x2 = " in done.stdout, output
    assert "events/s end to end = " in done.stdout, output
    assert "machine: " in done.stdout, output
    summary = json.loads(report.read_text())
    assert summary["broken"] == []
    assert summary["summary"]["end_to_end"]["succeeded"] == 100
    assert len(summary["intake"]) == 4
