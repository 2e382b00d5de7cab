"""Retention in batches, on SQLite and PostgreSQL: any batch size prunes exactly what one
transaction did, reports its progress, and stops between batches keeping what it did."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from bench.history import fill_history
from receiver.db.engine import create_db_engine, writing
from receiver.db.retention import Pruned, prune
from tests.support.database import rows
from tests.support.processes import framehook_env, run_cli

OLD = datetime.now(UTC) - timedelta(days=60)
MONTH = timedelta(days=30)
# Deliveries whose task may still run (or be replayed): their bodies and tasks stay.
STILL_NEEDED = {3: "dead", 10: "waiting", 17: "queued", 18: "running"}


def _history(db: Engine) -> None:
    """25 old deliveries with a succeeded task each (four of them tasks that may still run),
    then 5 young ones."""
    fill_history(db, 25, OLD)
    with writing(db) as connection:
        for delivery, status in STILL_NEEDED.items():
            connection.execute(
                text("UPDATE tasks SET status = :s WHERE delivery_id = :d"),
                {"s": status, "d": delivery},
            )
    fill_history(db, 5, datetime.now(UTC), prefix="young")


def _bodies_left(db: Engine) -> set[int]:
    return {r.id for r in rows(db, "SELECT id FROM deliveries WHERE body IS NOT NULL")}


@pytest.mark.parametrize("batch_rows", [1, 4, 1000])
def test_any_batch_size_prunes_exactly_the_old_finished_history(
    db: Engine, batch_rows: int
) -> None:
    """Old bodies and succeeded tasks (with their attempts) go whatever the batch size; the
    bodies and tasks of tasks that may still run stay, and so does everything young."""
    _history(db)
    assert prune(db, MONTH, batch_rows=batch_rows) == Pruned(bodies=21, tasks=21, attempts=21)
    assert _bodies_left(db) == {*STILL_NEEDED, *range(26, 31)}
    statuses = rows(db, "SELECT delivery_id, status FROM tasks WHERE job_id LIKE '%-history'")
    assert {r.delivery_id: r.status for r in statuses} == STILL_NEEDED
    assert len(rows(db, "SELECT id FROM task_attempts")) == 4 + 5
    assert prune(db, MONTH, batch_rows=batch_rows) == Pruned(0, 0, 0)


def test_progress_is_reported_after_each_batch(db: Engine) -> None:
    """The progress callback sees growing totals, batch by batch, ending at the result."""
    _history(db)
    seen: list[Pruned] = []
    result = prune(db, MONTH, batch_rows=5, progress=seen.append)
    assert len(seen) > 2
    assert [s.bodies + s.tasks for s in seen] == sorted(s.bodies + s.tasks for s in seen)
    assert seen[-1] == result == Pruned(21, 21, 21)


def test_a_stopped_prune_keeps_what_it_did_and_the_next_one_finishes(db: Engine) -> None:
    """Stopped after its first batch, a prune returns what that batch did, which stays done;
    the next prune does the rest."""
    _history(db)
    stop = threading.Event()
    first = prune(db, MONTH, batch_rows=5, progress=lambda _: stop.set(), stop=stop)
    assert first == Pruned(bodies=4, tasks=0, attempts=0)  # ids 1-5 but 3, whose task is dead
    assert len(_bodies_left(db)) == 30 - 4
    assert first + prune(db, MONTH, batch_rows=5) == Pruned(21, 21, 21)


@pytest.mark.slow
def test_the_prune_command_shows_progress_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    """``framehook prune`` on a big history prints its progress on standard error; Ctrl-C
    ends it after the batch it is in with exit 130, and what it pruned stays pruned."""
    url = f"sqlite:///{tmp_path / 'fh.db'}"
    env = framehook_env(FRAMEHOOK_DATABASE_URL=url)
    assert run_cli(["db", "upgrade"], env, tmp_path).returncode == 0
    engine = create_db_engine(url)
    fill_history(engine, 300_000, OLD)
    command = [sys.executable, "-m", "receiver", "prune", "--older-than", "30d"]
    with subprocess.Popen(
        command, env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True
    ) as process:
        assert process.stderr is not None
        line = process.stderr.readline()  # the first progress line, about a second in
        assert "so far" in line, line
        process.send_signal(signal.SIGINT)
        started = time.monotonic()
        rest = process.stderr.read()
        assert process.wait(30) == 130
    assert time.monotonic() - started < 5
    assert "interrupted: pruned" in rest, rest
    assert "Traceback" not in rest
    pruned = int(rest.split("interrupted: pruned ")[1].split(" bodies")[0])
    assert 0 < pruned < 300_000
    assert len(rows(engine, "SELECT id FROM deliveries WHERE body IS NULL")) == pruned
    engine.dispose()
