"""Benchmark: capturing one large file, framehook's download handler against ``curl -o``.

A 1 GiB video (by default) is served from a loopback HTTP server that uses ``sendfile`` (so
the server is not what is measured). Each round, in the same run and alternating:

* ``curl -sS -o`` fetches it into a file on the same disk as framehook's store: the baseline;
* a real ``framehook serve`` (embedded worker, SQLite, the ``download`` handler) gets a signed
  ``completed`` webhook naming the file and captures it into local storage, and, when the S3
  extra and moto are installed, into a moto S3 server.

framehook runs as a deployment does: ``framehook db upgrade``, then ``serve --no-worker`` and a
``framehook worker``. Its time is the task attempt's start to the asset's record (from its
database); the ratio is curl's time over framehook's (>= 0.6 is the target: within 1/0.6 of
curl). Peak RSS is the worker process's high-water mark (``VmHWM``), interpreter included. For
S3, obstore putting the same file from disk into the same moto server is timed too: moto's own
ingest speed bounds any client.

    python bench/download.py [--size-mib 1024] [--rounds 2] [--skip-s3]
"""

from __future__ import annotations

import sys
from pathlib import Path

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import argparse
import hashlib
import os
import shutil
import socket
import sqlite3
import subprocess
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime

import httpx
import orjson

from bench.ack import Server, ServerFailed, _clean_environment, free_port
from receiver import sign

API_KEY = "bench-download-key"
MIB = 1024 * 1024
MP4_HEADER = b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41"


def make_file(path: Path, size: int) -> str:
    """An mp4-looking file of ``size`` bytes; returns its SHA-256."""
    digest = hashlib.sha256()
    block = os.urandom(MIB)
    with path.open("wb") as out:
        out.write(MP4_HEADER)
        digest.update(MP4_HEADER)
        left = size - len(MP4_HEADER)
        while left > 0:
            part = block[: min(left, len(block))]
            out.write(part)
            digest.update(part)
            left -= len(part)
    return digest.hexdigest()


