"""Benchmark: capturing one large file, framehook's download handler against ``curl -o``.

A 1 GiB video (by default) is served from a loopback HTTP server that uses ``sendfile`` (so
the server is not what is measured). Each round, in the same run and alternating:

* ``curl -sS -o`` fetches it into a file on the same disk as framehook's store: the baseline;
* a real framehook gets a signed ``completed`` webhook naming the file and captures it with the
  ``download`` handler into local storage, then into an S3 server on loopback.

framehook runs as a deployment does: ``framehook db upgrade``, then ``serve --no-worker`` and a
``framehook worker`` (SQLite). Its time is the task attempt's start to the asset's record (from
its database); the ratio is curl's time over framehook's (>= 0.6 is the target: within 1/0.6 of
curl). Peak RSS is the worker process's high-water mark (``VmHWM``), interpreter included;
its CPU time over the capture is shown too, steadier than wall time on a loaded machine.

The S3 server is nanio by default (``--s3-server``; PyPI, in the test extra), or moto, or both.
An S3 server must compute an MD5 of everything it takes (S3's ETags), so it bounds any client:
obstore alone putting the same file from disk into the same server is timed too. The servers
that could be installed here, obstore putting 1 GiB into each in one run on the 2-core
development machine (5 MiB parts 3 at a time / 8 MiB parts 4 at a time):

* nanio 0.1.7 (PyPI): 6.4 / 8.3 s; multipart ETags as S3's, checks SigV4 signatures;
* localbucket 1.2.1 (PyPI): 9.5 / 8.6 s, but a multipart object's ETag is a plain MD5;
* s3rver 3.7.1 (npm): 16.2 / 13.9 s, the same ETag fault, no ListMultipartUploads;
* moto 5.2.5: 19.3 / 16.7 s;
* local-s3-server 0.2.2 (PyPI) answers a multipart upload 400; alocals3 (PyPI) is not the S3
  protocol; fauxqs (npm) needs Node 22.5; Debian has no S3 server short of Ceph's radosgw.

nanio is the fastest correct one (and passes tests/storage, beside moto).

    python bench/download.py [--size-mib 1024] [--rounds 2] [--skip-s3] [--s3-server nanio]
"""

# Imports follow the sys.path entry below, which they need.
# ruff: noqa: E402

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Run as ``python bench/download.py``: make the ``bench`` and ``tests`` packages importable.
if str(ROOT) not in sys.path:
    sys.path.insert(1, str(ROOT))

import argparse
import hashlib
import importlib.util
import os
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

from bench._harness import (
    ROUTE,
    Column,
    Server,
    ServerFailed,
    framehook_env,
    framehook_serve,
    framehook_worker,
    migrate,
    print_table,
)
from bench._workload import completed

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
    cpu_seconds: float = 0.0
    """The worker's CPU time over the capture: what it costs, whatever else loads the
    machine (wall times on a shared 2-core machine vary by half from run to run)."""


def _post_completed(base_url: str, job_id: str, files_url: str) -> None:
    # A video job whose one file is under files_url (the sendfile server answers any path).
    delivery = completed(job_id, API_KEY, "video", asset_base_url=files_url)
    response = httpx.post(f"{base_url}{ROUTE}", content=delivery.body, headers=delivery.headers())
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
    worker: Server


@contextmanager
def framehook(workdir: Path, storage_url: str, extra_env: dict[str, str]) -> Iterator[Deployment]:
    env = framehook_env(
        API_KEY,
        f"sqlite:///{workdir / 'framehook.db'}",
        FRAMEHOOK_STORAGE_URL=storage_url,
        FRAMEHOOK_ASSET_HOSTS="localhost",
        FRAMEHOOK_ASSET_ALLOW_HTTP="true",
        FRAMEHOOK_ASSET_ALLOW_NETWORKS="127.0.0.0/8,::1/128",
        **extra_env,
    )
    # Migrated first, as a deployment does: the processes then start on a current schema.
    migrate(env, workdir)
    server = framehook_serve("framehook", workdir, env, worker=False)
    worker = framehook_worker("worker", workdir, env)
    try:
        server.start()
        worker.start()
        server.wait_ready([("/readyz", 200)])
        time.sleep(1.0)  # the worker's start-up, so its idle RSS is idle
        yield Deployment(server, worker)
    finally:
        worker.stop()
        server.stop()


