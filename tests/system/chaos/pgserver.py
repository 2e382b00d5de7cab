"""A PostgreSQL server of a test's own, which the test may stop and start (restart) at will.

The shared server on 127.0.0.1:5432 serves every other test and engineer: a test that restarts
its database server must never touch it. This one is a throwaway cluster: ``initdb`` into a
fresh directory under the system's temporary directory, ``pg_ctl start`` on a free loopback
port, and removed whole on exit. PostgreSQL refuses to run as root, so as root (this machine's
case) every server command runs as the ``postgres`` OS user through ``runuser``; as anyone
else, as that user.

It runs with ``fsync=off``: a test restarts the *process* (the kernel and its page cache stay
up), which a commit survives without a disk flush, and two shared cores have better use for
the time. It says nothing about surviving power loss, which is not what such a test is about.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

import psycopg

from tests.support.processes import free_port

__all__ = ["PostgresUnavailable", "PrivatePostgres", "find_bindir"]

# Settings on top of initdb's defaults; the chaos cluster needs about 75 connections (the
# README's 10 per receiver plus 17 per worker, for 2 and 3), plus the test's own.
_SETTINGS = {
    "listen_addresses": "127.0.0.1",
    "max_connections": "120",
    "fsync": "off",
    "full_page_writes": "off",
    # As docker-compose.yml sets it: a frozen client cannot hold row locks for ever.
    "idle_in_transaction_session_timeout": "60s",
}


class PostgresUnavailable(Exception):
    """This machine cannot run a private PostgreSQL server (the message says why)."""


def find_bindir() -> Path:
    """The directory holding ``initdb`` and ``pg_ctl``: on PATH, else the newest
    ``/usr/lib/postgresql/*/bin`` (Debian keeps them off PATH).

    Raises:
        PostgresUnavailable: neither is there.
    """
    initdb = shutil.which("initdb")
    if initdb is not None and shutil.which("pg_ctl") is not None:
        return Path(os.path.realpath(initdb)).parent
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin/initdb"),
        key=lambda path: int(path.split("/")[4]) if path.split("/")[4].isdigit() else 0,
    )
    if not candidates:
        raise PostgresUnavailable("no initdb on PATH nor under /usr/lib/postgresql/*/bin")
    return Path(candidates[-1]).parent


class PrivatePostgres:
    """``with PrivatePostgres() as server:`` runs a new cluster until the block ends.

    Attributes:
        port: the loopback port it listens on (the same after every restart).
        directory: holds the data directory, its socket and its log.
    """

    def __init__(self) -> None:
        self.bindir = find_bindir()
        self.port = free_port()
        self._as_user: list[str] = []
        self._owner: tuple[int, int] | None = None
        if os.geteuid() == 0:
            try:
                entry = pwd.getpwnam("postgres")
            except KeyError:
                raise PostgresUnavailable(
                    "running as root, and there is no postgres OS user to run the server as"
                ) from None
            runuser = shutil.which("runuser")
            if runuser is None:
                raise PostgresUnavailable("running as root, and runuser (util-linux) is missing")
            self._as_user = [runuser, "-u", "postgres", "--"]
            self._owner = (entry.pw_uid, entry.pw_gid)
        # Not under pytest's tmp_path: that lies in a root-only directory the postgres user
        # cannot enter.
        self.directory = Path(tempfile.mkdtemp(prefix="framehook-pg-"))
        self.data = self.directory / "data"
        self.log = self.directory / "server.log"
        self.stops = 0

    def url(self, database: str = "postgres") -> str:
        """A libpq/SQLAlchemy URL of ``database`` on this server."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def __enter__(self) -> PrivatePostgres:
        try:
            if self._owner is not None:
                os.chown(self.directory, *self._owner)
            # --no-sync: its files need no flush, the cluster lives as long as the test.
            options = ["-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync"]
            self._run("initdb", ["-D", str(self.data), *options, "--no-instructions"])
            self.start()
        except BaseException:
            self._remove()
            raise
        return self

    def __exit__(self, *_: object) -> None:
        try:
            if self.running():
                self._run("pg_ctl", ["-D", str(self.data), "-m", "immediate", "-w", "stop"])
        finally:
            self._remove()

    def _remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)

    def _run(self, tool: str, args: Sequence[str], timeout: float = 60.0) -> str:
        done = subprocess.run(
            [*self._as_user, str(self.bindir / tool), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
            # The directory the server runs in must be one the postgres user may enter.
            cwd=self.directory,
        )
        if done.returncode != 0:
            log = self.log.read_text(errors="replace")[-3000:] if self.log.exists() else ""
            raise PostgresUnavailable(
                f"{tool} {' '.join(args)} failed ({done.returncode}):\n"
                f"{done.stdout}{done.stderr}\n{log}"
            )
        return done.stdout

    def running(self) -> bool:
        """Whether the server is up (its postmaster runs)."""
        status = subprocess.run(
            [*self._as_user, str(self.bindir / "pg_ctl"), "-D", str(self.data), "status"],
            capture_output=True,
            timeout=30,
            check=False,
            cwd=self.directory,
        )
        return status.returncode == 0

    def start(self) -> None:
        """Start the server on its port and wait until it accepts connections."""
        options = [f"-p {self.port}", f"-k {self.directory}"]
        options += [f"-c {name}={value}" for name, value in _SETTINGS.items()]
        # -w: pg_ctl returns once the server accepts connections.
        self._run(
            "pg_ctl",
            ["-D", str(self.data), "-l", str(self.log), "-o", " ".join(options), "-w", "start"],
        )
        self._wait_accepting()

    def stop(self, mode: str = "fast") -> None:
        """Stop the server and wait until it is down.

        Args:
            mode: ``fast`` (sessions are terminated, a checkpoint is written: what
                ``pg_ctl restart`` and a service manager's stop do) or ``immediate`` (every
                process quits at once; the next start recovers from the WAL, as after a
                crash).
        """
        self._run("pg_ctl", ["-D", str(self.data), "-m", mode, "-w", "stop"])
        self.stops += 1

    def _wait_accepting(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                with psycopg.connect(self.url(), connect_timeout=2) as connection:
                    connection.execute("SELECT 1")
                return
            except psycopg.OperationalError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