class SendfileServer:
    """HTTP/1.1 GET of one file with ``socket.sendfile`` (zero-copy), one thread per client."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _serve(self, connection: socket.socket) -> None:
        with connection, suppress(OSError):
            request = b""
            while b"\r\n\r\n" not in request:
                data = connection.recv(65536)
                if not data:
                    return
                request += data
            size = self.path.stat().st_size
            head = (
                f"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: {size}\r\n"
                "Connection: close\r\n\r\n"
            )
            connection.sendall(head.encode())
            with self.path.open("rb") as source:
                connection.sendfile(source)

    def close(self) -> None:
        self.sock.close()


def time_curl(url: str, out: Path) -> float:
    began = time.perf_counter()
    subprocess.run(["curl", "-sS", "-o", str(out), url], check=True)
    elapsed = time.perf_counter() - began
    out.unlink()
    return elapsed


def peak_rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


@dataclass
class Capture:
    target: str
    seconds: float
    peak_rss_mib: float
    idle_rss_mib: float
    sha_ok: bool


def _post_completed(base_url: str, job_id: str, url: str) -> None:
    body = orjson.dumps(
        {
            "event": "completed",
            "jobId": job_id,
            "status": "COMPLETED",
            "progress": 100,
            "model": "kling-2.6",
            "result": {"videoUrl": url},
        }
    )
    headers = {"X-Webhook-Signature": sign(body, API_KEY), "Content-Type": "application/json"}
    response = httpx.post(f"{base_url}/webhooks/apiframe", content=body, headers=headers)
    response.raise_for_status()


def _wait_for_asset(db: Path, job_id: str, server: Server, timeout: float) -> tuple[float, str]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server.check_alive()
        with sqlite3.connect(db) as connection:
            row = connection.execute(
                "SELECT a.stored_at, a.sha256, t.status, t.last_error FROM tasks t "
                "LEFT JOIN assets a ON a.job_id = t.job_id WHERE t.job_id = ?",
                (job_id,),
            ).fetchone()
            started = connection.execute(
                "SELECT MIN(ta.started_at) FROM task_attempts ta JOIN tasks t "
                "ON t.id = ta.task_id WHERE t.job_id = ?",
                (job_id,),
            ).fetchone()
        if row and row[2] == "succeeded" and row[0] and started and started[0]:
            stored = datetime.fromisoformat(row[0])
            began = datetime.fromisoformat(started[0])
            return (stored - began).total_seconds(), row[1]
        if row and row[2] in ("dead", "queued") and row[3]:
            raise ServerFailed(f"capture failed: {row[3]}")
        time.sleep(0.05)
    raise ServerFailed(f"no asset for {job_id} within {timeout:.0f} s")


@dataclass
class Deployment:
    """``framehook serve --no-worker`` and one ``framehook worker``: the worker is measured."""

    server: Server
    worker: subprocess.Popen[bytes]


@contextmanager
def framehook(workdir: Path, storage_url: str, extra_env: dict[str, str]) -> Iterator[Deployment]:
    port = free_port()
    env = _clean_environment()
    env.update(
        {
            "APIFRAME_API_KEY": API_KEY,
            "FRAMEHOOK_DATABASE_URL": f"sqlite:///{workdir / 'framehook.db'}",
            "FRAMEHOOK_STORAGE_URL": storage_url,
            "FRAMEHOOK_ASSET_HOSTS": "localhost",
            "FRAMEHOOK_ASSET_ALLOW_HTTP": "true",
            "FRAMEHOOK_ASSET_ALLOW_NETWORKS": "127.0.0.0/8,::1/128",
            "FRAMEHOOK_LOG_FORMAT": "json",
            **extra_env,
        }
    )
    script = str(Path(sys.executable).with_name("framehook"))
    # Migrated first, as a deployment does: the processes then start on a current schema.
    subprocess.run([script, "db", "upgrade"], env=env, cwd=workdir, check=True, capture_output=True)
    argv = [script, "serve", "--no-worker", "--port", str(port)]
    server = Server("framehook", argv, env, workdir, workdir / f"serve-{port}.log", port)
    server.start()
    with (workdir / "worker.log").open("wb") as log:
        worker = subprocess.Popen(
            [script, "worker"], env=env, cwd=workdir, stdout=log, stderr=subprocess.STDOUT
        )
    try:
        server.wait_ready([("/readyz", 200)])
        time.sleep(1.0)  # the worker's start-up, so its idle RSS is idle
        yield Deployment(server, worker)
    finally:
        worker.terminate()
        worker.wait(30)
        server.stop()


def capture(
    deployment: Deployment, workdir: Path, url: str, expected_sha: str, target: str, timeout: float
) -> Capture:
    pid = deployment.worker.pid
    idle = peak_rss_mib(pid)
    job_id = str(uuid.uuid4())
    server = deployment.server
    _post_completed(server.base_url, job_id, url)
    seconds, sha = _wait_for_asset(workdir / "framehook.db", job_id, server, timeout)
    return Capture(target, seconds, peak_rss_mib(pid), idle, sha == expected_sha)


BARE_PUT = """
import sys, time, obstore
from obstore.store import S3Store
store = S3Store("bench", endpoint=sys.argv[2], region="us-east-1", access_key_id="bench",
                secret_access_key="bench", client_options={"allow_http": True})
began = time.perf_counter()
with open(sys.argv[1], "rb") as source:
    obstore.put(store, "bare/source.mp4", source, chunk_size=8 * 1024 * 1024, max_concurrency=4)
