"""Running ``framehook`` as a real process on loopback, for tests that need one."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from tests.support.webhooks import API_KEY, signed_headers


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def framehook_env(**overrides: str) -> dict[str, str]:
    """The environment for a framehook process: no inherited framehook settings."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("FRAMEHOOK_") and k != "APIFRAME_API_KEY"
    }
    env.update({"FRAMEHOOK_LOG_FORMAT": "json", "APIFRAME_API_KEY": API_KEY})
    env["FRAMEHOOK_RECONCILE"] = "false"  # hermetic: never ask api.apiframe.ai
    env.update(overrides)
    return env


def run_cli(
    args: Sequence[str],
    env: dict[str, str],
    cwd: Path,
    *,
    missing: str | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    """Run ``framehook ARGS`` to completion (at most ``timeout`` seconds); with ``missing``, in
    a Python where importing that module fails as if it were not installed (``None`` in
    ``sys.modules`` makes the import raise ModuleNotFoundError)."""
    program = ["-m", "receiver"]
    if missing is not None:
        program = ["-c", f"import sys; sys.modules[{missing!r}] = None; import receiver.__main__"]
    return subprocess.run(
        [sys.executable, *program, *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


class Server:
    """``framehook serve`` in a child process, stopped with ``stop()`` or ``kill()``."""

    def __init__(self, env: dict[str, str], cwd: Path, args: Sequence[str] = ()) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = cwd / f"serve-{self.port}.log"
        self._log_file = self.log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "receiver", "serve", "--port", str(self.port), *args],
            env=env,
            cwd=cwd,
            stdout=self._log_file,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Block until /readyz answers 200 (or fail with the server's log)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"framehook exited early:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"framehook not ready in {timeout}s:\n{self.log.read_text()}")

    def post_webhook(self, body: bytes, headers: dict[str, str] | None = None) -> httpx.Response:
        """POST ``body`` to its webhook route, signed as Apiframe would sign it unless
        ``headers`` are given."""
        return httpx.post(
            f"{self.url}/webhooks/apiframe",
            content=body,
            headers=signed_headers(body) if headers is None else headers,
        )

    def stop(self, timeout: float = 30.0) -> int:
        """SIGTERM, wait, and return the exit code."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(timeout)
        self._log_file.close()
        return code

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        self.process.kill()
        self.process.wait(10)
        self._log_file.close()
