"""The object store going away under load: workers capture into S3, which vanishes for a few
seconds and comes back with its data.

The store is the S3 test server (moto, ``tests/servers.py``) behind a TCP proxy of its own:
closing the proxy makes the store unreachable (connections refused, those open cut), as an
outage or a network partition would, without losing what it holds; a new proxy on the same
port brings it back. Workers find it through ``AWS_ENDPOINT_URL``, as the README documents.
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from tests.support import servers
from tests.support.database import rows
from tests.system.chaos.conftest import Harness, wait_for_acks
from tests.system.chaos.invariants import ObjectStoreAssets
from tests.system.chaos.proxy import RoundRobinProxy

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

BUCKET = "framehook-chaos"
# Over obstore's own retries of one request (10 in about 2.6 s, measured against a refused
# port), so attempts really fail and go back to the queue, twice or so each.
OUTAGE_SECONDS = 6.0


@pytest.fixture
def s3_endpoint(tmp_path: Path) -> Iterator[str]:
    """The S3 test server with the bucket; its endpoint URL (no proxy)."""
    directory = tmp_path / "s3"
    directory.mkdir()
    with servers.moto_server(directory) as endpoint:
        servers.create_s3_bucket(endpoint, BUCKET)
        yield endpoint


def test_object_store_down_mid_load_tasks_retry_and_complete_when_it_returns(
    make_harness: Callable[..., Harness],
    s3_endpoint: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Cut the S3 store off for six seconds while workers capture files into it: downloads
    fail and are retried (failed attempts recorded with the storage error), none is given up,
    and once the store is back every file is in it once, its bytes (read back from S3) hashing
    like the source's; every other invariant holds too."""
    store_port = urlsplit(s3_endpoint).port
    assert store_port is not None
    proxy = RoundRobinProxy([store_port]).__enter__()
    try:
        aws = {
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": proxy.url,
            "AWS_ALLOW_HTTP": "true",
        }
        # The invariants read the store in this process, through the same settings; nothing of
        # a developer's own AWS configuration may leak into either.
        for name in list(os.environ):
            if name.startswith("AWS_"):
                monkeypatch.delenv(name)
        for name, value in aws.items():
            monkeypatch.setenv(name, value)
        url = f"s3://{BUCKET}/{uuid.uuid4().hex}"
        assets = ObjectStoreAssets(url, lambda: servers.s3_pending_uploads(s3_endpoint, BUCKET))
        harness = make_harness({**aws, "FRAMEHOOK_STORAGE_URL": url}, assets=assets)
        plan = harness.plan(jobs=200, seed=12)
        sender = harness.sender(plan, rate=len(plan.events) / 12)
        sender.start()
        try:
            wait_for_acks(sender, len(plan.events) // 4)
            assert sender.is_alive(), "the load ended before the store was cut off"
            stored_before = len(rows(harness.engine, "SELECT id FROM assets"))
            proxy.__exit__(None, None, None)  # the store is gone
            down_at = datetime.now(UTC)
            time.sleep(OUTAGE_SECONDS)
            up_at = datetime.now(UTC)
            # Back on the same port, with everything it held.
            proxy = RoundRobinProxy([store_port], port=proxy.port).__enter__()
        finally:
            sender.join()
        report = harness.finish(plan, sender, drain_timeout=60)
    finally:
        proxy.__exit__(None, None, None)

    failed = rows(
        harness.engine,
        "SELECT task_id, outcome, error, finished_at FROM task_attempts"
        " WHERE outcome <> 'succeeded' ORDER BY finished_at",
    )
    outcomes = Counter(a.outcome for a in failed)
    first_error = (failed[0].error or "")[:300] if failed else None
    print(  # noqa: T201
        f"store down {(up_at - down_at).total_seconds():.1f} s, {stored_before} assets stored "
        f"before; failed attempts {dict(outcomes)} on {len({a.task_id for a in failed})} tasks;"
        f" first error: {first_error!r}",
        file=sys.stderr,
    )
    report.assert_ok()
    assert stored_before > 0, "the outage began before any capture"
    storage_failures = [a for a in failed if "storage failed" in (a.error or "")]
    assert storage_failures, "no download failed while the store was down"
    assert set(outcomes) == {"retry"}, f"attempts ended otherwise than retried: {dict(outcomes)}"
    # The failures are the outage's: none began to fail before the store went away.
    assert all(a.finished_at >= down_at for a in storage_failures)
