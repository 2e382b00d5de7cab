"""Benchmark: what forwarding adds, from a completed webhook's 202 to the app's 2xx.

Two deployments in the same run, each ``framehook serve`` with its embedded worker (SQLite,
local storage), fed the same jobs alternately, one at a time: a signed ``completed`` webhook
naming one small PNG on a loopback CDN.

* baseline, ``FRAMEHOOK_HANDLERS=download``: the 202, then the file appearing in storage;
* forward, ``FRAMEHOOK_HANDLERS=download,forward``: the 202, then the app's 2xx, the app being
  a loopback server in this process that verifies every delivery with ``standardwebhooks``
  (and answers 204 once it has). The forward runs after the download's task has ended (its
  ``after``), with a signed content link to the stored file (``FRAMEHOOK_PUBLIC_URL``).

Prints p50/p99 of each, the ratios forward/baseline and the difference of the medians: the
latency forwarding adds after the file is stored (the download task's end, the forward task's
wake-up and claim, the links, the POST).

Exit status: 0 when the run is sound (every job's file stored and every event verified);
1 when broken; 2 for unusable arguments.

    python bench/forward.py [--jobs 100] [--warmup 5] [--json PATH]
"""

# Imports follow the sys.path entry below, which they need.
# ruff: noqa: E402

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as ``python bench/forward.py``: make the ``bench`` and ``tests`` packages importable.
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))

import argparse
import base64
import http.server
import json
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from standardwebhooks import Webhook

from bench._harness import (
    ROUTE,
    Column,
    Server,
    ServerFailed,
    bench_api_key,
    finish,
    framehook_env,
    framehook_serve,
    migrate,
    noting_failures,
    percentile,
    print_table,
)
from receiver import sign
from tests.support.cdn import FakeCdn, Route
from tests.support.media import media_bytes

SECRET = "whsec_" + base64.b64encode(b"framehook bench forward secret!!").decode()
ADMIN_TOKEN = "bench-forward-admin-token-0123456789"  # noqa: S105 (this run's own servers)
# A job's file appearing in storage is looked for this often (seconds).
POLL_S = 0.001
JOB_TIMEOUT_S = 30.0


class App:
    """The customer's app: verifies each POST, notes when it answered (``perf_counter``)."""

    def __init__(self) -> None:
        self.webhook = Webhook(SECRET)
        self.answered: dict[str, float] = {}
        self.ids: dict[str, str] = {}
        self.refused = 0
        self.unlinked = 0
        """Events that did not list their file as stored with a link: not what is measured."""
        self.arrived = threading.Condition()
        app = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("content-length", "0")))
                headers = {k.lower(): v for k, v in self.headers.items()}
                try:
                    event = app.webhook.verify(body, headers)
                except Exception:
                    with app.arrived:
                        app.refused += 1
                    self.send_response(401)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                self.send_response(204)
                self.end_headers()
                at = time.perf_counter()
                data = event["data"]
                linked = not data["missing"] and all(a["url"] for a in data["assets"])
                with app.arrived:
                    job_id = str(data["id"])
                    app.unlinked += not linked
                    app.answered.setdefault(job_id, at)
                    app.ids[job_id] = headers["webhook-id"]
                    app.arrived.notify_all()

        self._server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hooks"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def wait(self, job_id: str, timeout: float) -> float:
        """When the app answered 2xx for ``job_id``."""
        with self.arrived:
            if not self.arrived.wait_for(lambda: job_id in self.answered, timeout):
                raise ServerFailed(f"no forwarded event for {job_id} within {timeout:.0f} s")
            return self.answered[job_id]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@dataclass
class Setup:
    """One deployment and the latencies measured on it (seconds)."""

    name: str
    server: Server
    assets: Path
    forwards: bool
    latencies: list[float] = field(default_factory=list)


@contextmanager
def deployment(name: str, workdir: Path, api_key: str, handlers: str, app: App) -> Iterator[Setup]:
    home = workdir / name
    home.mkdir()
    server = framehook_serve(name, home, {})
    # Its port is chosen above, and its public URL (for the content links) names it.
    server.env = framehook_env(
        api_key,
        f"sqlite:///{home / 'framehook.db'}",
        FRAMEHOOK_HANDLERS=handlers,
        FRAMEHOOK_STORAGE_URL=str(home / "assets"),
        FRAMEHOOK_ASSET_HOSTS="localhost",
        FRAMEHOOK_ASSET_ALLOW_HTTP="true",
        FRAMEHOOK_ASSET_ALLOW_NETWORKS="127.0.0.0/8,::1/128",
        FRAMEHOOK_FORWARD_URL=app.url,
        FRAMEHOOK_FORWARD_SECRET=SECRET,
        FRAMEHOOK_ADMIN_TOKEN=ADMIN_TOKEN,
        FRAMEHOOK_PUBLIC_URL=server.base_url,
        FRAMEHOOK_RECONCILE="false",
    )
    migrate(server.env, home)
    server.start()
    try:
        server.wait_ready([("/readyz", 200)])
        yield Setup(name, server, home / "assets", "forward" in handlers)
    finally:
        server.stop()


