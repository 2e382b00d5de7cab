"""The Docker image, built from the Dockerfile and run: /healthz, its HEALTHCHECK, the
dashboard, a signed webhook kept across a restart, an unprivileged process.

No image registry is reachable here, so the base is Debian bookworm made by debootstrap (the
tarball cached in ~/.cache/framehook-test/, about 40 s to make once) and imported; the
Dockerfile takes it through its BASE_IMAGE argument. The engine is a dockerd of this test's own
(its socket and state in a temporary directory, its image store in the cache, so a rebuild
reuses the dependency layers), without bridge or iptables: builds and containers use the host's
network. It is stopped when the module ends. Needs root, dockerd and debootstrap
(.ci/container-tools installs them): skipped without them, failed under CI=true.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NoReturn

import httpx
import pytest

from tests.support.processes import free_port
from tests.support.waiting import wait_until
from tests.support.webhooks import API_KEY, OTHER_KEY, sample, signed_headers

# A first run makes the base (about 40 s) and builds from scratch (20 s to 2 min, by load).
pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
CACHE = Path.home() / ".cache" / "framehook-test"
BASE_TARBALL = CACHE / "debootstrap-bookworm.tar"
# Layers of images built by earlier runs: the dependency layer is rebuilt only when
# pyproject.toml (or the base) changes.
DATA_ROOT = CACHE / "docker"
PACKAGES = "python3,python3-venv,ca-certificates"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
CA_MEMBER = "./etc/ssl/certs/ca-certificates.crt"
BASE = "framehook-test-base"
IMAGE = "framehook-test:latest"
DEPS_IMAGE = "framehook-test:deps"
TOKEN = "container-test-admin-token"


def _unavailable(reason: str) -> NoReturn:
    """Skip for want of a tool or right; under CI=true, fail: there it must be provided."""
    if os.environ.get("CI"):
        pytest.fail(f"{reason} (.ci/container-tools installs Debian's docker.io and debootstrap)")
    pytest.skip(reason)


def _run(*args: str, env: dict[str, str] | None = None, timeout: float = 600) -> str:
    """Run a command to completion; fail the test with its output if it fails."""
    done = subprocess.run(
        args, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"{' '.join(args)} exited {done.returncode}:\n{done.stdout}{done.stderr}")
    return done.stdout


def debian_mirror() -> str:
    """The Debian mirror apt is configured with (a closed network may allow only that one)."""
    sources = [Path("/etc/apt/sources.list"), *Path("/etc/apt/sources.list.d").glob("*")]
    for source in sources:
        text = source.read_text() if source.is_file() else ""
        for url in re.findall(r"(?:^URIs:|^deb)\s+(\S+)", text, re.MULTILINE):
            if url.rstrip("/").endswith("/debian"):
                return str(url)
    return "http://deb.debian.org/debian"


def base_tarball() -> Path:
    """Debian bookworm with Python and its venv module, as a root filesystem tarball (cached)."""
    if BASE_TARBALL.exists():
        return BASE_TARBALL
    CACHE.mkdir(parents=True, exist_ok=True)
    rootfs = CACHE / "rootfs.partial"
    shutil.rmtree(rootfs, ignore_errors=True)
    _run(
        "debootstrap",
        "--variant=minbase",
        f"--include={PACKAGES}",
        "bookworm",
        str(rootfs),
        debian_mirror(),
    )
    for cache in ("var/cache/apt/archives", "var/lib/apt/lists"):
        for entry in (rootfs / cache).glob("*"):
            if entry.is_file():
                entry.unlink()
    partial = BASE_TARBALL.with_suffix(".partial")
    _run("tar", "-C", str(rootfs), "-cf", str(partial), ".")
    partial.rename(BASE_TARBALL)
    shutil.rmtree(rootfs)
    return BASE_TARBALL


def _with_host_ca(tarball: Path, out: IO[bytes]) -> None:
    """Stream ``tarball`` to ``out`` with the host's CA bundle in place of Debian's, so pip in
    the build trusts what the host trusts (here, an egress proxy that re-signs TLS)."""
    with tarfile.open(tarball, "r|") as source, tarfile.open(fileobj=out, mode="w|") as target:
        for member in source:
            if member.name == CA_MEMBER:
                continue
            target.addfile(member, source.extractfile(member) if member.isfile() else None)
        bundle = CA_BUNDLE.read_bytes()
        info = tarfile.TarInfo(CA_MEMBER)
        info.size, info.mode = len(bundle), 0o644
        with CA_BUNDLE.open("rb") as data:
            target.addfile(info, data)


@dataclass(frozen=True)
class Engine:
    """A running dockerd of this test's own, and the environment that reaches it."""

    env: dict[str, str]

    def docker(self, *args: str, timeout: float = 600) -> str:
        """``docker ARGS`` against this engine; the test fails with its output if it fails."""
        return _run("docker", *args, env=self.env, timeout=timeout)


