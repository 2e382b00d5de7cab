"""The harness with no fault: 2 receivers and 3 workers take a few thousand events."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from tests.system.chaos.conftest import Harness

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_a_clean_run_keeps_every_invariant(make_harness: Callable[..., Harness]) -> None:
    """No faults: every event acknowledged and stored, every job in its true state, every file
    captured once and intact, both receivers and all three workers used."""
    harness = make_harness()
    plan = harness.plan(jobs=300, seed=1)
    sender = harness.sender(plan)
    sender.run()
    report = harness.finish(plan, sender)
    report.assert_ok()
    assert len(plan.events) > 2000
    assert all(harness.proxy.connections[port] for port in harness.cluster.receiver_ports)
    logs = [harness.cluster.log_text(w.name) for w in harness.cluster.workers]
    assert all("asset stored" in log for log in logs), "a worker captured nothing"
