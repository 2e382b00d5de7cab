"""Asset capture end to end: a signed webhook in, the worker's download handler, files in
storage and asset rows in the database; and a worker killed mid-download."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from receiver.db.engine import create_db_engine
from receiver.queue.replay import replay_job
from tests.support.cdn import FakeCdn, Route
from tests.support.database import rows
from tests.support.media import media_bytes
from tests.support.processes import Server, framehook_env
from tests.support.waiting import wait_until
from tests.support.webhooks import signed_headers, webhook_body

URL = "/webhooks/apiframe"
LOOPBACK = {
    "asset_hosts": ["localhost"],
    "asset_allow_http": True,
    "asset_allow_networks": ["127.0.0.0/8", "::1/128"],
}


@pytest.fixture
def cdn() -> Iterator[FakeCdn]:
    yield from FakeCdn().serving()


def completed(job_id: str, result: object) -> bytes:
    return orjson.dumps(webhook_body("completed", jobId=job_id, result=result))


def stored_files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_completed_webhook_ends_with_its_files_stored_and_recorded(
    make_client: Callable[..., TestClient], db: Engine, cdn: FakeCdn, tmp_path: Path
) -> None:
    """Images and grid are captured once by the embedded worker; a duplicate webhook and a
    replay of the job store nothing more."""
    root = tmp_path / "assets"
    client = make_client(
        run_worker=True, storage_url=str(root), retry_base_seconds=0.05, **LOOPBACK
    )
    bodies = {f"/{n}.png": media_bytes("png", 40_000 + n, seed=n) for n in range(3)}
    for path, body in bodies.items():
        cdn.route(path, Route(body, content_type="image/png"))
    urls = [f"http://localhost:{cdn.port}{p}" for p in bodies]
    body = completed("job-e2e", {"images": urls[:2], "gridUrl": urls[2] + "?sig=abc"})
    assert client.post(URL, content=body, headers=signed_headers(body)).status_code == 202

    def done() -> bool:
        return [r.status for r in rows(db, "SELECT status FROM tasks")] == ["succeeded"]

    wait_until(done, timeout=30)
    assets = rows(db, "SELECT * FROM assets ORDER BY position")
    assert [(a.position, a.kind, a.key) for a in assets] == [
        (1, "image", "job-e2e/image-1.png"),
        (2, "image", "job-e2e/image-2.png"),
        (3, "grid", "job-e2e/grid-1.png"),
    ]
    assert assets[2].source_url == urls[2]  # no query string
    files = stored_files(root)
    for asset, source in zip(assets, bodies.values(), strict=True):
        assert files[asset.key] == source
        assert asset.sha256 == hashlib.sha256(source).hexdigest()
        assert asset.size == len(source)
    assert len(files) == 3

    assert client.post(URL, content=body, headers=signed_headers(body)).status_code == 200
    assert replay_job(db, "job-e2e") == 1
    wait_until(
        lambda: done() and rows(db, "SELECT attempts FROM tasks")[0].attempts == 2, timeout=30
    )
    assert len(rows(db, "SELECT id FROM assets")) == 3
    assert sum(cdn.hits.values()) == 3
    assert stored_files(root) == files


@pytest.mark.slow
def test_a_worker_killed_mid_download_leaves_no_partial_file_and_the_retry_stores_one_copy(
    cdn: FakeCdn, tmp_path: Path
) -> None:
    """SIGKILL while a video streams in: nothing appears under its key; after the lease
    expires another process captures it once, intact, and the dead writer's temporary file
    is gone."""
    root = tmp_path / "assets"
    source = media_bytes("mp4", 3_000_000)
    cdn.route("/v.mp4", Route(source, stall_after=2_500_000, stall_seconds=30))
    env = framehook_env(
        FRAMEHOOK_DATABASE_URL=f"sqlite:///{tmp_path / 'framehook.db'}",
        FRAMEHOOK_STORAGE_URL=str(root),
        FRAMEHOOK_ASSET_HOSTS="localhost",
        FRAMEHOOK_ASSET_ALLOW_HTTP="true",
        FRAMEHOOK_ASSET_ALLOW_NETWORKS="127.0.0.0/8,::1/128",
        FRAMEHOOK_LEASE_SECONDS="2",
        FRAMEHOOK_POLL_SECONDS="0.2",
    )
    first = Server(env, tmp_path)
    first.wait_ready()
    signed_url = f"http://localhost:{cdn.port}/v.mp4?token=s3cr3t"
    body = completed("job-kill", {"videoUrl": signed_url})
    assert first.post_webhook(body).status_code == 202
    # Two megabytes are in a temporary file when the process dies.
    wait_until(lambda: any(root.rglob("*.part")) and cdn.hits["/v.mp4"] == 1, timeout=30)
    first.kill()
    first.process.wait(10)
    assert not (root / "job-kill" / "video-1.mp4").exists()
    assert [p.suffix for p in root.rglob("*") if p.is_file()] == [".part"]

    cdn.route("/v.mp4", Route(source))
    second = Server(env, tmp_path)
    try:
        second.wait_ready()
        engine = create_db_engine(f"sqlite:///{tmp_path / 'framehook.db'}")
        try:
            wait_until(
                lambda: (
                    [r.status for r in rows(engine, "SELECT status FROM tasks")] == ["succeeded"]
                ),
                timeout=30,
            )
            (asset,) = rows(engine, "SELECT * FROM assets")
            (task,) = rows(engine, "SELECT attempts FROM tasks")
        finally:
            engine.dispose()
    finally:
        second.stop()
    assert task.attempts == 2  # the killed attempt, then the one that stored it
    assert stored_files(root) == {"job-kill/video-1.mp4": source}
    assert asset.sha256 == hashlib.sha256(source).hexdigest()
    assert cdn.hits["/v.mp4"] == 2
    # A signed URL's query string is a credential: in no log line of either process.
    logs = "".join(p.read_text() for p in tmp_path.glob("serve-*.log"))
    assert "asset stored" in logs
    assert "s3cr3t" not in logs
