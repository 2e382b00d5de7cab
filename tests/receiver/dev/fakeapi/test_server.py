"""The fake as a real server, and its lifespan: started, stopped, background work cancelled."""

from __future__ import annotations

import dataclasses
import threading
import time

import httpx
import puremagic
import pytest
import uvicorn

from receiver.dev.fakeapi import create_fake_apiframe, fake_of
from tests.receiver.dev.fakeapi.conftest import FAST, HOOK_URL, Sink, create_job, running_fake
from tests.support.processes import free_port
from tests.support.webhooks import API_KEY


def test_the_fake_serves_over_real_http_from_a_uvicorn_thread() -> None:
    """Under uvicorn in a thread: jobs run, webhooks go out, result URLs point at the server
    and download; stopping the server ends its lifespan."""
    sink = Sink()
    app = create_fake_apiframe(API_KEY, behaviour=FAST, webhook_transport=httpx.MockTransport(sink))
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None, lifespan="on")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 10
        while not server.started:
            assert time.monotonic() < deadline, "uvicorn did not start"
            time.sleep(0.01)
        base = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=base, headers={"X-API-Key": API_KEY}) as client:
            body = {"model": "gpt-image-2", "prompt": "a fox", "webhookUrl": HOOK_URL}
            job_id = client.post("/v2/images/generate", json=body).json()["jobId"]
            while True:
                record = client.get("/_fake/deliveries").json()
                if record["deliveries"] and record["pending"] == 0:
                    break
                assert time.monotonic() < deadline, record
                time.sleep(0.01)
            job = client.get(f"/v2/jobs/{job_id}").json()
            [url] = job["result"]["images"]
            assert url.startswith(f"{base}/cdn/images/{job_id}")
            image = client.get(url)
            assert puremagic.from_string(image.content, mime=True) == "image/webp"
        assert [r.body["jobId"] for r in sink.received] == [job_id]
    finally:
        server.should_exit = True
        thread.join(10)
    assert not thread.is_alive()


@pytest.mark.anyio
async def test_base_url_sets_where_result_urls_point() -> None:
    """With base_url (a tunnel, a proxy), result URLs point there, under /cdn."""
    sink = Sink()
    base = "https://fake.example.net/apiframe"
    async with running_fake(sink=sink, base_url=base + "/") as (client, fake):
        await create_job(client)
        await fake.settle()
    assert sink.received[0].body["result"]["gridUrl"].startswith(f"{base}/cdn/images/")


@pytest.mark.anyio
async def test_shutdown_cancels_running_jobs_and_webhooks() -> None:
    """Leaving the lifespan with jobs mid-way cancels them cleanly: nothing left, no error."""
    async with running_fake(dataclasses.replace(FAST, step_seconds=30)) as (client, fake):
        await create_job(client)
        await create_job(client)
        assert fake.pending == 2
    assert fake.pending == 0
    assert fake.errors == []
    assert [job.status for job in fake.jobs] == ["QUEUED", "QUEUED"]


@pytest.mark.anyio
async def test_a_job_before_the_lifespan_started_is_a_clear_error() -> None:
    """Without its lifespan (plain ASGITransport) the fake refuses jobs, saying why."""
    app = create_fake_apiframe(API_KEY)
    transport = httpx.ASGITransport(app)
    async with httpx.AsyncClient(transport=transport, base_url="http://fake.test") as client:
        with pytest.raises(RuntimeError, match="not started"):
            await client.post(
                "/v2/images/generate",
                json={"model": "midjourney", "prompt": "p"},
                headers={"X-API-Key": API_KEY},
            )
    assert fake_of(app).pending == 0


def test_an_empty_api_key_is_refused() -> None:
    """create_fake_apiframe("") is a ValueError: a fake that signs with nothing is a mistake."""
    with pytest.raises(ValueError, match="API key"):
        create_fake_apiframe("  ")
