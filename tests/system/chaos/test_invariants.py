"""The invariants themselves: all hold after a clean run, and each one catches its breakage.

The run is small and in-process (the app with its embedded worker, on SQLite), made once; each
test breaks a copy of it. The chaos tests rely on the same checks at scale, on PostgreSQL.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import Engine, text
from starlette.testclient import TestClient

from receiver import Settings, create_app
from receiver.db.engine import create_db_engine
from tests.support.cdn import FakeCdn
from tests.support.webhooks import API_KEY, signed_headers
from tests.system.chaos.invariants import Report, check_run, wait_until_drained
from tests.system.chaos.plan import Plan, make_plan
from tests.system.chaos.sender import PATH, Ack

ACKNOWLEDGED = "every event acknowledged"
PRESENT = "acknowledged events present"
STATES = "job states equal the truth"
ASSETS = "one asset per (job, position), checksum = source"
TASKS = "no task running or overdue"
TEMPORARY = "no temporary files"


@dataclass
class CleanRun:
    """A finished run whose invariants all hold, until a test breaks one."""

    plan: Plan
    acks: dict[str, Ack]
    engine: Engine
    root: Path

    def check(self) -> Report:
        return check_run(self.engine, self.plan, self.acks, self.root)

    def execute(self, sql: str) -> None:
        with self.engine.begin() as connection:
            assert connection.execute(text(sql)).rowcount == 1

    def one_asset_key(self) -> str:
        with self.engine.connect() as connection:
            return str(connection.execute(text("SELECT min(key) FROM assets")).scalar_one())


def _database_url(directory: Path) -> str:
    return f"sqlite:///{directory / 'framehook.db'}"


@pytest.fixture(scope="module")
def finished_run(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Plan, dict[str, Ack]]:
    """Twelve jobs' events (duplicates, any order) sent to the app, its worker drained; the
    directory holding its database and store, the plan, and the answers."""
    directory = tmp_path_factory.mktemp("clean-run")
    acks = {}
    with FakeCdn() as cdn:
        plan = make_plan(12, f"http://127.0.0.1:{cdn.port}", seed=9, duplicates=0.3)
        plan.serve(cdn)
        settings = Settings(
            api_key=API_KEY,
            database_url=_database_url(directory),
            storage_url=str(directory / "assets"),
            handlers=["download"],
            log_format="json",
            admin_token="unit-admin-token",
            reconcile=False,
            retry_base_seconds=0.05,
            asset_hosts=["127.0.0.1"],
            asset_allow_http=True,
            asset_allow_networks=["127.0.0.0/8"],
        )
        with TestClient(create_app(settings)) as client:
            for index, event in enumerate(plan.events):
                request_id = f"unit-{index}"
                headers = {**signed_headers(event.body), "X-Request-Id": request_id}
                answer = client.post(PATH, content=event.body, headers=headers)
                assert answer.is_success, answer.text
                delivery = answer.json()["deliveryId"]
                acks[event.key] = Ack(event, request_id, answer.status_code, delivery, 1)
            engine = create_db_engine(settings.database_url)
            try:
                assert wait_until_drained(engine, plan, timeout=30)
            finally:
                engine.dispose()
    assert plan.completed
    assert len(plan.completed) < len(plan.jobs)
    return directory, plan, acks


@pytest.fixture
def clean_run(
    finished_run: tuple[Path, Plan, dict[str, Ack]], tmp_path: Path
) -> Iterator[CleanRun]:
    """A copy of the finished run, this test's to break."""
    directory, plan, acks = finished_run
    copy = tmp_path / "run"
    shutil.copytree(directory, copy)
    engine = create_db_engine(_database_url(copy))
    yield CleanRun(plan, dict(acks), engine, copy / "assets")
    engine.dispose()


def test_a_clean_run_passes_every_invariant(clean_run: CleanRun) -> None:
    """Nothing broken: every check is ok, and the table says so line by line."""
    report = clean_run.check()
    report.assert_ok()
    lines = report.table().splitlines()
    assert len(lines) == 2 + 6
    assert all("  ok  " in line for line in lines[2:])


def _delete_an_acknowledged_delivery(run: CleanRun) -> None:
    ack = next(iter(run.acks.values()))
    run.execute(f"DELETE FROM deliveries WHERE id = {ack.delivery_id}")


def _delete_a_ledger_entry(run: CleanRun) -> None:
    key = next(iter(run.acks.values())).event.dedupe_key
    run.execute(f"DELETE FROM ledger WHERE key = '{key}'")


def _lose_an_acknowledgement(run: CleanRun) -> None:
    run.acks.pop(next(iter(run.acks)))


def _move_a_job_backwards(run: CleanRun) -> None:
    job = next(j for j in run.plan.jobs.values() if j.status == "PROCESSING")
    run.execute(f"UPDATE jobs SET progress = progress - 1 WHERE id = '{job.job_id}'")


def _fail_a_completed_job(run: CleanRun) -> None:
    job = run.plan.completed[0]
    run.execute(f"UPDATE jobs SET status = 'FAILED' WHERE id = '{job.job_id}'")


def _corrupt_a_stored_file(run: CleanRun) -> None:
    path = run.root / run.one_asset_key()
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")


def _store_a_second_copy(run: CleanRun) -> None:
    path = run.root / run.one_asset_key()
    path.with_name(f"copy-{path.name}").write_bytes(path.read_bytes())


def _forget_an_asset_record(run: CleanRun) -> None:
    run.execute(f"DELETE FROM assets WHERE key = '{run.one_asset_key()}'")


def _leave_a_task_running(run: CleanRun) -> None:
    run.execute("UPDATE tasks SET status = 'running' WHERE id = (SELECT min(id) FROM tasks)")


def _leave_a_task_overdue(run: CleanRun) -> None:
    run.execute("UPDATE tasks SET status = 'queued' WHERE id = (SELECT min(id) FROM tasks)")


def _leave_a_temporary_file(run: CleanRun) -> None:
    path = run.root / run.one_asset_key()
    path.with_name(f".{path.name}.0123abcd.part").write_bytes(b"half")


@pytest.mark.parametrize(
    ("breakage", "caught_by"),
    [
        (_delete_an_acknowledged_delivery, PRESENT),
        (_delete_a_ledger_entry, PRESENT),
        (_lose_an_acknowledgement, ACKNOWLEDGED),
        (_move_a_job_backwards, STATES),
        (_fail_a_completed_job, STATES),
        (_corrupt_a_stored_file, ASSETS),
        (_store_a_second_copy, ASSETS),
        (_forget_an_asset_record, ASSETS),
        (_leave_a_task_running, TASKS),
        (_leave_a_task_overdue, TASKS),
        (_leave_a_temporary_file, TEMPORARY),
    ],
)
def test_each_breakage_fails_its_invariant(
    clean_run: CleanRun, breakage: Callable[[CleanRun], None], caught_by: str
) -> None:
    """One thing broken after a clean run: exactly the invariant about it fails, and the
    assertion the chaos tests make reports it in the table."""
    breakage(clean_run)
    report = clean_run.check()
    assert report.failed == {caught_by}
    with pytest.raises(AssertionError, match="FAIL"):
        report.assert_ok()
