"""Fixtures for chaos runs: a scratch database, a loopback CDN, and the harness that ties a
cluster, its proxy, a sender and the invariants together."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine

from receiver.db.engine import create_db_engine
from tests.support.cdn import FakeCdn
from tests.support.database import scratch_postgres
from tests.system.chaos.cluster import Cluster
from tests.system.chaos.invariants import AssetStore, Report, check_run, wait_until_drained
from tests.system.chaos.plan import Plan, make_plan
from tests.system.chaos.proxy import RoundRobinProxy
from tests.system.chaos.sender import Sender

# What every member runs with; a test overrides some (a short lease, say).
BASE_ENV = {
    "FRAMEHOOK_HANDLERS": "download",
    "FRAMEHOOK_ASSET_HOSTS": "127.0.0.1",
    "FRAMEHOOK_ASSET_ALLOW_HTTP": "true",
    "FRAMEHOOK_ASSET_ALLOW_NETWORKS": "127.0.0.0/8",
    "FRAMEHOOK_ADMIN_TOKEN": "chaos-admin-token",
    "FRAMEHOOK_POLL_SECONDS": "0.5",
    # Quick retries: a run is seconds long, and a reclaimed or failed download must finish in it.
    "FRAMEHOOK_RETRY_BASE_SECONDS": "0.2",
    "FRAMEHOOK_RETRY_MAX_SECONDS": "2",
    "FRAMEHOOK_LEASE_SECONDS": "5",
    "FRAMEHOOK_GRACE_SECONDS": "5",
    # Two intake writers per receiver: five processes share one PostgreSQL (and two cores).
    "FRAMEHOOK_INTAKE_WRITERS": "2",
    "FRAMEHOOK_RETENTION_DAYS": "0",
}


@dataclass
class Harness:
    """A running cluster behind its proxy, with the CDN its jobs' files come from."""

    cluster: Cluster
    proxy: RoundRobinProxy
    cdn: FakeCdn
    engine: Engine
    storage_root: Path
    startup_seconds: float = 0.0
    assets: AssetStore | None = None
    """Where the invariants read the stored files when not under ``storage_root`` (an object
    store)."""

    @property
    def cdn_base(self) -> str:
        """The base URL of the jobs' file URLs."""
        return f"http://127.0.0.1:{self.cdn.port}"

    def plan(self, jobs: int, seed: int = 0, **options: Any) -> Plan:
        """A plan of ``jobs`` jobs whose files the CDN serves."""
        plan = make_plan(jobs, self.cdn_base, seed=seed, **options)
        plan.serve(self.cdn)
        return plan

    def sender(self, plan: Plan, **options: Any) -> Sender:
        """A sender of ``plan``'s events through the proxy."""
        return Sender(self.proxy.url, plan.events, **options)

    def settle(self) -> None:
        """Fail at once if a member died unasked (rather than time out later)."""
        for member in self.cluster.members.values():
            code = member.process.poll()
            assert code is None, f"{member.name} exited with {code}:\n{member.log.read_text()}"

    def finish(self, plan: Plan, sender: Sender, drain_timeout: float = 60.0) -> Report:
        """Wait for the workers to drain, check every invariant, print the table."""
        drained = time.monotonic()
        wait_until_drained(self.engine, plan, drain_timeout, self.settle)
        drain_seconds = time.monotonic() - drained
        report = check_run(
            self.engine,
            plan,
            sender.acks,
            self.assets or self.storage_root,
            rejected=sender.rejected,
            answers=sender.answers,
        )
        # The table is the run's result: shown with -s, and in the failure report otherwise.
        print(  # noqa: T201
            f"\n{report.table()}\n(cluster up in {self.startup_seconds:.1f} s, "
            f"{len(plan.events)} events sent in {sender.seconds:.1f} s, drained "
            f"{drain_seconds:.1f} s later; logs in {self.cluster.workdir})",
            file=sys.stderr,
        )
        return report


@pytest.fixture
def chaos_database(postgres_server_url: str) -> Iterator[str]:
    """A scratch PostgreSQL database of this test's own."""
    with scratch_postgres(postgres_server_url, "framehook_chaos") as (url, _name):
        yield url


@pytest.fixture
def make_harness(chaos_database: str, tmp_path: Path) -> Iterator[Callable[..., Harness]]:
    """Start a harness: 2 receivers and 3 workers (unless told otherwise) behind a proxy,
    ``BASE_ENV`` with ``env`` on top; everything stops when the test ends. A test whose
    ``env`` points ``FRAMEHOOK_STORAGE_URL`` elsewhere passes ``assets`` to read it back."""
    stack = ExitStack()

    def factory(
        env: dict[str, str] | None = None,
        receivers: int = 2,
        workers: int = 3,
        assets: AssetStore | None = None,
    ) -> Harness:
        started = time.monotonic()
        root = tmp_path / "assets"
        cdn = stack.enter_context(FakeCdn())
        settings = {**BASE_ENV, "FRAMEHOOK_STORAGE_URL": str(root), **(env or {})}
        cluster = stack.enter_context(
            Cluster(chaos_database, tmp_path, settings, receivers=receivers, workers=workers)
        )
        proxy = stack.enter_context(RoundRobinProxy(cluster.receiver_ports))
        engine = create_db_engine(chaos_database, pool_size=2)
        stack.callback(engine.dispose)
        return Harness(cluster, proxy, cdn, engine, root, time.monotonic() - started, assets)

    with stack:
        yield factory


def wait_for_acks(sender: Sender, count: int, timeout: float = 60.0) -> None:
    """Block until ``sender`` has ``count`` acknowledgements (or has finished)."""
    deadline = time.monotonic() + timeout
    while len(sender.acks) < count and sender.is_alive():
        assert time.monotonic() < deadline, f"{len(sender.acks)} of {count} acks in {timeout} s"
        time.sleep(0.05)
