"""/readyz and the asset store: a read-only one is a 503 naming it, until it is writable."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from starlette.testclient import TestClient

from receiver import Settings, create_app
from receiver.health import STORAGE_RECHECK_SECONDS
from tests.support.mounts import Tmpfs
from tests.support.webhooks import API_KEY


def test_a_read_only_asset_store_makes_readyz_503_until_it_is_writable(
    tmp_path: Path, tmpfs: Callable[[str, int], Tmpfs]
) -> None:
    """Assets on a filesystem mounted read-only (root ignores file modes): 503
    storage_unavailable where a worker runs (a receiver-only process stays ready);
    remounted read-write: 200 within a re-probe interval."""
    assets = tmpfs("assets", 1_048_576)
    assets.remount("ro")
    receiver_only = Settings(
        api_key=API_KEY,
        database_url=f"sqlite:///{tmp_path / 'receiver.db'}",
        handlers=["download"],
        run_worker=False,
        storage_url=str(assets.path),
        reconcile=False,
    )
    with TestClient(create_app(receiver_only)) as client:
        assert client.get("/readyz").status_code == 200
    settings = Settings(
        api_key=API_KEY,
        database_url=f"sqlite:///{tmp_path / 'fh.db'}",
        handlers=["download"],
        run_worker=True,
        storage_url=str(assets.path),
        reconcile=False,
    )
    with TestClient(create_app(settings)) as client:
        unready = client.get("/readyz")
        assert (unready.status_code, unready.json()["reason"]) == (503, "storage_unavailable")
        assert "read-only" in unready.json()["detail"]
        assert client.get("/readyz").status_code == 503  # the failed probe is reused...
        assets.remount("rw")
        deadline = time.monotonic() + STORAGE_RECHECK_SECONDS + 5
        while (answer := client.get("/readyz")).status_code != 200:  # ...then tried again
            assert time.monotonic() < deadline, answer.text
            time.sleep(0.2)
    assert list(assets.path.iterdir()) == []  # the probe cleaned up after itself
