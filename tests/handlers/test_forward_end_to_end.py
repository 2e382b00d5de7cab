"""Forwarding end to end with real processes: signed Apiframe webhooks into ``framehook serve``
(download + forward), files from a loopback CDN, and a loopback customer app that verifies
every delivery with ``standardwebhooks`` and downloads each file's link as it arrives."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from tests.handlers.test_forward import SECRET, App, Delivery, Reply
from tests.support import servers
from tests.support.cdn import FakeCdn, Route
from tests.support.database import scratch_postgres
from tests.support.media import media_bytes
from tests.support.processes import Server, framehook_env, free_port
from tests.support.waiting import wait_until
from tests.support.webhooks import webhook_body

pytestmark = pytest.mark.slow

TOKEN = "forward-admin-token-0123456789abcdef"
BUCKET = "framehook-forward"


@dataclass
class Setup:
    """A running receiver with download and forward, its CDN and the app it forwards to."""

    server: Server
    cdn: FakeCdn
    app: App

    def api(self, method: str, path: str) -> Any:
        response = httpx.request(
            method, f"{self.server.url}{path}", headers={"Authorization": f"Bearer {TOKEN}"}
        )
        assert response.status_code < 300, response.text
        return response.json()

    def tasks(self, job_id: str) -> dict[str, dict[str, Any]]:
        """The job's tasks by handler."""
        return {t["handler"]: t for t in self.api("GET", f"/api/jobs/{job_id}")["tasks"]}

    def settled(self, job_id: str, **statuses: str) -> dict[str, dict[str, Any]]:
        """The job's tasks once each named handler's task has the status given."""
        found: dict[str, dict[str, Any]] = {}

        def reached() -> bool:
            found.update(self.tasks(job_id))
            return all(found.get(h, {}).get("status") == s for h, s in statuses.items())

        wait_until(reached, timeout=60)
        return found

    def complete(self, job_id: str, files: dict[str, bytes], *, route: bool = True) -> bytes:
        """Serve ``files`` (path: bytes) on the CDN (unless routed already), and post the job's
        signed completed webhook naming them as images (with a signed URL's query string);
        return the body."""
        for path, data in files.items():
            if route:
                self.cdn.route(path, Route(data, content_type="image/png"))
        urls = [f"http://localhost:{self.cdn.port}{path}?sig=s3cr3t" for path in files]
        body = orjson.dumps(
            webhook_body("completed", jobId=job_id, model="flux-pro", result={"images": urls})
        )
        assert self.server.post_webhook(body).status_code == 202
        return body


def _env(tmp: Path, app: App, port: int, **extra: str) -> dict[str, str]:
    """The environment of a receiver on ``port`` forwarding to ``app``; ``extra`` on top."""
    settings = {
        "FRAMEHOOK_HANDLERS": "download,forward",
        "FRAMEHOOK_FORWARD_URL": app.url,
        "FRAMEHOOK_FORWARD_SECRET": SECRET,
        "FRAMEHOOK_ADMIN_TOKEN": TOKEN,
        "FRAMEHOOK_PUBLIC_URL": f"http://127.0.0.1:{port}",
        "FRAMEHOOK_DATABASE_URL": f"sqlite:///{tmp / 'framehook.db'}",
        "FRAMEHOOK_STORAGE_URL": str(tmp / "assets"),
        "FRAMEHOOK_ASSET_HOSTS": "localhost",
        "FRAMEHOOK_ASSET_ALLOW_HTTP": "true",
        "FRAMEHOOK_ASSET_ALLOW_NETWORKS": "127.0.0.0/8,::1/128",
        "FRAMEHOOK_POLL_SECONDS": "0.2",
        "FRAMEHOOK_RETRY_BASE_SECONDS": "0.2",
        "FRAMEHOOK_RETRY_MAX_ATTEMPTS": "3",
    }
    return framehook_env(**{**settings, **extra})


def _serve(env: dict[str, str], cwd: Path, port: int, *args: str) -> Server:
    """``framehook serve`` on ``port``, the one FRAMEHOOK_PUBLIC_URL names (the last --port
    given wins over the one ``Server`` picks)."""
    server = Server(env, cwd, [*args, "--port", str(port)])
    server.port, server.url = port, f"http://127.0.0.1:{port}"
    server.wait_ready()
    return server


@pytest.fixture(scope="module")
def local(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Setup]:
    """serve (SQLite, local storage, embedded worker) forwarding to a loopback app."""
    tmp = tmp_path_factory.mktemp("forward-local")
    with FakeCdn() as cdn, App(fetch_links=True) as app:
        port = free_port()
        server = _serve(_env(tmp, app, port), tmp, port)
        try:
            yield Setup(server, cdn, app)
        finally:
            server.stop()