def _stop(process: subprocess.Popen[bytes], state: Path) -> None:
    """Stop dockerd, unmount what it leaves mounted in its state directory (its network
    namespace, which would otherwise outlive the run), and delete the directory."""
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(30)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(10)
    mounts = [line.split()[1] for line in Path("/proc/mounts").read_text().splitlines()]
    for mount in reversed(mounts):
        if mount.startswith(f"{state}/"):
            subprocess.run(["umount", mount], check=False)
    shutil.rmtree(state, ignore_errors=True)


@pytest.fixture(scope="module")
def engine() -> Iterator[Engine]:
    """dockerd on a socket of its own, image store in the cache, stopped at the end."""
    missing = [tool for tool in ("docker", "dockerd", "debootstrap") if not shutil.which(tool)]
    if missing:
        _unavailable(f"{', '.join(missing)} not installed")
    if os.geteuid() != 0:
        _unavailable("dockerd and debootstrap need root")
    DATA_ROOT.mkdir(parents=True, exist_ok=True)
    # One engine per image store: a second test run waits for the first.
    with (CACHE / "docker.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        # Not pytest's tmp_path: another session's pytest may rename that while dockerd runs.
        # Short, as containerd's socket lives under the exec root (sun_path is 108 bytes).
        state = Path(tempfile.mkdtemp(prefix="framehook-dockerd-"))
        env = {**os.environ, "DOCKER_HOST": f"unix://{state}/docker.sock", "DOCKER_BUILDKIT": "0"}
        log = state / "dockerd.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [
                    "dockerd",
                    f"--data-root={DATA_ROOT}",
                    f"--exec-root={state}/exec",
                    f"--pidfile={state}/dockerd.pid",
                    f"--host=unix://{state}/docker.sock",
                    # Nothing of the host's network is changed: no bridge, no rules.
                    "--bridge=none",
                    "--iptables=false",
                    "--ip6tables=false",
                    "--ip-forward=false",
                    "--ip-masq=false",
                ],
                stdout=output,
                stderr=subprocess.STDOUT,
            )
        try:
            ready = False
            deadline = time.monotonic() + 60
            while not ready and process.poll() is None and time.monotonic() < deadline:
                info = subprocess.run(
                    ["docker", "info"], env=env, capture_output=True, check=False, timeout=30
                )
                ready = info.returncode == 0
                time.sleep(0 if ready else 0.2)
            if not ready:
                _unavailable(f"dockerd did not start:\n{log.read_text()[-3000:]}")
            yield Engine(env)
            # What builds of older code left: the cache keeps only the current layers.
            subprocess.run(["docker", "image", "prune", "--force"], env=env, check=False)
        finally:
            _stop(process, state)


@pytest.fixture(scope="module")
def image(engine: Engine) -> str:
    """The project's image, built on the debootstrap base with pip installing from PyPI."""
    tarball = base_tarball()
    digest = hashlib.sha256(CA_BUNDLE.read_bytes())
    digest.update(f"{tarball.stat().st_size}:{tarball.stat().st_mtime_ns}".encode())
    base = f"{BASE}:{digest.hexdigest()[:16]}"
    known = subprocess.run(
        ["docker", "image", "inspect", base], env=engine.env, capture_output=True, check=False
    )
    if known.returncode != 0:
        importer = subprocess.Popen(
            ["docker", "import", "--change", f"ENV PIP_CERT={CA_BUNDLE}", "-", base],
            env=engine.env,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
        )
        assert importer.stdin is not None
        _with_host_ca(tarball, importer.stdin)
        importer.stdin.close()
        assert importer.wait(300) == 0, "docker import of the debootstrap base failed"
        # Bases made from an older tarball or CA bundle: nothing builds on them any more.
        for stale in engine.docker("images", "--format={{.Repository}}:{{.Tag}}", BASE).split():
            if stale != base:
                engine.docker("rmi", stale)
    build = ("build", "--network=host", f"--build-arg=BASE_IMAGE={base}")
    # The dependencies' stage tagged too: untagged, the prune at the end would drop it.
    engine.docker(*build, "--target=deps", f"--tag={DEPS_IMAGE}", str(ROOT))
    engine.docker(*build, f"--tag={IMAGE}", str(ROOT))
    return IMAGE


