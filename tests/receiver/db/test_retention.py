"""Retention on SQLite and PostgreSQL: old bodies and finished tasks go; the ledger, jobs and
everything still needed stay, so a late retry is still a duplicate."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine
from starlette.testclient import TestClient

from handlers import PermanentFailure
from receiver.db.retention import Pruned, prune
from tests.support.database import rows
from tests.support.plugins import Recording
from tests.support.processes import framehook_env, run_cli
from tests.support.waiting import wait_until
from tests.support.webhooks import sample, signed_headers

URL = "/webhooks/apiframe"


def test_old_bodies_and_finished_tasks_go_but_a_late_retry_is_still_a_duplicate(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """Once its task succeeded, a delivery's body and the task (with its attempts) are
    pruned; the delivery row, the job and the ledger stay: the same webhook sent again is
    still answered 200 duplicate and queues nothing."""
    ok = Recording(name="ok")
    client = make_client(registered=(ok,), handlers=[], run_worker=True, poll_seconds=0.2)
    body = sample("completed-midjourney")
    assert client.post(URL, content=body, headers=signed_headers(body)).status_code == 202
    wait_until(lambda: [r.status for r in rows(db, "SELECT status FROM tasks")] == ["succeeded"])
    pruned = prune(db, timedelta(0), now=datetime.now(UTC) + timedelta(seconds=1))
    assert pruned == Pruned(bodies=1, tasks=1, attempts=1)
    assert [r.body for r in rows(db, "SELECT body FROM deliveries")] == [None]
    assert rows(db, "SELECT id FROM tasks") == []
    assert client.post(URL, content=body, headers=signed_headers(body)).status_code == 200
    assert rows(db, "SELECT id FROM tasks") == []
    assert [r.status for r in rows(db, "SELECT status FROM jobs")] == ["COMPLETED"]


def test_dead_tasks_and_their_bodies_stay_for_replay(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """A dead task is never pruned, nor the body it would run on; nothing young goes."""
    broken = Recording(name="broken", script={1: PermanentFailure("no")})
    client = make_client(registered=(broken,), handlers=[], run_worker=True, poll_seconds=0.2)
    body = sample("completed-gpt-image-2")
    assert client.post(URL, content=body, headers=signed_headers(body)).status_code == 202
    wait_until(lambda: [r.status for r in rows(db, "SELECT status FROM tasks")] == ["dead"])
    assert prune(db, timedelta(days=1)) == Pruned(0, 0, 0)
    later = datetime.now(UTC) + timedelta(days=30)
    assert prune(db, timedelta(days=1), now=later) == Pruned(0, 0, 0)
    assert rows(db, "SELECT body FROM deliveries")[0].body is not None


def test_the_prune_command_reports_what_it_removed(tmp_path: Path) -> None:
    """``framehook prune --older-than 0s`` on an empty database reports zeros; a bad age is a
    usage error."""
    env = framehook_env(FRAMEHOOK_DATABASE_URL=f"sqlite:///{tmp_path / 'f.db'}")
    assert run_cli(["db", "upgrade"], env, tmp_path).returncode == 0
    done = run_cli(["prune", "--older-than", "0s"], env, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "pruned 0 bodies, 0 tasks" in done.stderr
    assert run_cli(["prune", "--older-than", "soon"], env, tmp_path).returncode == 2


def test_serve_prunes_on_its_own_schedule(
    make_client: Callable[..., TestClient], db: Engine
) -> None:
    """With a retention of about a second, a finished task and its body disappear without
    anyone running a command."""
    ok = Recording(name="ok")
    client = make_client(
        registered=(ok,),
        handlers=[],
        run_worker=True,
        poll_seconds=0.2,
        retention_days=1 / 86_400,
        retention_interval_seconds=0.3,
    )
    body = sample("completed-suno")
    assert client.post(URL, content=body, headers=signed_headers(body)).status_code == 202
    wait_until(lambda: len(ok.calls) == 1)
    wait_until(lambda: rows(db, "SELECT id FROM tasks") == [])
    assert [r.body for r in rows(db, "SELECT body FROM deliveries")] == [None]
