"""Object store emulators as child processes on free loopback ports: moto and nanio (S3),
Azurite (Azure).

The storage fixtures start them once per test session; nothing here is started by hand.
"""

from __future__ import annotations

import base64
import email.utils
import fcntl
import hashlib
import hmac
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3
import httpx

from tests.support.processes import free_port

ROOT = Path(__file__).resolve().parents[2]
AZURITE_VERSION = "3.37.0"
AZURITE_PREFIX = ROOT / ".cache" / "azurite"
# Azurite's documented development account: public, and accepted by nothing but Azurite.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


# Why the GCS backend has no emulator run here (the README's "Object storage" says the same).
GCS_EMULATOR_MISSING = (
    "no GCS emulator obstore can use: gcp-storage-emulator (PyPI) serves only the JSON API, "
    "while obstore speaks the XML API (POST /bucket/object?uploads, HEAD, DELETE), "
    "which it answers 501 Not Implemented"
)


class EmulatorUnavailable(Exception):
    """The emulator cannot be installed here (the message says why)."""


# The S3 servers' credentials. moto accepts any; nanio checks every request's SigV4 signature
# against these, so a client that signs wrongly fails there.
S3_ACCESS_KEY = "test"
S3_SECRET_KEY = "test-secret-key"


@contextmanager
def _child(
    args: Sequence[str],
    port: int,
    workdir: Path,
    name: str,
    env: Mapping[str, str] | None = None,
) -> Iterator[None]:
    """Run ``args`` until the block ends; ready once it accepts TCP connections on ``port``."""
    log_path = workdir / f"{name}.log"
    environ = {**os.environ, **env} if env else None
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            args, cwd=workdir, stdout=log, stderr=subprocess.STDOUT, env=environ
        )
        try:
            _wait_listening(process, port, log_path, name)
            yield
        finally:
            process.terminate()
            try:
                process.wait(10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(10)


def _wait_listening(process: subprocess.Popen[bytes], port: int, log: Path, name: str) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{name} exited early:\n{log.read_text(errors='replace')}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{name} not listening after 60s:\n{log.read_text(errors='replace')}")


@contextmanager
def moto_server(workdir: Path) -> Iterator[str]:
    """moto's S3 (and everything else) on loopback; yields its endpoint URL."""
    port = free_port()
    args = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
    with _child(args, port, workdir, "moto"):
        yield f"http://127.0.0.1:{port}"


@contextmanager
def nanio_server(workdir: Path) -> Iterator[str]:
    """nanio's S3 on loopback, objects as files under ``workdir``; yields its endpoint URL.

    nanio (PyPI, the test extra) streams each part to disk and answers S3's own ETags (a
    multipart object's is the MD5 of its parts' MD5s, ``-N``); unlike moto it checks every
    request's SigV4 signature, with ``S3_ACCESS_KEY``/``S3_SECRET_KEY``. It also ingests a
    large object about three times as fast as moto, which keeps everything in memory (measured
    on 1 GiB: bench/download.py's docstring).
    """
    port = free_port()
    data = workdir / "data"
    data.mkdir()
    args = [
        sys.executable,
        "-m",
        "nanio",
        "serve",
        "--data-dir",
        str(data),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--no-access-log",
        "--log-level",
        "warning",
    ]
    env = {"NANIO_ACCESS_KEY": S3_ACCESS_KEY, "NANIO_SECRET_KEY": S3_SECRET_KEY}
    with _child(args, port, workdir, "nanio", env):
        yield f"http://127.0.0.1:{port}"


def _s3_client(endpoint: str) -> Any:
    return boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id=S3_ACCESS_KEY,
        aws_secret_access_key=S3_SECRET_KEY,
    )


def create_s3_bucket(endpoint: str, bucket: str) -> None:
    """Create ``bucket`` on the S3 server at ``endpoint`` (obstore cannot create buckets)."""
    client = _s3_client(endpoint)
    try:
        client.create_bucket(Bucket=bucket)
    finally:
        client.close()