def capture(
    deployment: Deployment,
    workdir: Path,
    files_url: str,
    expected_sha: str,
    target: str,
    timeout: float,
) -> Capture:
    worker = deployment.worker
    idle = peak_rss_mib(worker.pid)
    cpu = worker.cpu_seconds()
    job_id = str(uuid.uuid4())
    server = deployment.server
    _post_completed(server.base_url, job_id, files_url)
    seconds, sha = _wait_for_asset(workdir / "framehook.db", job_id, server, timeout)
    cpu = worker.cpu_seconds() - cpu
    return Capture(target, seconds, peak_rss_mib(worker.pid), idle, sha == expected_sha, cpu)


BARE_PUT = """
import os, sys, time, obstore
from obstore.store import S3Store
store = S3Store("bench", endpoint=sys.argv[2], region="us-east-1",
                access_key_id=os.environ["AWS_ACCESS_KEY_ID"],
                secret_access_key=os.environ["AWS_SECRET_ACCESS_KEY"],
                client_options={"allow_http": True})
began = time.perf_counter()
with open(sys.argv[1], "rb") as source:
    obstore.put(store, "bare/source.mp4", source, chunk_size=8 * 1024 * 1024, max_concurrency=4)
print(time.perf_counter() - began)
"""


def time_bare_put(source: Path, env: dict[str, str]) -> float:
    """obstore alone putting the file from disk into the S3 server: what the server can take."""
    out = subprocess.run(
        [sys.executable, "-c", BARE_PUT, str(source), env["AWS_ENDPOINT_URL"]],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    )
    return float(out.stdout.strip())


S3_SERVERS = ("nanio", "moto")


@contextmanager
def s3_server(server: str, workdir: Path) -> Iterator[dict[str, str] | None]:
    """An S3 server (nanio or moto) with a bucket, and the environment framehook needs for it;
    ``None`` if that server is not installed. The test suite's own emulators and credentials
    (``tests/support/servers.py``), each with a directory of its own under ``workdir``."""
    if importlib.util.find_spec(server) is None:
        yield None
        return
    from tests.support.servers import (
        S3_ACCESS_KEY,
        S3_SECRET_KEY,
        create_s3_bucket,
        moto_server,
        nanio_server,
    )

    home = workdir / f"{server}-server"
    home.mkdir(exist_ok=True)
    start = nanio_server if server == "nanio" else moto_server
    with start(home) as endpoint:
        create_s3_bucket(endpoint, "bench")
        yield {
            "AWS_ACCESS_KEY_ID": S3_ACCESS_KEY,
            "AWS_SECRET_ACCESS_KEY": S3_SECRET_KEY,
            "AWS_REGION": "us-east-1",
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_ALLOW_HTTP": "true",
        }


@dataclass
class Run:
    """What every target's rounds share."""

    workdir: Path
    source: Path
    files_url: str  # the sendfile server
    expected_sha: str
    rounds: int
    timeout: float

    @property
    def url(self) -> str:
        """What curl fetches."""
        return f"{self.files_url}/video.mp4"


