"""State for the admin API and `framehook jobs` tests, built the way production builds it:
signed webhooks into a running app, handlers run by its embedded worker."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
from starlette.testclient import TestClient

from tests.support.cdn import FakeCdn, Route
from tests.support.media import media_bytes
from tests.support.waiting import wait_until
from tests.support.webhooks import signed_headers

TOKEN = "admin-test-token-0123456789abcdef"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
WEBHOOK = "/webhooks/apiframe"
LOOPBACK = {
    "asset_hosts": ["localhost"],
    "asset_allow_http": True,
    "asset_allow_networks": ["127.0.0.0/8", "::1/128"],
}
QUICK_WORKER = {
    "run_worker": True,
    "poll_seconds": 30.0,  # long: anything quick came from a wake-up, not a poll
    "retry_base_seconds": 0.05,
    "retry_max_seconds": 0.2,
    "retry_max_attempts": 3,
    "grace_seconds": 2.0,
}


def post(client: TestClient, payload: dict[str, Any] | bytes) -> httpx.Response:
    """POST a signed webhook."""
    body = payload if isinstance(payload, bytes) else orjson.dumps(payload)
    return client.post(WEBHOOK, content=body, headers=signed_headers(body))


def progress(job_id: str, value: int, model: str = "midjourney") -> dict[str, Any]:
    """A progress webhook body."""
    return {
        "event": "progress",
        "jobId": job_id,
        "status": "PROCESSING",
        "progress": value,
        "model": model,
    }


def completed(job_id: str, result: Any, model: str = "midjourney") -> dict[str, Any]:
    """A completed webhook body."""
    return {
        "event": "completed",
        "jobId": job_id,
        "status": "COMPLETED",
        "progress": 100,
        "result": result,
        "model": model,
        "creditCost": 8,
    }


@dataclass(frozen=True)
class Timeline:
    """A job that lived through everything: what was sent, and what its files were."""

    client: TestClient
    job_id: str
    sent: list[dict[str, Any]]
    files: list[tuple[str, bytes]]


def build_timeline(make_client: Callable[..., TestClient], **settings: Any) -> Timeline:
    """One job: progress 30, the same bytes again (duplicate), completed with two images (the
    second answers 503 once, so the download task fails its first attempt), a late progress
    (stale) and a different completed (conflict). Returns once the files are captured."""
    job_id = "job-timeline"
    with FakeCdn() as cdn:
        files = [(f"/{n}.png", media_bytes("png", 3_000 + n, seed=n)) for n in (1, 2)]
        cdn.route(files[0][0], Route(files[0][1], content_type="image/png"))
        cdn.route(files[1][0], Route(files[1][1], content_type="image/png", fail_first=1))
        urls = [f"http://localhost:{cdn.port}{path}" for path, _ in files]
        client = make_client(
            handlers=["download"],
            admin_token=TOKEN,
            **{**QUICK_WORKER, **LOOPBACK, **settings},
        )
        first = orjson.dumps(progress(job_id, 30))
        sent = [
            progress(job_id, 30),
            progress(job_id, 30),
            completed(job_id, {"images": urls}),
            progress(job_id, 50),
            completed(job_id, {"images": urls[:1]}),
        ]
        answers = [post(client, first), post(client, first)]
        answers += [post(client, body) for body in sent[2:]]
        assert [a.json()["outcome"] for a in answers] == [
            "accepted",
            "duplicate",
            "accepted",
            "stale",
            "conflict",
        ]

        def captured() -> bool:
            task = client.get("/api/tasks", params={"status": "succeeded"}, headers=AUTH).json()
            return len(task["items"]) == 1

        wait_until(captured)
    return Timeline(
        client, job_id, sent, [(url, body) for url, (_, body) in zip(urls, files, strict=True)]
    )


def sha256(data: bytes) -> str:
    """The hex SHA-256 of ``data``."""
    return hashlib.sha256(data).hexdigest()


UNRESOLVABLE = "cdn.framehook-test.invalid"
"""A CDN host no resolver knows (RFC 6761 reserves ``.invalid``): every lookup fails."""


def dead_download(
    make_client: Callable[..., TestClient], job_id: str, files: int = 5, attempts: int = 6
) -> TestClient:
    """A completed job naming ``files`` images on an unresolvable CDN: its download task
    fails every file on each of ``attempts`` attempts (a DNS error each time), then is
    dead. Returns the running app once the task is dead."""
    urls = [f"https://{UNRESOLVABLE}/{job_id}/{n}.png?signature=s{n}" for n in range(1, files + 1)]
    client = make_client(
        handlers=["download"],
        admin_token=TOKEN,
        asset_hosts=[UNRESOLVABLE],
        **{**QUICK_WORKER, "retry_max_attempts": attempts},
    )
    post(client, completed(job_id, {"images": urls}))

    def dead() -> bool:
        found = client.get("/api/tasks", params={"jobId": job_id}, headers=AUTH).json()
        return [t["status"] for t in found["items"]] == ["dead"]

    wait_until(dead, timeout=60)
    return client