@dataclass(frozen=True)
class Container:
    """A running container of the image, on the host's network."""

    engine: Engine
    name: str
    url: str

    def state(self) -> dict[str, object]:
        """``docker inspect``'s State of this container."""
        state: dict[str, object] = json.loads(
            self.engine.docker("inspect", "--format={{json .State}}", self.name)
        )
        return state

    def wait_ready(self) -> None:
        """Until /readyz answers 200; fails with the container's log if it stops first."""

        def ready() -> bool:
            if not self.state()["Running"]:
                logs = subprocess.run(
                    ["docker", "logs", self.name], env=self.engine.env, capture_output=True
                )
                pytest.fail(f"the container stopped:\n{logs.stdout!r}{logs.stderr!r}")
            try:
                return httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200
            except httpx.TransportError:
                return False

        wait_until(ready, timeout=60)


@pytest.fixture(scope="module")
def container(engine: Engine, image: str) -> Iterator[Container]:
    """The image run with its own command (``framehook serve``), data in its /data volume."""
    port = free_port()
    name = f"framehook-test-{port}"
    engine.docker(
        "run",
        "--detach",
        f"--name={name}",
        "--network=host",
        f"--env=APIFRAME_API_KEY={API_KEY}",
        f"--env=FRAMEHOOK_ADMIN_TOKEN={TOKEN}",
        f"--env=FRAMEHOOK_PORT={port}",
        "--env=FRAMEHOOK_RECONCILE=false",
        # The image's own HEALTHCHECK command, run every second instead of every 15.
        "--health-interval=1s",
        image,
    )
    running = Container(engine, name, f"http://127.0.0.1:{port}")
    try:
        running.wait_ready()
        yield running
    finally:
        engine.docker("rm", "--force", "--volumes", name)


def _jobs(container: Container) -> list[str]:
    answer = httpx.get(
        f"{container.url}/api/jobs", headers={"Authorization": f"Bearer {TOKEN}"}, timeout=5
    )
    assert answer.status_code == 200, answer.text
    return [job["id"] for job in answer.json()["items"]]


def test_the_image_answers_healthz_and_its_healthcheck_passes(container: Container) -> None:
    """/healthz is 200 on 0.0.0.0:FRAMEHOOK_PORT and Docker reports the container healthy."""
    assert httpx.get(f"{container.url}/healthz", timeout=5).status_code == 200

    def healthy() -> bool:
        health = container.state()["Health"]
        assert isinstance(health, dict)
        return bool(health["Status"] == "healthy")

    wait_until(healthy, timeout=30)


def test_the_image_ships_the_dashboard(container: Container) -> None:
    """The dashboard page and its scripts (package data) are in the installed package."""
    page = httpx.get(f"{container.url}/", timeout=5)
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    assert httpx.get(f"{container.url}/dashboard/app.js", timeout=5).status_code == 200


def test_a_signed_webhook_is_kept_across_a_restart(container: Container) -> None:
    """A signed webhook is accepted (202), a wrongly signed one refused (401), and the job it
    recorded is still there after the container restarts: the database is in /data."""
    body = sample("progress-midjourney-45")
    job_id = json.loads(body)["jobId"]
    url = f"{container.url}/webhooks/apiframe"
    forged = httpx.post(url, content=body, headers=signed_headers(body, OTHER_KEY), timeout=5)
    assert forged.status_code == 401, forged.text
    accepted = httpx.post(url, content=body, headers=signed_headers(body), timeout=5)
    assert (accepted.status_code, accepted.json()["outcome"]) == (202, "accepted")
    assert job_id in _jobs(container)
    container.engine.docker("restart", container.name)
    container.wait_ready()
    assert job_id in _jobs(container)


def test_the_process_runs_as_an_unprivileged_user(container: Container) -> None:
    """framehook runs as uid 10001, not root, and owns its /data volume."""
    identity = container.engine.docker("exec", container.name, "id", "-u")
    assert identity.strip() == "10001"
    owner = container.engine.docker("exec", container.name, "stat", "-c", "%u", "/data")
    assert owner.strip() == "10001"