def run_target(
    run: Run, target: str, storage_url: str, env: dict[str, str]
) -> list[tuple[float, Capture, float | None]]:
    """``run.rounds`` captures into one target, each after a ``curl`` of the same file: (curl's
    seconds, the capture, for S3 the server's own ingest time after it)."""
    home = run.workdir / target.split()[-1].strip("()")
    home.mkdir()
    results: list[tuple[float, Capture, float | None]] = []
    with framehook(home, storage_url, env) as deployment:
        for _ in range(run.rounds):
            curl_s = time_curl(run.url, run.workdir / "curl.out")
            result = capture(deployment, home, run.files_url, run.expected_sha, target, run.timeout)
            bare = time_bare_put(run.source, env) if "AWS_ENDPOINT_URL" in env else None
            results.append((curl_s, result, bare))
    return results


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size-mib", type=int, default=1024)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--skip-s3", action="store_true")
    parser.add_argument("--skip-local", action="store_true")
    parser.add_argument(
        "--s3-server",
        choices=[*S3_SERVERS, "both"],
        default="nanio",
        help="the S3 server on loopback (default: nanio, the fastest correct one measured)",
    )
    parser.add_argument("--dir", type=Path, default=None, help="where files go (default: tmp)")
    args = parser.parse_args(argv)
    size = args.size_mib * MIB
    servers = list(S3_SERVERS) if args.s3_server == "both" else [args.s3_server]
    if args.skip_s3:
        servers = []

    rows: list[tuple[str, float, Capture, float | None]] = []
    with tempfile.TemporaryDirectory(dir=args.dir, prefix="framehook-bench-") as raw:
        workdir = Path(raw)
        source = workdir / "source.mp4"
        expected = make_file(source, size)
        http = SendfileServer(source)
        files_url = f"http://localhost:{http.port}"
        run = Run(workdir, source, files_url, expected, args.rounds, max(120.0, args.size_mib / 10))
        print(f"file: {args.size_mib} MiB served by sendfile at {run.url}")
        try:
            if not args.skip_local:
                for curl_s, c, bare in run_target(run, "local", str(workdir / "assets"), {}):
                    rows.append(("local", curl_s, c, bare))
            for server in servers:
                target = f"s3 ({server})"
                with s3_server(server, workdir) as s3_env:
                    if s3_env is None:
                        print(
                            f"{target}: skipped ({server} not installed: pip install -e '.[test]')"
                        )
                        continue
                    for curl_s, c, bare in run_target(run, target, "s3://bench/assets", s3_env):
                        rows.append((target, curl_s, c, bare))
        finally:
            http.close()
    report(rows)
    return 0


COLUMNS = (
    Column("target", 10, left=True),
    Column("curl s", 7, ".2f"),
    Column("framehook s", 11, ".2f"),
    Column("ratio", 6, ".2f"),
    Column("worker cpu s", 12, ".2f"),
    Column("peak RSS", 9),
    Column("idle RSS", 9),
    Column("sha ok", 6),
)


def _cells(target: str, curl_s: float, c: Capture) -> tuple[object, ...]:
    """One capture's line of the table (``COLUMNS``)."""
    rss = (f"{c.peak_rss_mib:.0f}Mi", f"{c.idle_rss_mib:.0f}Mi")
    return (target, curl_s, c.seconds, curl_s / c.seconds, c.cpu_seconds, *rss, str(c.sha_ok))


def report(rows: list[tuple[str, float, Capture, float | None]]) -> None:
    print()
    print_table([_cells(target, curl_s, c) for target, curl_s, c, _ in rows], COLUMNS)
    ok = all(c.sha_ok and c.peak_rss_mib <= 100 for _, _, c, _ in rows)
    best: dict[str, float] = {}
    for target, curl_s, c, _ in rows:
        best[target] = max(best.get(target, 0.0), curl_s / c.seconds)
    for target, ratio in best.items():
        verdict = "met" if ratio >= 0.6 else "NOT met"
        print(
            f"{target}: best ratio framehook/curl throughput = {ratio:.2f} (target >= 0.6: "
            f"{verdict})"
        )
    for target, _, c, bare in rows:
        if bare is not None:
            print(
                f"{target} server's own ingest: obstore put from disk {bare:.2f} s; framehook "
                f"{c.seconds:.2f} s; ratio {bare / c.seconds:.2f} (1.0: the server is the "
                "bottleneck)"
            )
    print(f"worker peak RSS <= 100 MiB and checksums: {'met' if ok else 'NOT met'}")


if __name__ == "__main__":
    raise SystemExit(main())
