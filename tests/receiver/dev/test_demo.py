"""`framehook demo` as a user runs it: one real process, offline, files on disk."""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import time
from contextlib import closing
from pathlib import Path

import puremagic
import pytest

from tests.support.processes import framehook_env

# Each demo job's model, how it ends, and the types of the files it leaves.
EXPECTED = {
    "midjourney": ("COMPLETED", ["image/png"] * 5),
    "gpt-image-2": ("COMPLETED", ["image/webp"]),
    "kling-2.6": ("COMPLETED", ["video/mp4"]),
    "midjourney-video": ("COMPLETED", ["video/mp4"] * 4),
    "suno": ("COMPLETED", ["audio/mpeg", "image/jpeg", "audio/mpeg"]),
    "flux-2-pro": ("FAILED", []),
}


def demo(cwd: Path, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
    env = framehook_env()
    del env["APIFRAME_API_KEY"]  # the demo needs none
    return subprocess.run(
        [sys.executable, "-m", "receiver", "demo", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.mark.parametrize(
    "pace",
    [
        pytest.param([], marks=pytest.mark.slow, id="default-pace"),
        pytest.param(["--step-seconds", "0.02"], id="fast"),
    ],
)
def test_demo_runs_jobs_of_every_modality_to_files_on_disk(tmp_path: Path, pace: list[str]) -> None:
    """Exit 0; every job terminal in the database (the failing one FAILED); each completed
    job's files on disk with the right type."""
    result = demo(tmp_path, "--dir", "demo-out", *pace)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert "Files on disk (14)" in result.stdout
    assert "Where to look next" in result.stdout
    root = tmp_path / "demo-out"
    with closing(sqlite3.connect(root / "framehook.db")) as db:
        jobs = db.execute("SELECT id, model, status FROM jobs").fetchall()
        assets = db.execute(
            "SELECT job_id, storage_uri, content_type FROM assets ORDER BY job_id, position"
        ).fetchall()
    assert sorted((model, status) for _id, model, status in jobs) == sorted(
        (model, status) for model, (status, _types) in EXPECTED.items()
    )
    for job_id, model, _status in jobs:
        stored = [(uri, kind) for job, uri, kind in assets if job == job_id]
        assert [kind for _uri, kind in stored] == EXPECTED[model][1], model
        for uri, kind in stored:
            path = Path(uri.removeprefix("file://"))
            assert path.is_relative_to(root / "assets")
            assert puremagic.from_file(str(path), mime=True) == kind, path


def test_demo_times_out_with_a_message_and_exit_1(tmp_path: Path) -> None:
    """Jobs slower than --timeout: exit 1 saying it timed out, servers stopped, no traceback."""
    result = demo(tmp_path, "--dir", "d", "--timeout", "1", "--step-seconds", "1")
    assert result.returncode == 1
    assert "timed out after 1 s" in result.stdout
    assert "Traceback" not in result.stdout + result.stderr


def test_keep_running_serves_until_interrupted(tmp_path: Path) -> None:
    """--keep-running keeps both servers up after the summary; Ctrl-C (SIGINT) exits 0."""
    env = framehook_env()
    output = tmp_path / "demo.out"
    args = ["demo", "--dir", "d", "--keep-running", "--step-seconds", "0.02"]
    with output.open("w") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "receiver", *args],
            env=env,
            cwd=tmp_path,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
        try:
            deadline = time.monotonic() + 60
            while "Still running" not in output.read_text() and time.monotonic() < deadline:
                assert process.poll() is None, output.read_text()
                time.sleep(0.1)
            assert "Still running" in output.read_text()
            time.sleep(0.5)
            assert process.poll() is None
            process.send_signal(signal.SIGINT)
            assert process.wait(30) == 0, output.read_text()
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(10)
    assert "Traceback" not in output.read_text()