def s3_pending_uploads(endpoint: str, bucket: str) -> list[str]:
    """Keys of the multipart uploads begun and neither completed nor aborted."""
    client = _s3_client(endpoint)
    try:
        uploads = client.list_multipart_uploads(Bucket=bucket).get("Uploads", [])
    finally:
        client.close()
    return [upload["Key"] for upload in uploads]


def install_azurite(npm: str) -> Path:
    """The ``azurite-blob`` script, installed with ``npm`` under ``.cache/azurite`` if missing.

    Raises:
        EmulatorUnavailable: npm failed (its output is in the message).
    """
    script = AZURITE_PREFIX / "node_modules" / ".bin" / "azurite-blob"
    manifest = AZURITE_PREFIX / "node_modules" / "azurite" / "package.json"

    def installed() -> bool:
        if not (script.exists() and manifest.exists()):
            return False
        return bool(json.loads(manifest.read_text())["version"] == AZURITE_VERSION)

    if installed():
        return script
    AZURITE_PREFIX.mkdir(parents=True, exist_ok=True)
    # Test runs in one checkout may start together (xdist, two shells): two npm installs into
    # one prefix leave it half-written, and npm then fails on it for good ("Invalid Version").
    # So one installs at a time, and whoever waited finds the work done.
    with (AZURITE_PREFIX / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if installed():
            return script
        # Whatever is here is an interrupted install: start from nothing.
        shutil.rmtree(AZURITE_PREFIX / "node_modules", ignore_errors=True)
        for name in ("package.json", "package-lock.json"):
            (AZURITE_PREFIX / name).unlink(missing_ok=True)
        command = [npm, "install", "--prefix", str(AZURITE_PREFIX), "--no-audit", "--no-fund"]
        result = subprocess.run(
            [*command, f"azurite@{AZURITE_VERSION}"],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    if result.returncode != 0 or not installed():
        raise EmulatorUnavailable(f"npm install azurite failed:\n{result.stdout}{result.stderr}")
    return script


@contextmanager
def azurite_server(script: Path, workdir: Path) -> Iterator[str]:
    """Azurite's blob service, in memory, on loopback; yields its endpoint URL."""
    port = free_port()
    args = [
        "node",
        str(script),
        "--blobHost",
        "127.0.0.1",
        "--blobPort",
        str(port),
        "--inMemoryPersistence",
        "--skipApiVersionCheck",
        "--loose",
        "--disableTelemetry",
        "--silent",
    ]
    with _child(args, port, workdir, "azurite"):
        yield f"http://127.0.0.1:{port}"


def create_azure_container(endpoint: str, container: str) -> None:
    """Create ``container`` in Azurite's account, signed with its Shared Key.

    obstore cannot create containers; signing one request by hand spares a dependency on the
    Azure SDK.
    """
    headers = {"x-ms-date": email.utils.formatdate(usegmt=True), "x-ms-version": "2021-08-06"}
    canonical_headers = "".join(f"{name}:{value}\n" for name, value in sorted(headers.items()))
    # The verb, eleven empty standard headers (Content-Encoding .. Range), then ours.
    to_sign = (
        "PUT\n"
        + "\n" * 11
        + canonical_headers
        + f"/{AZURITE_ACCOUNT}/{AZURITE_ACCOUNT}/{container}\nrestype:container"
    )
    key = base64.b64decode(AZURITE_KEY)
    signature = base64.b64encode(hmac.new(key, to_sign.encode(), hashlib.sha256).digest())
    headers["Authorization"] = f"SharedKey {AZURITE_ACCOUNT}:{signature.decode()}"
    response = httpx.put(
        f"{endpoint}/{AZURITE_ACCOUNT}/{container}",
        params={"restype": "container"},
        headers=headers,
    )
    response.raise_for_status()
