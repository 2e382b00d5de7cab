"""``framehook worker`` serves its own /metrics: handler runs and captured bytes are counted
where the handlers run, not in the receivers."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import httpx
import orjson
import pytest
from prometheus_client.parser import text_string_to_metric_families

from receiver.dev.fakeapi.media import media_file
from tests.support.cdn import FakeCdn, Route
from tests.support.processes import Server, framehook_env, free_port
from tests.support.waiting import wait_until
from tests.support.webhooks import webhook_body

pytestmark = pytest.mark.slow


def samples(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    text = httpx.get(url, timeout=5).text
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def test_a_standalone_worker_exports_handler_and_download_metrics(tmp_path: Path) -> None:
    image = media_file("a.png", "worker-metrics")
    with FakeCdn() as cdn:
        cdn.route("/a.png", Route(image, content_type="image/png"))
        port = free_port()
        env = framehook_env(
            FRAMEHOOK_DATABASE_URL=f"sqlite:///{tmp_path / 'framehook.db'}",
            FRAMEHOOK_STORAGE_URL=str(tmp_path / "assets"),
            FRAMEHOOK_HANDLERS="download",
            FRAMEHOOK_ASSET_HOSTS="localhost",
            FRAMEHOOK_ASSET_ALLOW_HTTP="true",
            FRAMEHOOK_ASSET_ALLOW_NETWORKS="127.0.0.0/8",
            FRAMEHOOK_POLL_SECONDS="0.2",
            FRAMEHOOK_WORKER_METRICS_PORT=str(port),
        )
        receiver = Server(env, tmp_path, ["--no-worker"])
        receiver.wait_ready()
        log = (tmp_path / "worker.log").open("wb")
        worker = subprocess.Popen(
            [sys.executable, "-m", "receiver", "worker"],
            env=env,
            cwd=tmp_path,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        try:
            metrics = f"http://127.0.0.1:{port}/metrics"

            def serving() -> bool:
                try:
                    return httpx.get(metrics, timeout=1).status_code == 200
                except httpx.TransportError:
                    return False

            wait_until(serving)
            body = orjson.dumps(
                webhook_body(
                    "completed",
                    jobId="job-metrics",
                    progress=100,
                    model="flux-pro",
                    result={"images": [f"http://localhost:{cdn.port}/a.png"]},
                )
            )
            assert receiver.post_webhook(body).status_code == 202
            runs = (
                "framehook_handler_runs_total",
                (("handler", "download"), ("outcome", "succeeded")),
            )
            wait_until(lambda: samples(metrics).get(runs) == 1.0)
            found = samples(metrics)
            assert found[("framehook_downloaded_bytes_total", ())] == len(image)
            # The receiver did not run the handler, so it counted nothing of it.
            assert samples(f"{receiver.url}/metrics").get(runs, 0.0) == 0.0
        finally:
            worker.terminate()
            assert worker.wait(30) == 0
            log.close()
            receiver.stop()
