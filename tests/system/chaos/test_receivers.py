"""Receivers dying under load: killed outright, or asked to stop."""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from signal import SIGTERM

import pytest

from tests.system.chaos.conftest import Harness, wait_for_acks

pytestmark = [pytest.mark.slow, pytest.mark.postgres]


def test_receivers_killed_at_random_moments_lose_no_acknowledged_event(
    make_harness: Callable[..., Harness],
) -> None:
    """SIGKILL a receiver (one at a time, at random moments, restarted after a moment) while
    events pour in: every event that got a 2xx is in the database, and those whose answer was
    lost are accepted when the sender retries them."""
    harness = make_harness()
    plan = harness.plan(jobs=250, seed=2)
    # Paced to last about 15 s at least, so there is time for three kills and restarts.
    sender = harness.sender(plan, rate=len(plan.events) / 15)
    rng = random.Random(2)
    sender.start()
    kills = 0
    try:
        while kills < 3 and sender.is_alive():
            time.sleep(rng.uniform(0.5, 2.0))
            if not sender.is_alive():
                break
            victim = rng.choice(harness.cluster.receivers).name
            assert harness.cluster.kill(victim) == -9
            kills += 1
            # Down for a moment (the proxy sends its share to the other), then back on its port.
            time.sleep(rng.uniform(0.1, 0.5))
            harness.cluster.restart(victim)
    finally:
        sender.join()
    report = harness.finish(plan, sender)
    report.assert_ok()
    assert kills >= 2, "the load ended before the receivers could be killed"
    # The kills hit requests in flight: some got no answer, and their retry was acknowledged.
    assert sender.unanswered > 0
    assert any(ack.attempt > 1 for ack in sender.acks.values())


def test_sigterm_under_load_is_graceful_and_loses_nothing(
    make_harness: Callable[..., Harness],
) -> None:
    """SIGTERM a receiver, then a worker busy downloading, then the other receiver, each while
    events keep coming: each exits 0 after finishing what it had, is started again, and no
    acknowledged event, job state or file is lost."""
    harness = make_harness()
    plan = harness.plan(jobs=250, seed=4)
    # Paced to last about 15 s, so the three stops all fall inside the load.
    sender = harness.sender(plan, rate=len(plan.events) / 15)
    cluster = harness.cluster
    quarter = len(plan.events) // 4
    sender.start()
    codes = {}
    try:
        for step, name in enumerate(("receiver-1", "worker-1", "receiver-2"), start=1):
            wait_for_acks(sender, step * quarter)
            assert sender.is_alive(), f"the load ended before {name} was stopped"
            codes[name] = cluster.terminate(name)
            # Not waiting for it to be ready: the load goes on meanwhile, as in a rolling deploy.
            cluster.restart(name, wait=False)
    finally:
        sender.join()
    for name in codes:
        cluster.wait_ready(name)
    report = harness.finish(plan, sender)
    report.assert_ok()
    # uvicorn re-raises the SIGTERM it caught once its graceful shutdown is done, so a receiver
    # ends "killed by SIGTERM" (143 in a shell), but only after its lifespan finished.
    assert codes == {"receiver-1": -SIGTERM, "worker-1": 0, "receiver-2": -SIGTERM}
    for name in ("receiver-1", "receiver-2"):
        first_life = (harness.cluster.workdir / f"{name}.1.log").read_text()
        assert "Application shutdown complete" in first_life
