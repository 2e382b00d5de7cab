"""The example plugin package, installed as a customer would, found by its entry point."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.processes import Server, framehook_env
from tests.support.webhooks import sample

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "framehook-manifest"


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example plugin pip-installed (without dependencies) into a directory of its own."""
    site = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--target",
            str(site),
            str(EXAMPLE),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    return site


@pytest.mark.slow
def test_the_plugins_own_tests_pass_with_handlers_testing(plugin_site: Path) -> None:
    """The plugin's tests (handlers.testing, no framehook running) pass against this framehook."""
    env = {**os.environ, "PYTHONPATH": f"{plugin_site}{os.pathsep}{ROOT}"}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(EXAMPLE / "tests")],
        env=env,
        cwd=EXAMPLE,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "4 passed" in result.stdout


@pytest.mark.slow
def test_serve_loads_the_plugin_by_entry_point_and_runs_it(
    plugin_site: Path, tmp_path: Path
) -> None:
    """FRAMEHOOK_HANDLERS=manifest: a completed webhook ends as a manifest in storage."""
    assets = tmp_path / "assets"
    env = framehook_env(
        FRAMEHOOK_HANDLERS="manifest",
        FRAMEHOOK_STORAGE_URL=str(assets),
        PYTHONPATH=str(plugin_site),
    )
    server = Server(env, tmp_path)
    try:
        server.wait_ready()
        body = sample("completed-midjourney")
        assert server.post_webhook(body).status_code == 202
        manifest = assets / "6f1c2a9e-3b7d-4e21-9a55-0c8d2f4b7a10" / "manifest.json"
        deadline = time.monotonic() + 20
        while not manifest.exists():
            assert time.monotonic() < deadline, server.log.read_text()
            time.sleep(0.05)
    finally:
        server.stop()
    data = json.loads(manifest.read_text())
    assert (data["model"], len(data["urls"])) == ("midjourney", 5)