def _images(job_id: str, count: int) -> dict[str, bytes]:
    return {
        f"/{job_id}/{n}.png": media_bytes("png", 30_000 + n, seed=n) for n in range(1, count + 1)
    }


def _sums(files: dict[str, bytes]) -> dict[str, str]:
    """The SHA-256 of each file, by its position in the result."""
    return {str(n): hashlib.sha256(data).hexdigest() for n, data in enumerate(files.values(), 1)}


def _check_served(delivery: Delivery, sums: dict[str, str]) -> None:
    """Every file was listed with its link, and each link served the captured bytes while the
    app held the request: the files were stored before the event was sent."""
    data = delivery.data
    assert data["missing"] == []
    assert data["files"] == {"expected": len(sums), "stored": len(sums)}
    assert [a["position"] for a in data["assets"]] == [int(p) for p in sums]
    for asset in data["assets"]:
        assert asset["sha256"] == sums[str(asset["position"])]
        assert delivery.served[asset["position"]] == (200, asset["sha256"])


def test_a_completed_job_reaches_the_app_once_after_its_files_are_stored(local: Setup) -> None:
    """One verified job.completed, sent after download stored the files; each `url` (a signed
    content link) serves the captured bytes; a duplicate webhook forwards nothing more; a
    replay forwards again with the same webhook-id."""
    job_id = str(uuid.uuid4())
    files = _images(job_id, 2)
    body = local.complete(job_id, files)
    sums = _sums(files)
    tasks = local.settled(job_id, download="succeeded", forward="succeeded")
    [delivery] = local.app.of(job_id)
    assert delivery.event["type"] == "job.completed"
    assert delivery.msg_id.startswith(f"msg_framehook_{tasks['forward']['id']}_")
    assert tasks["forward"]["waitsFor"] == ["download"]
    assert tasks["forward"]["attempts"] == 1
    _check_served(delivery, sums)
    url = delivery.data["assets"][0]["url"]
    assert url.startswith(f"{local.server.url}/api/assets/")
    assert "signature=" in url

    assert local.server.post_webhook(body).status_code == 200  # a duplicate
    time.sleep(1.5)  # several polls: a task, had one been made, would have run
    assert len(local.app.of(job_id)) == 1

    local.api("POST", f"/api/jobs/{job_id}/replay?handler=forward")
    wait_until(lambda: len(local.app.of(job_id)) == 2, timeout=30)
    first, again = local.app.of(job_id)
    assert again.msg_id == first.msg_id
    _check_served(again, sums)
    logs = local.server.log.read_text()
    assert "event forwarded" in logs
    assert "s3cr3t" not in logs


def test_an_app_failing_first_gets_the_same_event_again(local: Setup) -> None:
    """500 with Retry-After: 1, then 204: two deliveries a second or more apart, one
    webhook-id; the task succeeds on its second attempt."""
    job_id = str(uuid.uuid4())
    local.app.plan(job_id, Reply(500, {"Retry-After": "1"}, b"deploying"), Reply(204))
    local.complete(job_id, _images(job_id, 1))
    tasks = local.settled(job_id, forward="succeeded")
    first, second = local.app.of(job_id)
    assert first.msg_id == second.msg_id
    assert second.at - first.at >= 1.0
    assert second.timestamp >= first.timestamp  # signed afresh
    assert tasks["forward"]["attempts"] == 2


def test_a_410_stops_forwarding_the_event(local: Setup) -> None:
    """410 Gone: one delivery, the task dead at once, naming the answer."""
    job_id = str(uuid.uuid4())
    local.app.plan(job_id, Reply(410), Reply(204))
    local.complete(job_id, _images(job_id, 1))
    tasks = local.settled(job_id, forward="dead")
    assert tasks["forward"]["attempts"] == 1
    assert "410 Gone" in tasks["forward"]["lastError"]
    time.sleep(1)
    assert len(local.app.of(job_id)) == 1


def test_a_dead_download_still_forwards_saying_what_is_missing(local: Setup) -> None:
    """One file is an HTML error page (the download fails it for good): the download task is
    dead, and the app still gets job.completed, with the stored file and the missing one."""
    job_id = str(uuid.uuid4())
    files = _images(job_id, 2)
    local.cdn.route(f"/{job_id}/2.png", Route(b"<html>gone</html>", content_type="text/html"))
    urls = [f"http://localhost:{local.cdn.port}{path}" for path in files]
    local.cdn.route(f"/{job_id}/1.png", Route(files[f"/{job_id}/1.png"]))
    body = orjson.dumps(webhook_body("completed", jobId=job_id, result={"images": urls}))
    assert local.server.post_webhook(body).status_code == 202
    local.settled(job_id, download="dead", forward="succeeded")
    [delivery] = local.app.of(job_id)
    data = delivery.data
    assert data["files"] == {"expected": 2, "stored": 1}
    assert [a["position"] for a in data["assets"]] == [1]
    assert delivery.served[1][0] == 200
    [missing] = data["missing"]
    assert (missing["position"], missing["kind"], missing["sourceUrl"]) == (2, "image", urls[1])
    assert "not stored" in missing["reason"]


