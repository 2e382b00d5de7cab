"""A framehook cluster of real processes: receivers and workers on one PostgreSQL database.

Receivers run ``framehook serve --no-worker`` on fixed loopback ports (a restarted receiver
comes back on its port, so the proxy in front needs no change); workers run ``framehook
worker``. Before any of them starts, ``framehook db upgrade`` runs once, as the ``migrate``
service does in docker-compose.yml. Every member can be SIGKILLed, SIGSTOPped, SIGCONTed,
SIGTERMed and restarted by name; each start of a member logs to a file of its own.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import httpx

from tests.support.processes import framehook_env, free_port, run_cli

__all__ = ["Cluster", "Member"]

ROOT = Path(__file__).resolve().parents[3]
Role = Literal["receiver", "worker"]


@dataclass
class Member:
    """One receiver or worker; ``process`` is its current incarnation."""

    name: str
    role: Role
    port: int | None
    process: subprocess.Popen[bytes]
    log: Path
    starts: int = 1
    exit_codes: list[int] = field(default_factory=list)
    """How each earlier incarnation ended (negative: killed by that signal)."""

    @property
    def pid(self) -> int:
        """The current incarnation's process id."""
        return self.process.pid

    @property
    def url(self) -> str:
        """A receiver's base URL."""
        assert self.port is not None, f"{self.name} is not a receiver"
        return f"http://127.0.0.1:{self.port}"


class Cluster:
    """``with Cluster(database_url, workdir, env) as cluster:`` runs the members until the
    block ends (then stops them with SIGTERM, SIGKILL past 30 s).

    Args:
        database_url: the PostgreSQL database every member shares.
        workdir: where members run and log.
        env: ``FRAMEHOOK_*`` settings for every member, on top of the test environment.
        receivers / workers: how many of each.
        worker_concurrency: ``framehook worker --concurrency``.
    """

    def __init__(
        self,
        database_url: str,
        workdir: Path,
        env: Mapping[str, str],
        *,
        receivers: int = 2,
        workers: int = 3,
        worker_concurrency: int = 4,
    ) -> None:
        self.workdir = workdir
        self.env = framehook_env(
            FRAMEHOOK_DATABASE_URL=database_url, PYTHONPATH=str(ROOT), **dict(env)
        )
        self.worker_concurrency = worker_concurrency
        self.members: dict[str, Member] = {}
        self._layout: list[tuple[str, Role, int | None]] = [
            *((f"receiver-{n}", "receiver", free_port()) for n in range(1, receivers + 1)),
            *((f"worker-{n}", "worker", None) for n in range(1, workers + 1)),
        ]

    @property
    def receivers(self) -> list[Member]:
        """The receivers, in order."""
        return [m for m in self.members.values() if m.role == "receiver"]

    @property
    def workers(self) -> list[Member]:
        """The workers, in order."""
        return [m for m in self.members.values() if m.role == "worker"]

    @property
    def receiver_ports(self) -> list[int]:
        """The receivers' ports (fixed for the cluster's life)."""
        return [port for _, role, port in self._layout if port is not None]

    def __enter__(self) -> Cluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> None:
        """Migrate, then start every member and wait until each is ready."""
        migrated = run_cli(["db", "upgrade"], self.env, self.workdir)
        assert migrated.returncode == 0, f"framehook db upgrade failed:\n{migrated.stderr}"
        for name, role, port in self._layout:
            self.members[name] = self._spawn(name, role, port, starts=1)
        for member in self.members.values():
            self.wait_ready(member.name)

    def _spawn(self, name: str, role: Role, port: int | None, starts: int) -> Member:
        log = self.workdir / f"{name}.{starts}.log"
        if role == "receiver":
            args = ["serve", "--no-worker", "--port", str(port)]
        else:
            args = ["worker", "--concurrency", str(self.worker_concurrency)]
        with log.open("wb") as out:
            # The child keeps its own descriptor; ours closes at once.
            process = subprocess.Popen(
                [sys.executable, "-m", "receiver", *args],
                env=self.env,
                cwd=self.workdir,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        return Member(name, role, port, process, log, starts)

    def wait_ready(self, name: str, timeout: float = 30.0) -> None:
        """Block until ``name`` is up: a receiver's /readyz answers 200, a worker has logged
        that it started."""
        member = self.members[name]
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if member.process.poll() is not None:
                raise AssertionError(f"{name} exited early:\n{member.log.read_text()}")
            if self._ready(member):
                return
            time.sleep(0.1)
        raise AssertionError(f"{name} not ready in {timeout} s:\n{member.log.read_text()}")

    @staticmethod
    def _ready(member: Member) -> bool:
        if member.role == "worker":
            return b"worker started" in member.log.read_bytes()
        try:
            return httpx.get(f"{member.url}/readyz", timeout=1).status_code == 200
        except httpx.TransportError:
            return False

    def member_by_pid(self, pid: int) -> Member | None:
        """The member whose current incarnation is ``pid``."""
        return next((m for m in self.members.values() if m.pid == pid), None)

    def send(self, name: str, signum: signal.Signals) -> None:
        """Send ``signum`` to ``name``'s current process."""
        self.members[name].process.send_signal(signum)

    def kill(self, name: str) -> int:
        """SIGKILL ``name`` (no shutdown code runs) and reap it; return its exit code."""
        member = self.members[name]
        member.process.kill()
        return self._reap(member, 10)

    def pause(self, name: str) -> None:
        """SIGSTOP ``name``: frozen, its sockets and leases left as they are."""
        self.send(name, signal.SIGSTOP)

    def resume(self, name: str) -> None:
        """SIGCONT ``name``."""
        self.send(name, signal.SIGCONT)

    def terminate(self, name: str, timeout: float = 40.0) -> int:
        """SIGTERM ``name`` and wait for it to exit; return its exit code."""
        member = self.members[name]
        member.process.send_signal(signal.SIGTERM)
        return self._reap(member, timeout)

    def _reap(self, member: Member, timeout: float) -> int:
        code = member.process.wait(timeout)
        member.exit_codes.append(code)
        return code

    def restart(self, name: str, wait: bool = True) -> Member:
        """Start ``name`` again (after it exited), on the same port for a receiver."""
        old = self.members[name]
        assert old.process.poll() is not None, f"{name} is still running"
        member = self._spawn(name, old.role, old.port, old.starts + 1)
        member.exit_codes = old.exit_codes
        self.members[name] = member
        if wait:
            self.wait_ready(name)
        return member

    def stop(self) -> dict[str, int]:
        """Stop every member still running (SIGCONT first, in case it is frozen, then SIGTERM;
        SIGKILL after 30 s); return each one's exit code."""
        running = [m for m in self.members.values() if m.process.poll() is None]
        for member in running:
            member.process.send_signal(signal.SIGCONT)
            member.process.send_signal(signal.SIGTERM)
        codes: dict[str, int] = {}
        for member in running:
            try:
                codes[member.name] = self._reap(member, 30)
            except subprocess.TimeoutExpired:
                member.process.kill()
                codes[member.name] = self._reap(member, 10)
        return codes

    def log_events(self, name: str) -> list[dict[str, Any]]:
        """The structured (JSON) log lines of every incarnation of ``name``, in order."""
        events = []
        for line in self.log_text(name).splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    events.append(json.loads(line))
        return events

    def log_text(self, name: str) -> str:
        """Every incarnation's log of ``name``, in order."""
        paths = sorted(self.workdir.glob(f"{name}.*.log"), key=os.path.getmtime)
        return "".join(p.read_text(errors="replace") for p in paths)