print(time.perf_counter() - began)
"""


def time_bare_put(source: Path, endpoint: str) -> float:
    """obstore alone putting the file from disk into the S3 server: what the server can take."""
    out = subprocess.run(
        [sys.executable, "-c", BARE_PUT, str(source), endpoint],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(out.stdout.strip())


@contextmanager
def moto_s3() -> Iterator[dict[str, str] | None]:
    """A moto S3 server with a bucket, and the environment framehook needs for it."""
    moto = shutil.which("moto_server") or str(Path(sys.executable).with_name("moto_server"))
    if not Path(moto).exists():
        yield None
        return
    port = free_port()
    process = subprocess.Popen(
        [moto, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        endpoint = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            with suppress(httpx.TransportError):
                if httpx.put(f"{endpoint}/bench").status_code in (200, 409):
                    break
            if time.monotonic() > deadline:
                raise ServerFailed("moto_server did not start")
            time.sleep(0.2)
        yield {
            "AWS_ACCESS_KEY_ID": "bench",
            "AWS_SECRET_ACCESS_KEY": "bench",
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ALLOW_HTTP": "true",
        }
    finally:
        process.terminate()
        process.wait(10)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-s3", action="store_true")
    parser.add_argument("--dir", type=Path, default=None, help="where files go (default: tmp)")
    args = parser.parse_args(argv)
    size = args.size_mib * MIB
    timeout = max(120.0, args.size_mib / 10)

    with tempfile.TemporaryDirectory(dir=args.dir, prefix="framehook-bench-") as raw:
        workdir = Path(raw)
        source = workdir / "source.mp4"
        expected = make_file(source, size)
        http = SendfileServer(source)
        url = f"http://localhost:{http.port}/video.mp4"
        print(f"file: {args.size_mib} MiB served by sendfile at {url}")
        rows: list[tuple[str, float, Capture]] = []
        s3_bare: list[tuple[float, float]] = []
        try:
            targets: list[tuple[str, str, dict[str, str]]] = [
                ("local", str(workdir / "assets"), {})
            ]
            with moto_s3() as s3_env:
                if s3_env is not None and not args.skip_s3:
                    targets.append(("s3 (moto)", "s3://bench/assets", s3_env))
                elif not args.skip_s3:
                    print("s3: skipped (moto_server not installed: pip install -e '.[test]')")
                for target, storage_url, env in targets:
                    home = workdir / target.split()[0]
                    home.mkdir()
                    with framehook(home, storage_url, env) as deployment:
                        for _ in range(args.rounds):
                            curl_s = time_curl(url, workdir / "curl.out")
                            result = capture(deployment, home, url, expected, target, timeout)
                            rows.append((target, curl_s, result))
                            if "AWS_ENDPOINT_URL" in env:
                                bare = time_bare_put(source, env["AWS_ENDPOINT_URL"])
                                s3_bare.append((bare, result.seconds))
        finally:
            http.close()

    print()
    print(
        f"{'target':<10} {'curl s':>7} {'framehook s':>11} {'ratio':>6} {'peak RSS':>9} "
        f"{'idle RSS':>9} {'sha ok':>6}"
    )
    for target, curl_s, c in rows:
        print(
            f"{target:<10} {curl_s:>7.2f} {c.seconds:>11.2f} {curl_s / c.seconds:>6.2f} "
            f"{c.peak_rss_mib:>7.0f}Mi {c.idle_rss_mib:>7.0f}Mi {c.sha_ok!s:>6}"
        )
    ok = all(c.sha_ok and c.peak_rss_mib <= 100 for _, _, c in rows)
    best = {t: max(curl_s / c.seconds for tt, curl_s, c in rows if tt == t) for t, _, _ in rows}
    for target, ratio in best.items():
        verdict = "met" if ratio >= 0.6 else "NOT met"
        print(
            f"{target}: best ratio framehook/curl throughput = {ratio:.2f} (target >= 0.6: "
            f"{verdict})"
        )
    for bare, seconds in s3_bare:
        print(
            f"s3 (moto) server's own ingest: obstore put from disk {bare:.2f} s; framehook "
            f"{seconds:.2f} s; ratio {bare / seconds:.2f} (the S3 server is the bottleneck)"
        )
    print(f"worker peak RSS <= 100 MiB and checksums: {'met' if ok else 'NOT met'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