def one_job(setup: Setup, api_key: str, cdn: FakeCdn, app: App) -> float:
    """Post one completed job; seconds from its 202 to the file stored (baseline) or to the
    app's 2xx (forward)."""
    job_id = str(uuid.uuid4())
    image = f"http://localhost:{cdn.port}/image.png"
    body = json.dumps(
        {
            "event": "completed",
            "jobId": job_id,
            "status": "COMPLETED",
            "model": "flux-pro",
            "result": {"images": [image]},
        },
        separators=(",", ":"),
    ).encode()
    headers = {"Content-Type": "application/json", "X-Webhook-Signature": sign(body, api_key)}
    response = httpx.post(f"{setup.server.base_url}{ROUTE}", content=body, headers=headers)
    acknowledged = time.perf_counter()
    if response.status_code != 202:
        raise ServerFailed(f"{setup.name}: the webhook got {response.status_code}")
    if setup.forwards:
        return app.wait(job_id, JOB_TIMEOUT_S) - acknowledged
    stored = setup.assets / job_id / "image-1.png"
    deadline = acknowledged + JOB_TIMEOUT_S
    while not stored.exists():
        if time.perf_counter() > deadline:
            setup.server.check_alive()
            raise ServerFailed(f"{setup.name}: {job_id}'s file not stored in {JOB_TIMEOUT_S} s")
        time.sleep(POLL_S)
    return time.perf_counter() - acknowledged


COLUMNS = (
    Column("setup", 28, left=True),
    Column("jobs", 5),
    Column("p50 ms", 8, ".1f"),
    Column("p99 ms", 8, ".1f"),
    Column("max ms", 8, ".1f"),
)


def summary(setup: Setup) -> dict[str, float]:
    ordered = sorted(setup.latencies)
    return {
        "jobs": len(ordered),
        "p50_ms": percentile(ordered, 50) * 1000,
        "p99_ms": percentile(ordered, 99) * 1000,
        "max_ms": (ordered[-1] if ordered else 0.0) * 1000,
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=100, help="measured jobs per setup")
    parser.add_argument("--warmup", type=int, default=5, help="unmeasured jobs per setup first")
    parser.add_argument("--json", type=Path, default=None, help="write the figures here")
    args = parser.parse_args(argv)
    if args.jobs < 1 or args.warmup < 0:
        parser.error("--jobs must be at least 1 and --warmup at least 0")

    api_key = bench_api_key()
    broken: list[str] = []
    scratch = Path(tempfile.mkdtemp(prefix="framehook-bench-forward-"))
    setups: list[Setup] = []
    app = App()
    with FakeCdn() as cdn, noting_failures(broken):
        cdn.route("/image.png", Route(media_bytes("png", 20_000), content_type="image/png"))
        with (
            deployment("baseline", scratch, api_key, "download", app) as baseline,
            deployment("forward", scratch, api_key, "download,forward", app) as forward,
        ):
            setups = [baseline, forward]
            for round_ in range(args.warmup + args.jobs):
                # Alternating, so whatever else loads the machine loads both alike.
                for setup in setups:
                    seconds = one_job(setup, api_key, cdn, app)
                    if round_ >= args.warmup:
                        setup.latencies.append(seconds)
    app.close()
    if app.refused:
        broken.append(f"the app refused {app.refused} deliveries (signature)")
    if app.unlinked:
        broken.append(f"{app.unlinked} events did not list their file as stored, with a link")

    figures = {setup.name: summary(setup) for setup in setups}
    report: dict[str, Any] = {
        "jobs": args.jobs,
        "warmup": args.warmup,
        "broken": broken,
        "setups": figures,
    }
    titles = {"baseline": "download only: 202 -> stored", "forward": "forward: 202 -> app 2xx"}
    print_table([(titles[name], *f.values()) for name, f in figures.items()], COLUMNS)
    if len(setups) == 2 and all(s.latencies for s in setups):
        base, fwd = figures["baseline"], figures["forward"]
        ratios = {
            "p50": fwd["p50_ms"] / base["p50_ms"],
            "p99": fwd["p99_ms"] / base["p99_ms"],
            "added_p50_ms": fwd["p50_ms"] - base["p50_ms"],
        }
        report["ratios"] = ratios
        print(f"ratio forward/download p50 = {ratios['p50']:.2f}")
        print(f"ratio forward/download p99 = {ratios['p99']:.2f}")
        print(f"added by forwarding, p50 = {ratios['added_p50_ms']:.1f} ms")
    return finish(broken, report, args.json, scratch)


if __name__ == "__main__":
    raise SystemExit(main())