def test_a_failed_job_is_forwarded_with_its_error(local: Setup) -> None:
    """job.failed: the job's error, no files."""
    job_id = str(uuid.uuid4())
    body = orjson.dumps(webhook_body("failed", jobId=job_id, error="content policy"))
    assert local.server.post_webhook(body).status_code == 202
    local.settled(job_id, forward="succeeded")
    [delivery] = local.app.of(job_id)
    assert delivery.event["type"] == "job.failed"
    assert (delivery.data["status"], delivery.data["error"]) == ("FAILED", "content policy")
    assert delivery.data["assets"] == []


def test_files_in_s3_are_linked_by_presigned_urls(tmp_path: Path) -> None:
    """With an S3 store (moto), each `url` is a presigned URL that serves the captured bytes."""
    with (
        servers.moto_server(tmp_path) as endpoint,
        FakeCdn() as cdn,
        App(fetch_links=True) as app,
    ):
        servers.create_s3_bucket(endpoint, BUCKET)
        port = free_port()
        env = _env(
            tmp_path,
            app,
            port,
            FRAMEHOOK_STORAGE_URL=f"s3://{BUCKET}/captured",
            AWS_ACCESS_KEY_ID=servers.S3_ACCESS_KEY,
            AWS_SECRET_ACCESS_KEY=servers.S3_SECRET_KEY,
            AWS_REGION="us-east-1",
            AWS_ENDPOINT_URL=endpoint,
            AWS_ALLOW_HTTP="true",
        )
        server = _serve(env, tmp_path, port)
        try:
            setup = Setup(server, cdn, app)
            job_id = str(uuid.uuid4())
            files = _images(job_id, 2)
            setup.complete(job_id, files)
            setup.settled(job_id, download="succeeded", forward="succeeded")
        finally:
            server.stop()
        [delivery] = app.of(job_id)
        _check_served(delivery, _sums(files))
        for asset in delivery.data["assets"]:
            assert asset["url"].startswith(f"{endpoint}/{BUCKET}/captured/")
            assert "X-Amz-Signature=" in asset["url"]
            assert asset["storageUri"].startswith(f"s3://{BUCKET}/captured/")


@pytest.mark.postgres
def test_with_several_workers_on_postgresql_every_forward_follows_its_download(
    tmp_path: Path, postgres_server_url: str
) -> None:
    """serve --no-worker and three workers on PostgreSQL, slow files: every job's event
    reaches the app once, with all its files stored and served, never before them."""
    with (
        scratch_postgres(postgres_server_url, "framehook_forward") as (url, _),
        FakeCdn() as cdn,
        App(fetch_links=True) as app,
    ):
        port = free_port()
        env = _env(
            tmp_path,
            app,
            port,
            FRAMEHOOK_DATABASE_URL=url,
            FRAMEHOOK_WORKER_CONCURRENCY="4",
            FRAMEHOOK_RETRY_MAX_ATTEMPTS="8",
        )
        server = _serve(env, tmp_path, port, "--no-worker")
        logs = [(tmp_path / f"worker-{n}.log").open("wb") for n in range(3)]
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "receiver", "worker"],
                env=env,
                cwd=tmp_path,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            for log in logs
        ]
        try:
            setup = Setup(server, cdn, app)
            jobs: dict[str, dict[str, str]] = {}
            for _ in range(6):
                job_id = str(uuid.uuid4())
                files = _images(job_id, 2)
                for path, data in files.items():
                    # Half a second mid-file: a forward that did not wait would see no file.
                    cdn.route(path, Route(data, stall_after=1000, stall_seconds=0.5))
                setup.complete(job_id, files, route=False)
                jobs[job_id] = _sums(files)
            for job_id in jobs:
                setup.settled(job_id, download="succeeded", forward="succeeded")
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(30)
            for log in logs:
                log.close()
            server.stop()
        for job_id, sums in jobs.items():
            [delivery] = app.of(job_id)
            _check_served(delivery, sums)
        ran = "".join(p.read_text() for p in tmp_path.glob("worker-*.log"))
        assert ran.count("event forwarded") == 6
