"""``framehook simulate``: many jobs through a misbehaving fake, expected against actual."""

from __future__ import annotations

import json
import sqlite3
from contextlib import closing
from pathlib import Path

from receiver.dev.simulate import JobReckoning
from tests.support.processes import framehook_env, run_cli


def test_a_chaotic_run_ends_with_every_job_and_file_where_the_api_says(tmp_path: Path) -> None:
    """Half the webhooks dropped, others duplicated, reordered and delayed, some jobs
    failing: reconciliation and dedupe still bring every job to its state and every file
    home, and the command says so with exit 0."""
    args = ["simulate", "--jobs", "18", "--drops", "0.5", "--duplicates", "0.3"]
    args += ["--seed", "4", "--dir", str(tmp_path / "run")]
    done = run_cli(args, framehook_env(), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all jobs agree" in done.stdout
    assert "MISMATCH" not in done.stdout
    stored = [p for p in (tmp_path / "run" / "assets").rglob("*") if p.is_file()]
    captured = int(done.stdout.split(" files captured")[0].rsplit(" ", 1)[-1])
    assert len(stored) == captured > 0


def test_unseen_result_shapes_and_bodies_without_event_still_end_with_every_file_stored(
    tmp_path: Path,
) -> None:
    """Music results as an array of tracks, other results in shapes no document shows, bodies
    naming their event by `type` or only by `status`, and no reconciliation to fall back on:
    every job still ends as the API says, with every file the fake serves stored."""
    args = ["simulate", "--jobs", "12", "--music-results", "array", "--unseen-shapes", "0.5"]
    args += ["--event-field", "mixed", "--no-reconcile", "--drops", "0", "--seed", "5"]
    args += ["--dir", str(tmp_path / "run")]
    done = run_cli(args, framehook_env(), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "all jobs agree" in done.stdout
    stored = [p for p in (tmp_path / "run" / "assets").rglob("*") if p.is_file()]
    captured = int(done.stdout.split(" files captured")[0].rsplit(" ", 1)[-1])
    assert len(stored) == captured > 12
    # The run did send what it was asked to (this seed): a music result that is an array of
    # tracks, results of other shapes, bodies named by `type` and bodies with only a status.
    with closing(sqlite3.connect(tmp_path / "run" / "framehook.db")) as database:
        results = [json.loads(r) for (r,) in database.execute("SELECT result FROM jobs") if r]
        bodies = [json.loads(b) for (b,) in database.execute("SELECT body FROM deliveries")]
    assert any(isinstance(r, list) and isinstance(r[0], dict) for r in results)
    assert any(isinstance(r, list) and isinstance(r[0], str) for r in results)
    assert any("type" in body for body in bodies)
    assert any("event" not in body and "type" not in body for body in bodies)


def test_rates_outside_zero_to_one_are_refused(tmp_path: Path) -> None:
    """A share of 2 is a usage error (exit 2), not a run."""
    done = run_cli(["simulate", "--drops", "2"], framehook_env(), tmp_path)
    assert done.returncode == 2
    assert "between 0 and 1" in done.stderr


def test_a_job_agrees_only_when_status_and_file_count_both_match() -> None:
    """A missing file is a mismatch even when the status is right."""
    same = JobReckoning("j", "m", "COMPLETED", 4, "COMPLETED", 4)
    short = JobReckoning("j", "m", "COMPLETED", 4, "COMPLETED", 3)
    lost = JobReckoning("j", "m", "FAILED", 0, "PROCESSING", 0)
    assert (same.ok, short.ok, lost.ok) == (True, False, False)
