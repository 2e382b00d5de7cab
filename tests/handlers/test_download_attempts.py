"""What a capture task's attempts record, through the receiver and its worker: a failure a
retry cannot change is dead after one attempt, a transient one is retried until the budget is
spent; either way the job shows the file as expected and not stored, and the task's error says
which file and why."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest
from sqlalchemy import Engine
from starlette.testclient import TestClient

from tests.support.cdn import FakeCdn, Route
from tests.support.database import rows
from tests.support.media import NOT_MEDIA, media_bytes
from tests.support.mounts import fill, read_only
from tests.support.waiting import wait_until
from tests.support.webhooks import signed_headers, webhook_body

URL = "/webhooks/apiframe"
TOKEN = "attempts-test-token-0123456789abcdef"
ATTEMPTS = 3
SETTINGS = {
    "asset_hosts": ["localhost"],
    "asset_allow_http": True,
    "asset_allow_networks": ["127.0.0.0/8", "::1/128"],
    "admin_token": TOKEN,
    "run_worker": True,
    "retry_base_seconds": 0.01,
    "retry_max_seconds": 0.02,
    "retry_max_attempts": ATTEMPTS,
}


@pytest.fixture
def cdn() -> Iterator[FakeCdn]:
    yield from FakeCdn().serving()


def capture_attempts(client: TestClient, db: Engine, url: str) -> list[tuple[str, str]]:
    """Post a completed webhook naming ``url``; once its download task has ended, return
    each attempt's outcome and error."""
    body = orjson.dumps(webhook_body("completed", jobId="job-a", result={"images": [url]}))
    assert client.post(URL, content=body, headers=signed_headers(body)).status_code == 202
    wait_until(
        lambda: (
            [r.status for r in rows(db, "SELECT status FROM tasks")] in (["dead"], ["succeeded"])
        ),
        timeout=30,
    )
    return [(a.outcome, a.error) for a in rows(db, "SELECT * FROM task_attempts ORDER BY id")]


def assert_visible(client: TestClient, error: str) -> None:
    """The job's capture state shows the lost file, and its task the last error."""
    job = client.get("/api/jobs/job-a", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert job["files"] == {"expected": 1, "stored": 0}
    (task,) = job["tasks"]
    assert (task["status"], task["lastError"]) == ("dead", error)


@pytest.mark.parametrize(
    ("route", "words"),
    [
        (Route(NOT_MEDIA["html"], content_type="image/png"), "got text/html"),
        (Route(NOT_MEDIA["html"], content_type="text/html"), "got text/html"),
        (Route(media_bytes("png", 5_000), content_type="image/png", gzip=True), "gzip"),
    ],
    ids=["html-as-png", "html", "gzip"],
)
def test_wrong_content_is_dead_after_one_attempt(
    make_client: Callable[..., TestClient],
    db: Engine,
    cdn: FakeCdn,
    tmp_path: Path,
    route: Route,
    words: str,
) -> None:
    """An error page served as the image, or a gzip-encoded body: one attempt, dead, its
    error naming the file and what came instead; the CDN asked once."""
    client = make_client(storage_url=str(tmp_path / "assets"), **SETTINGS)
    cdn.route("/x.png", route)
    ((outcome, error),) = capture_attempts(client, db, f"http://localhost:{cdn.port}/x.png")
    assert outcome == "dead"
    assert error.startswith("permanent failure: 1 of 1 files not stored: image 1 (http://local")
    assert "not a valid file" in error
    assert words in error
    assert cdn.hits["/x.png"] == 1
    assert_visible(client, error)


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://[::1/x.png", "invalid URL"),
        ("http://xn--zz.localhost/x.png", "not a valid internationalised name"),
        ("http://localhost:99999/x.png", "port 99999 is not a TCP port"),
    ],
    ids=["unparsable", "bad-idna", "port"],
)
def test_a_url_that_cannot_be_fetched_is_dead_after_one_attempt(
    make_client: Callable[..., TestClient], db: Engine, tmp_path: Path, url: str, words: str
) -> None:
    """A URL httpx refuses, or parses but could never fetch: one attempt, dead, saying why."""
    client = make_client(storage_url=str(tmp_path / "assets"), **SETTINGS)
    ((outcome, error),) = capture_attempts(client, db, url)
    assert outcome == "dead"
    assert error.startswith("permanent failure: ")
    assert words in error
    assert_visible(client, error)


@pytest.mark.parametrize(
    ("route", "words"),
    [
        (Route(b"busy", status=503), "HTTP 503"),
        (Route(media_bytes("png", 200_000), cut_after=50_000), "RemoteProtocolError"),
    ],
    ids=["5xx", "connection-cut"],
)
def test_a_transient_failure_is_retried_until_the_budget_is_spent(
    make_client: Callable[..., TestClient],
    db: Engine,
    cdn: FakeCdn,
    tmp_path: Path,
    route: Route,
    words: str,
) -> None:
    """A 5xx or a connection cut mid-body: retried, each attempt asking the CDN again, dead
    only after the last allowed attempt."""
    client = make_client(storage_url=str(tmp_path / "assets"), **SETTINGS)
    cdn.route("/x.png", route)
    attempts = capture_attempts(client, db, f"http://localhost:{cdn.port}/x.png")
    assert [outcome for outcome, _ in attempts] == ["retry"] * (ATTEMPTS - 1) + ["dead"]
    assert all(words in error for _, error in attempts)
    assert attempts[-1][1].endswith(f"(attempt {ATTEMPTS}, giving up)")
    assert cdn.hits["/x.png"] == ATTEMPTS
    assert_visible(client, attempts[-1][1])


def test_a_full_disk_is_retried(
    make_client: Callable[..., TestClient], db: Engine, cdn: FakeCdn, disk: Path
) -> None:
    """ENOSPC: retried (space may be freed meanwhile), each error naming ENOSPC and what to
    change."""
    client = make_client(storage_url=str(disk), **SETTINGS)
    cdn.route("/x.png", Route(media_bytes("png", 20_000)))
    fill(disk)
    attempts = capture_attempts(client, db, f"http://localhost:{cdn.port}/x.png")
    assert [outcome for outcome, _ in attempts] == ["retry"] * (ATTEMPTS - 1) + ["dead"]
    for _, error in attempts:
        assert "storage failed: local storage " in error
        assert "no space left on the device (ENOSPC): free space there" in error
    assert_visible(client, attempts[-1][1])


def test_a_read_only_store_is_dead_after_one_attempt(
    make_client: Callable[..., TestClient], db: Engine, cdn: FakeCdn, disk: Path
) -> None:
    """EROFS: a configuration problem a retry cannot fix: one attempt, dead, the error naming
    EROFS and what to change."""
    client = make_client(storage_url=str(disk), **SETTINGS)
    cdn.route("/x.png", Route(media_bytes("png", 2_000)))
    read_only(disk)
    ((outcome, error),) = capture_attempts(client, db, f"http://localhost:{cdn.port}/x.png")
    assert outcome == "dead"
    assert "storage refused: local storage " in error
    assert "the filesystem is read-only (EROFS): mount it read-write" in error
    assert_visible(client, error)
