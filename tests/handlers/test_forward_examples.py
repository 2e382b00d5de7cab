"""The README's receiving examples (``tests/handlers/forward_examples/``), run as written: the
Python one on ``standardwebhooks`` from PyPI, the Node.js one on ``standardwebhooks`` from npm.
Each gets real forwarded events from the forward handler, a repeat of one, and a forgery."""

from __future__ import annotations

import asyncio
import fcntl
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from handlers.forward import ForwardHandler, ForwardOptions, Signer, message_id
from handlers.testing import FakeLinks, MemoryAssets, sample_event
from tests.handlers.test_forward import OTHER_SECRET, SECRET, _run, stored
from tests.support.processes import free_port

pytestmark = pytest.mark.slow

EXAMPLES = Path(__file__).resolve().parent / "forward_examples"
NPM_PACKAGE = "standardwebhooks@1.3.0"
NODE_CACHE = Path.home() / ".cache" / "framehook-test" / "forward-node"


def _unavailable(reason: str) -> None:
    """Skip, or under CI fail: CI must run every example."""
    if os.environ.get("CI"):
        pytest.fail(reason)
    pytest.skip(reason)


def _node_modules() -> Path:
    """``node_modules`` with ``NPM_PACKAGE``, installed once under ``NODE_CACHE`` (reruns are
    fast); skips (fails under CI) without node and npm, or when npm cannot install it."""
    npm, node = shutil.which("npm"), shutil.which("node")
    if npm is None or node is None:
        _unavailable("the Node.js example needs node and npm on PATH")
    assert npm is not None
    name, version = NPM_PACKAGE.split("@")
    manifest = NODE_CACHE / "node_modules" / name / "package.json"

    def installed() -> bool:
        return manifest.is_file() and json.loads(manifest.read_text())["version"] == version

    NODE_CACHE.mkdir(parents=True, exist_ok=True)
    # Two test runs at once must not write one node_modules together.
    with (NODE_CACHE / ".install.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not installed():
            done = subprocess.run(
                [npm, "install", "--prefix", str(NODE_CACHE), "--no-audit", "--no-fund",
                 NPM_PACKAGE],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )  # fmt: skip
            if done.returncode != 0 or not installed():
                said = (done.stderr or done.stdout).strip().splitlines()[-3:]
                _unavailable(f"npm could not install {NPM_PACKAGE}: {' '.join(said)}")
    return NODE_CACHE / "node_modules"


def _listening(port: int, process: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"the example exited: {process.communicate()}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("the example is not listening after 30 s")


def _example(command: list[str], cwd: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    port = free_port()
    env = {**os.environ, "FRAMEHOOK_FORWARD_SECRET": SECRET, "PORT": str(port)}
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        _listening(port, process)
        yield f"http://127.0.0.1:{port}/", process
    finally:
        if process.poll() is None:
            process.terminate()
            process.wait(10)


@pytest.fixture
def python_example(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """receive.py, running."""
    yield from _example([sys.executable, str(EXAMPLES / "receive.py")], tmp_path)


@pytest.fixture
def node_example(tmp_path: Path) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """receive.mjs, running on the npm package (a copy beside a link to the cached modules)."""
    modules = _node_modules()
    shutil.copy(EXAMPLES / "receive.mjs", tmp_path / "receive.mjs")
    (tmp_path / "node_modules").symlink_to(modules, target_is_directory=True)
    node = shutil.which("node")
    assert node is not None
    yield from _example([node, "receive.mjs"], tmp_path)


def _exercise(url: str, process: subprocess.Popen[str]) -> None:
    """Forward a completed job (4 of its 5 files stored), the same task again, a failed job,
    then a forgery; the example acts on each real event once and refuses the forgery."""
    handler = ForwardHandler(ForwardOptions(url=[url], secret=SECRET))
    completed = sample_event("completed-midjourney")
    assets = MemoryAssets()
    for position in (1, 2, 3, 4):
        assets.records[(completed.job_id, position)] = stored(completed.job_id, position)
    links = FakeLinks("https://files.example")
    asyncio.run(_run(handler, completed, task_id=1, assets=assets, links=links))
    asyncio.run(_run(handler, completed, task_id=1, attempt=2, assets=assets, links=links))
    failed = sample_event("failed-content-policy")
    asyncio.run(_run(handler, failed, task_id=2))

    body = b'{"type":"job.completed","timestamp":"2026-12-03T00:00:00Z","data":{}}'
    forged = Signer(OTHER_SECRET).headers(message_id(3, "x", "completed"), body)
    assert httpx.post(url, content=body, headers=forged).status_code == 401

    process.terminate()
    out, err = process.communicate(timeout=10)
    job = completed.job_id
    expected = [f"stored {job} {n} https://files.example/{job}/image-{n}.png" for n in (1, 2, 3, 4)]
    grid = completed.payload["result"]["gridUrl"].split("?")[0]
    expected += [f"missing {job} 5 {grid}", f"failed {failed.job_id} {failed.job.error}"]
    # Node logs to standard output, Python's logging to standard error.
    said = [line for line in (out + err).splitlines() if line]
    assert said == expected, out + err


def test_the_python_example_verifies_and_handles_each_event_once(
    python_example: tuple[str, subprocess.Popen[str]],
) -> None:
    """README's Python receiver (standardwebhooks from PyPI) takes real forwarded events."""
    _exercise(*python_example)


def test_the_node_example_verifies_and_handles_each_event_once(
    node_example: tuple[str, subprocess.Popen[str]],
) -> None:
    """README's Node.js receiver (standardwebhooks from npm) takes real forwarded events."""
    _exercise(*node_example)
