"""What the benchmark scripts share: their processes, CPUs, load generator, report and tables.

Each scenario (``ack.py``, ``scale.py``, ``tasks.py``, ``download.py``) keeps only its own setup
and measurement. Running framehook's CLI to completion and finding a free port are the test
suite's own (``tests/support/processes.py``), so the benchmarks start framehook as the tests do.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, TypeVar

import httpx

from receiver.db.engine import normalize_url
from tests.support.processes import free_port, run_cli

if TYPE_CHECKING:
    import psycopg

__all__ = [
    "DEFAULT_POSTGRES_URL",
    "REQUEST_TIMEOUT_S",
    "ROOT",
    "ROUTE",
    "Column",
    "CpuPlan",
    "Generator",
    "LoadResult",
    "Measurement",
    "Replay",
    "ScratchDatabases",
    "Server",
    "ServerFailed",
    "WrkSummary",
    "bare_server",
    "bench_api_key",
    "busy_share",
    "choose_generator",
    "clean_environment",
    "cpu_times",
    "each_round",
    "finish",
    "framehook_checkout",
    "framehook_command",
    "framehook_env",
    "framehook_serve",
    "framehook_worker",
    "free_port",
    "measure_server",
    "measure_servers",
    "migrate",
    "noting_failures",
    "parse_wrk",
    "percentile",
    "plan_cpus",
    "postgres_server_url",
    "print_table",
    "run_wrk",
    "taskset",
    "terminate",
    "uvicorn_server",
    "wait_for_log",
    "whole_seconds",
    "with_checkout",
]

ROOT = Path(__file__).resolve().parents[1]
ROUTE = "/webhooks/apiframe"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/test"
# A load generator gives up on a request after this long and counts a timeout; framehook itself
# answers 503 after 10 s (intake timeout), so anything near this is already far outside any
# latency target.
REQUEST_TIMEOUT_S = 5.0

_Case = TypeVar("_Case")
_Run = TypeVar("_Run")


# --------------------------------------------------------------------------- environment


def clean_environment() -> dict[str, str]:
    """This process's environment without any ``FRAMEHOOK_*``, ``APIFRAME_*`` or PYTHONPATH."""
    # A developer's settings (writers, batch size, database) would silently change what is
    # measured: the benchmarks measure framehook's defaults, so drop them all.
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FRAMEHOOK_", "APIFRAME_")) and k != "PYTHONPATH"
    }


def framehook_env(api_key: str, database_url: str, **extra: str) -> dict[str, str]:
    """A clean environment for framehook on ``database_url``, logging JSON, plus ``extra``."""
    return clean_environment() | {
        "APIFRAME_API_KEY": api_key,
        "FRAMEHOOK_DATABASE_URL": database_url,
        "FRAMEHOOK_LOG_FORMAT": "json",
        **extra,
    }


def bench_api_key() -> str:
    """A fresh API key for one run."""
    return "afk_bench_" + secrets.token_hex(16)


def framehook_checkout(value: str) -> Path:
    """An argparse ``type`` for ``--base DIR``: the root of another framehook checkout.

    Raises:
        argparse.ArgumentTypeError: DIR holds no ``receiver/__main__.py``.
    """
    path = Path(value)
    if not (path / "receiver" / "__main__.py").is_file():
        raise argparse.ArgumentTypeError(
            f"{value}: not a framehook checkout (no receiver/__main__.py)"
        )
    return path


def with_checkout(env: dict[str, str], source: Path) -> dict[str, str]:
    """``env`` for a process that imports ``receiver`` from the checkout at ``source``."""
    # Ahead of this checkout on sys.path (an editable install is a .pth path entry).
    return {**env, "PYTHONPATH": str(source)}


def framehook_command() -> list[str]:
    """The ``framehook`` script beside this interpreter, or ``python -m receiver``."""
    script = Path(sys.executable).with_name("framehook")
    return [str(script)] if script.exists() else [sys.executable, "-m", "receiver"]


def migrate(env: dict[str, str], workdir: Path) -> None:
    """``framehook db upgrade`` on ``env``'s database, as a deployment runs it first."""
    done = run_cli(["db", "upgrade"], env, workdir)
    if done.returncode != 0:
        raise ServerFailed(f"framehook db upgrade failed: {done.stderr[-800:]}")


# --------------------------------------------------------------------------- CPUs


def taskset(cpu: int | None) -> list[str]:
    """``taskset -c N`` to pin a command to ``cpu``, or nothing when not pinning."""
    command = shutil.which("taskset")
    return [command, "-c", str(cpu)] if cpu is not None and command else []


@dataclass(frozen=True, slots=True)
class CpuPlan:
    """Which CPU the server and the load generator get, or why they are not pinned."""

    server: int | None
    generator: int | None
    note: str


def plan_cpus() -> CpuPlan:
    """Server on the first allowed CPU, generator on the second, so they never share a core."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return CpuPlan(None, None, f"only {len(allowed)} CPU available: nothing pinned")
    if shutil.which("taskset") is None:
        return CpuPlan(None, None, "taskset not found (util-linux): nothing pinned")
    note = f"server on CPU {allowed[0]}, generator on CPU {allowed[1]}"
    return CpuPlan(allowed[0], allowed[1], note)


# --------------------------------------------------------------------------- servers


class ServerFailed(RuntimeError):
    """A server did not start, or died."""


class Server:
    """A server child process in its own session, so stopping it stops everything it started."""

    def __init__(
        self, name: str, argv: list[str], env: dict[str, str], cwd: Path, log: Path, port: int
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = env
        self.cwd = cwd
        self.log = log
        self.port = port
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def start(self) -> None:
        with self.log.open("wb") as log:
            self.process = subprocess.Popen(
                self.argv,
                env=self.env,
                cwd=self.cwd,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def log_tail(self, lines: int = 15) -> str:
        try:
            text = self.log.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return "\n".join(text[-lines:])

    def check_alive(self) -> None:
        assert self.process is not None
        code = self.process.poll()
        if code is not None:
            raise ServerFailed(
                f"{self.name} exited with status {code}; log {self.log}:\n{self.log_tail()}"
            )

    def wait_ready(self, probes: Sequence[tuple[str, int]], timeout: float = 60.0) -> None:
        """Poll each ``(GET path, expected status)`` in turn until it answers as expected."""
        deadline = time.monotonic() + timeout
        with httpx.Client(base_url=self.base_url, timeout=2.0) as client:
            for path, expected in probes:
                while True:
                    self.check_alive()
                    try:
                        if client.get(path).status_code == expected:
                            break
                    except httpx.TransportError:
                        pass  # not listening yet
                    if time.monotonic() > deadline:
                        raise ServerFailed(
                            f"{self.name}: GET {path} did not answer {expected} within "
                            f"{timeout:.0f} s; log {self.log}:\n{self.log_tail()}"
                        )
                    time.sleep(0.05)

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process (all its threads) so far."""
        stat = Path(f"/proc/{self.pid}/stat").read_text()
        # The command (field 2) may hold spaces: count from its closing parenthesis, after
        # which state is the first field, utime the 12th and stime the 13th.
        rest = stat[stat.rfind(")") + 2 :].split()
        return (int(rest[11]) + int(rest[12])) / os.sysconf("SC_CLK_TCK")

    def stop(self, timeout: float = 35.0) -> None:
        """SIGTERM (framehook commits what is queued and shuts down), SIGKILL if it hangs."""
        process = self.process
        if process is None or process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
        except ProcessLookupError:
            pass


def framehook_serve(
    name: str,
    workdir: Path,
    env: dict[str, str],
    *,
    worker: bool = True,
    cpu: int | None = None,
    source: Path | None = None,
) -> Server:
    """``framehook serve`` on a free loopback port (not started); ``worker=False`` runs the
    receiver alone (``--no-worker``), as replicas in front of workers run it. ``source``: the
    root of another framehook checkout to run instead of this one (a change measured against
    the code before it, in the same run)."""
    port = free_port()
    command = framehook_command()
    if source is not None:
        command = [sys.executable, "-m", "receiver"]
        env = with_checkout(env, source)
    argv = [*taskset(cpu), *command, "serve", "--host", "127.0.0.1"]
    argv += ["--port", str(port)]
    if not worker:
        argv.append("--no-worker")
    # Stopped once its figures are taken: a short grace period, or each stop waits for the
    # worker's downloads from Apiframe's CDN, unreachable from a bench machine, to fail on their
    # DNS timeouts (9 s a server here). A benchmark that waits for its captures does so first.
    env = {"FRAMEHOOK_GRACE_SECONDS": "1", **env}
    # cwd is the scratch directory so no stray .env of the developer's is read.
    return Server(name, argv, env, workdir, workdir / f"{name}.log", port)


def framehook_worker(
    name: str, workdir: Path, env: dict[str, str], *, cpu: int | None = None
) -> Server:
    """``framehook worker`` (not started)."""
    argv = [*taskset(cpu), *framehook_command(), "worker"]
    return Server(name, argv, env, workdir, workdir / f"{name}.log", 0)


def bare_server(name: str, workdir: Path, api_key: str, *, cpu: int | None = None) -> Server:
    """bench/bare_app.py under uvicorn with the options ``framehook serve`` passes to uvicorn
    (not started)."""
    env = clean_environment() | {"APIFRAME_API_KEY": api_key}
    return uvicorn_server(name, workdir, "bench.bare_app:app", env, cpu=cpu)


def uvicorn_server(
    name: str, workdir: Path, app: str, env: dict[str, str], *, cpu: int | None = None
) -> Server:
    """The ASGI ``app`` (``module:attribute``) under uvicorn with the options ``framehook
    serve`` passes to uvicorn (not started): the baselines are served as framehook is."""
    port = free_port()
    argv = [
        *taskset(cpu),
        sys.executable, "-m", "uvicorn", app,
        "--app-dir", str(ROOT),
        "--host", "127.0.0.1", "--port", str(port),
        "--no-access-log", "--log-level", "warning",
        # framehook runs uvicorn with server_header=False and proxy_headers=False: match it.
        "--no-server-header", "--no-proxy-headers",
    ]  # fmt: skip
    return Server(name, argv, env, workdir, workdir / f"{name}.log", port)


def wait_for_log(server: Server, text: str, timeout: float = 60.0) -> None:
    """Until ``text`` appears in the server's log."""
    deadline = time.monotonic() + timeout
    while text not in server.log.read_text(errors="replace"):
        server.check_alive()
        if time.monotonic() > deadline:
            raise ServerFailed(f"{server.name}: no {text!r} in {server.log} within {timeout:.0f} s")
        time.sleep(0.05)


# --------------------------------------------------------------------------- PostgreSQL


def postgres_server_url() -> str:
    """The server to make scratch databases on: ``FRAMEHOOK_TEST_POSTGRES_URL`` or the local."""
    return os.environ.get("FRAMEHOOK_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL


class ScratchDatabases:
    """Databases of this run's own on one PostgreSQL server; ``drop_all`` removes every one.

    psycopg is imported where it is used: it is the ``postgres`` extra, and ``ack.py`` and
    ``download.py`` run on SQLite without it.
    """

    def __init__(self, server_url: str) -> None:
        # postgresql:// for libpq and framehook alike, whatever form the setting used.
        self.server = normalize_url(server_url).set(drivername="postgresql")
        self.names: list[str] = []

    def url(self, name: str) -> str:
        """The URL of database ``name`` (psycopg and framehook both take it)."""
        return self.server.set(database=name).render_as_string(hide_password=False)

    def admin(self) -> psycopg.Connection[Any]:
        import psycopg

        return psycopg.connect(
            self.url(self.server.database or "postgres"), autocommit=True, connect_timeout=5
        )

    def check(self) -> None:
        """Raise whatever psycopg raises if the server is not reachable."""
        with self.admin() as connection:
            connection.execute("SELECT 1")

    def create(self, template: str | None = None) -> str:
        """A new empty database (or a copy of ``template``); returns its name."""
        import psycopg
        from psycopg import sql

        name = f"framehook_bench_{secrets.token_hex(6)}"
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template is not None:
            statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
        # Recorded before it exists, so a database half-made by an interrupt is dropped too.
        self.names.append(name)
        with self.admin() as connection:
            for attempt in range(20):
                try:
                    connection.execute(statement)
                    break
                except psycopg.errors.ObjectInUse:
                    # An autovacuum worker can be on the template for a moment: wait it out.
                    if attempt == 19:
                        raise
                    time.sleep(0.5)
        return name

    def drop_all(self) -> list[str]:
        """Drop every database made here; returns the problems (empty when all went)."""
        import psycopg
        from psycopg import sql

        problems = []
        for name in reversed(self.names):
            try:
                with self.admin() as connection:
                    # FORCE: a child killed mid-run may leave a session behind.
                    connection.execute(
                        sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(
                            sql.Identifier(name)
                        )
                    )
            except psycopg.Error as exc:
                problems.append(f"could not drop scratch database {name}: {exc}")
        self.names.clear()
        return problems


# --------------------------------------------------------------------------- load generators


def percentile(ordered: Sequence[float], pct: float) -> float:
    """The nearest-rank percentile (as wrk computes it) of sorted values; 0 for none."""
    if not ordered:
        return 0.0
    rank = max(0, math.ceil(pct / 100 * len(ordered)) - 1)
    return ordered[rank]


@dataclass(slots=True)
class LoadResult:
    """What one load-generator run saw."""

    generator: str
    duration_s: float
    sent: int
    statuses: dict[int, int]
    socket_errors: dict[str, int]
    p50_ms: float
    p99_ms: float
    max_ms: float
    cpu_s: float
    acked_ids: list[str] = field(repr=False)

    @classmethod
    def from_latencies(
        cls,
        generator: str,
        duration_s: float,
        sent: int,
        statuses: Mapping[int, int],
        socket_errors: Mapping[str, int],
        latencies: Sequence[float],
        cpu_s: float,
        acked_ids: list[str],
    ) -> LoadResult:
        """A Python generator's run, its percentiles from every request's latency (in seconds,
        sorted)."""
        return cls(
            generator=generator,
            duration_s=duration_s,
            sent=sent,
            statuses=dict(statuses),
            socket_errors=dict(socket_errors),
            p50_ms=percentile(latencies, 50) * 1000,
            p99_ms=percentile(latencies, 99) * 1000,
            max_ms=(latencies[-1] if latencies else 0.0) * 1000,
            cpu_s=cpu_s,
            acked_ids=acked_ids,
        )

    @property
    def responses(self) -> int:
        return sum(self.statuses.values())

    @property
    def ok(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def non_2xx(self) -> int:
        return self.responses - self.ok

    @property
    def errors(self) -> int:
        return sum(self.socket_errors.values())

    @property
    def unanswered(self) -> int:
        """Requests written but never answered: in flight when the generator stopped."""
        return max(0, self.sent - self.responses - self.errors)

    @property
    def rps(self) -> float:
        return self.responses / self.duration_s if self.duration_s > 0 else 0.0

    @property
    def generator_cpu(self) -> float:
        return self.cpu_s / self.duration_s if self.duration_s > 0 else 0.0


@dataclass(frozen=True, slots=True)
class Replay:
    """One load-generator run over a deliveries file (``write_deliveries``'s format)."""

    ports: Sequence[int]  # generator unit i drives ports[i % len(ports)]
    data: Path
    start: int  # the position of unit 0's first delivery; the deliveries wrap around
    seconds: float
    connections: int
    workdir: Path  # where the generator's files go
    tag: str  # names those files
    units: int = 1  # wrk threads or generator processes
    stride: int = 0  # unit i starts i * stride further on, so units send different events
    cpu: int | None = None  # the CPU to pin the generator to
    collect_ids: bool = False  # keep every 2xx's X-Request-Id in LoadResult.acked_ids


# A load generator: wrk, or a scenario's Python fallback.
Generator = Callable[[Replay], LoadResult]


# Globals, not locals: done() reads them from each thread's Lua state with thread:get().
WRK_SCRIPT = """\
-- Generated by bench/_harness.py: replays pre-signed Apiframe deliveries in order.
-- args: start position, deliveries file. Globals set above this text by the harness: route
-- (the webhook path), ports (thread i connects to the i-th, wrapping), stride (thread i starts
-- i * stride further on) and ids_path (where done() writes the X-Request-Id of every 2xx; nil:
-- none are kept).
reqs = {}     -- the deliveries, formatted once as HTTP requests so request() costs nothing
n = 0
position = 0  -- absolute position; the index wraps at n
sent = 0      -- request() calls: wrk calls it again for a write it must retry, so a few
              -- more than were really sent, which only loosens the database check by as many
counts = {}   -- status -> responses
acked = {}    -- X-Request-Id of every 2xx answer, to look up in framehook's database
cpu_init = 0
threads = {}
made = 0

function setup(thread)
  local port = ports[made % #ports + 1]
  thread.addr = wrk.lookup("127.0.0.1", tostring(port))[1]
  thread:set("thread_index", made)
  made = made + 1
  table.insert(threads, thread)
end

function init(args)
  position = tonumber(args[1]) + thread_index * stride
  for line in io.lines(args[2]) do
    local event, signature, body = line:match("^([^\\t]*)\\t([^\\t]*)\\t(.*)$")
    n = n + 1
    reqs[n] = wrk.format("POST", route, {
      ["Content-Type"] = "application/json",
      ["X-Webhook-Signature"] = signature,
      ["X-Webhook-Event"] = event,
    }, body)
  end
  -- No garbage collection while measuring: a cycle walks every loaded request and stalls
  -- this single thread, and each stall delays all the requests in flight, which moved
  -- framehook's p99 from ~25 ms to ~150 ms (300k deliveries loaded). A run allocates only tens
  -- of MB without it.
  collectgarbage("collect")
  collectgarbage("stop")
  -- Process CPU after loading, so the generator's CPU share excludes start-up.
  cpu_init = os.clock()
end

function request()
  local i = position % n + 1
  position = position + 1
  sent = sent + 1
  return reqs[i]
end

function response(status, headers, body)
  counts[status] = (counts[status] or 0) + 1
  if ids_path and status >= 200 and status < 300 then
    local rid = headers["x-request-id"] or headers["X-Request-Id"]
    if rid then acked[#acked + 1] = rid end
  end
end

function done(summary, latency, requests)
  local e = summary.errors
  print(string.format("BENCH duration_us %d", summary.duration))
  print(string.format("BENCH latency_us %d %d %d",
    latency:percentile(50), latency:percentile(99), latency.max))
  for _, kind in ipairs({"connect", "read", "write", "timeout"}) do
    print(string.format("BENCH error %s %d", kind, e[kind]))
  end
  local ids = ids_path and io.open(ids_path, "w")
  local first_cpu = nil
  for _, t in ipairs(threads) do
    print(string.format("BENCH sent %d", t:get("sent")))
    for status, count in pairs(t:get("counts")) do
      print(string.format("BENCH status %d %d", status, count))
    end
    if ids then
      for _, rid in ipairs(t:get("acked")) do ids:write(rid, "\\n") end
    end
    local c = t:get("cpu_init")
    if first_cpu == nil or c > first_cpu then first_cpu = c end
  end
  if ids then ids:close() end
  print(string.format("BENCH cpu_s %.3f", os.clock() - (first_cpu or 0)))
end
"""

_BENCH_LINE = re.compile(r"^BENCH (\w+) (.*)$")


@dataclass(frozen=True)
class WrkSummary:
    """What the replay script's ``done()`` printed (``BENCH key values`` lines)."""

    values: dict[str, list[str]]
    statuses: dict[int, int]
    errors: dict[str, int]
    sent: int

    def result(self, acked_ids: list[str]) -> LoadResult:
        """The run as a :class:`LoadResult` (socket errors that did not happen left out)."""
        p50, p99, worst = (int(v) / 1000 for v in self.values["latency_us"])
        return LoadResult(
            generator="wrk",
            duration_s=int(self.values["duration_us"][0]) / 1e6,
            sent=self.sent,
            statuses=self.statuses,
            socket_errors={k: v for k, v in self.errors.items() if v},
            p50_ms=p50,
            p99_ms=p99,
            max_ms=worst,
            cpu_s=float(self.values["cpu_s"][0]),
            acked_ids=acked_ids,
        )


def parse_wrk(stdout: str, saved: Path) -> WrkSummary:
    """Read the ``BENCH`` lines of a wrk run (its whole output is in ``saved``)."""
    values: dict[str, list[str]] = {}
    statuses: Counter[int] = Counter()
    errors: dict[str, int] = {}
    sent = 0
    for line in stdout.splitlines():
        match = _BENCH_LINE.match(line)
        if match is None:
            continue
        key, rest = match.group(1), match.group(2).split()
        if key == "status":
            statuses[int(rest[0])] += int(rest[1])
        elif key == "error":
            errors[rest[0]] = int(rest[1])
        elif key == "sent":
            sent += int(rest[0])
        else:
            values[key] = rest
    if "duration_us" not in values:
        raise RuntimeError(f"wrk printed no summary; output in {saved}")
    return WrkSummary(values, dict(statuses), errors, sent)


def run_wrk(replay: Replay) -> LoadResult:
    """One wrk run, ``replay.units`` threads (whole seconds: wrk takes nothing finer)."""
    wrk = shutil.which("wrk")
    assert wrk is not None
    workdir, tag = replay.workdir, replay.tag
    ids = workdir / f"acked-{tag}.txt"
    script = workdir / f"replay-{tag}.lua"
    # done() runs in wrk's main Lua state, which never sees init()'s args: the settings are
    # baked into each run's copy of the script instead. JSON literals of ASCII text and of
    # integer lists read the same in Lua, brackets aside.
    script.write_text(
        f"route = {json.dumps(ROUTE)}\nports = {{{', '.join(map(str, replay.ports))}}}\n"
        f"stride = {replay.stride}\n"
        f"ids_path = {json.dumps(str(ids)) if replay.collect_ids else 'nil'}\n" + WRK_SCRIPT
    )
    whole = max(1, math.ceil(replay.seconds))
    url = f"http://127.0.0.1:{replay.ports[0]}{ROUTE}"
    argv = [
        *taskset(replay.cpu), wrk,
        "-t", str(replay.units), "-c", str(replay.connections), "-d", f"{whole}s",
        "--latency", "--timeout", f"{REQUEST_TIMEOUT_S:.0f}s",
        "-s", str(script), url, "--", str(replay.start), str(replay.data),
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=whole + 120, check=False)
    saved = workdir / f"wrk-{tag}.out"
    saved.write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout}")
    summary = parse_wrk(done.stdout, saved)
    return summary.result(acked_ids=ids.read_text().split() if ids.exists() else [])


def choose_generator(
    requested: str, fallback: str, run_fallback: Generator, note: str
) -> tuple[str, Generator] | None:
    """wrk when installed (or asked for), else the scenario's ``fallback``; None (after saying
    why) when wrk is asked for but missing."""
    has_wrk = shutil.which("wrk") is not None
    if requested == "wrk" and not has_wrk:
        print("error: --generator wrk but wrk is not installed (apt-get install -y wrk)")
        return None
    if requested == fallback or not has_wrk:
        if requested == "auto":
            print(f"note: wrk not found (apt-get install -y wrk); {note}")
        return fallback, run_fallback
    return "wrk", run_wrk


def whole_seconds(args: argparse.Namespace) -> None:
    """Round ``args.warmup`` and ``args.duration`` up to whole seconds, saying so."""
    # wrk's -d takes whole seconds; say so rather than silently measuring longer.
    for name in ("warmup", "duration"):
        value = getattr(args, name)
        if value > 0 and value != math.ceil(value):
            print(f"note: wrk runs whole seconds: --{name} {value:g} -> {math.ceil(value)}")
            setattr(args, name, float(math.ceil(value)))


# --------------------------------------------------------------------------- measuring


def cpu_times() -> tuple[float, float]:
    """(busy, total) jiffies of the whole machine so far (/proc/stat's first line)."""
    fields = [float(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0.0)  # idle + iowait
    total = sum(fields[:8])  # guest time is already counted in user
    return total - idle, total


def busy_share(before: tuple[float, float], after: tuple[float, float]) -> float:
    """The share of all CPUs' time spent busy between two ``cpu_times``."""
    total = after[1] - before[1]
    return (after[0] - before[0]) / total if total > 0 else 0.0


@dataclass(slots=True)
class Measurement:
    """A warm-up and a measured run of one load generator against running servers."""

    warmup: LoadResult | None
    measured: LoadResult
    position: int  # where the measured run started in the deliveries (unit 0's position)
    server_cpu: float  # the servers' CPU over the measured run, in cores
    machine_busy: float  # the share of all CPUs busy over the measured run


def measure_servers(
    servers: Sequence[Server],
    probes: Sequence[tuple[str, int]],
    generator: Generator,
    warmup: Replay,
    seconds: float,
    before_stop: Callable[[], None] | None = None,
) -> Measurement:
    """Start ``servers``, warm them up with ``warmup`` (none if it lasts 0 s), measure for
    ``seconds``, call ``before_stop`` (while they still run: a worker's backlog to wait for)
    and stop them, whatever happens."""
    try:
        for server in servers:
            server.start()
        for server in servers:
            server.wait_ready(probes)
        position = 0
        warm = None
        if warmup.seconds > 0:
            # The measured run continues where the warm-up stopped, so it sees new events, not
            # the warm-up's again (which framehook would answer as cheap duplicates).
            warm = generator(warmup)
            position = warm.sent // warmup.units
        cpu_before = sum(s.cpu_seconds() for s in servers)
        machine_before = cpu_times()
        measured = generator(replace(warmup, start=position, seconds=seconds, tag="run"))
        machine = busy_share(machine_before, cpu_times())
        server_cpu = (sum(s.cpu_seconds() for s in servers) - cpu_before) / measured.duration_s
        for server in servers:
            server.check_alive()
        if before_stop is not None:
            before_stop()
    finally:
        for server in servers:
            server.stop()
    return Measurement(warm, measured, position, server_cpu, machine)


def measure_server(
    server: Server,
    probes: Sequence[tuple[str, int]],
    generator: Generator,
    data: Path,
    args: argparse.Namespace,
    cpus: CpuPlan,
    workdir: Path,
    *,
    collect_ids: bool = False,
) -> Measurement:
    """The closed-loop load on one server: started, warmed up for ``args.warmup`` seconds and
    measured for ``args.duration``, ``args.connections`` at once replaying ``data`` from its
    start (the generator on ``cpus.generator``), then stopped."""
    warmup = Replay(
        [server.port], data, 0, args.warmup, args.connections, workdir, "warmup",
        cpu=cpus.generator, collect_ids=collect_ids,
    )  # fmt: skip
    return measure_servers([server], probes, generator, warmup, args.duration)


def each_round(
    rounds: int, cases: Sequence[_Case], measure: Callable[[_Case, int], _Run], broken: list[str]
) -> list[_Run]:
    """``measure(case, round)`` for each case in turn, ``rounds`` times over: the runs made.
    What ends the run early is noted in ``broken`` (``noting_failures``; SIGTERM ends the
    benchmark at once), keeping the runs made until then."""
    runs: list[_Run] = []
    with noting_failures(broken, sigterm=False):
        for round_no in range(1, rounds + 1):
            for case in cases:
                runs.append(measure(case, round_no))
    return runs


# --------------------------------------------------------------------------- the run


def terminate(signum: int, _frame: FrameType | None) -> None:
    """The SIGTERM handler: a SystemExit, so the ``finally`` blocks stop the servers."""
    raise SystemExit(128 + signum)


@contextmanager
def noting_failures(
    broken: list[str], *errors: type[Exception], sigterm: bool = True
) -> Iterator[None]:
    """Note in ``broken`` what ends a run early, rather than a traceback: a server or child that
    failed, ``errors``, an interrupt and (``sigterm``) ``terminate``'s SIGTERM."""
    caught: tuple[type[Exception], ...] = (
        RuntimeError,
        OSError,
        TimeoutError,
        subprocess.TimeoutExpired,
        *errors,
    )
    try:
        yield
    except caught as exc:
        broken.append(f"{exc.__class__.__name__}: {exc}")
    except KeyboardInterrupt:
        broken.append("interrupted")
    except SystemExit:
        if not sigterm:
            raise
        # The servers are stopped by now; still report what was measured.
        broken.append("terminated (SIGTERM)")


def finish(
    broken: Sequence[str],
    report: dict[str, Any],
    json_path: Path | None,
    scratch: Path,
    *,
    keep: bool = False,
) -> int:
    """Say what broke, write the JSON ``report``, remove the scratch directory unless the run
    broke or ``keep``; the exit status: 1 when broken, else 0 (targets are not enforced)."""
    for problem in broken:
        print(f"BROKEN RUN: {problem}", file=sys.stderr)
    if json_path is not None:
        json_path.parent.mkdir(parents=True, exist_ok=True)
        json_path.write_text(json.dumps(report, indent=2) + "\n")
    if broken or keep:
        print(f"scratch directory kept: {scratch}")
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    return 1 if broken else 0


# --------------------------------------------------------------------------- tables


@dataclass(frozen=True, slots=True)
class Column:
    """A table column: its title, width, a format spec for its values, left or right aligned."""

    title: str
    width: int
    spec: str = ""
    left: bool = False

    @property
    def align(self) -> str:
        return "<" if self.left else ">"

    def cell(self, value: object) -> str:
        return format(value, f"{self.align}{self.width}{self.spec}")


def print_table(rows: Sequence[Sequence[object]], columns: Sequence[Column]) -> None:
    """A header, a rule under it and one line a row (values in ``columns``' order)."""
    header = " ".join(format(c.title, f"{c.align}{c.width}") for c in columns)
    print(header)
    print("-" * len(header))
    for row in rows:
        print(" ".join(c.cell(value) for c, value in zip(columns, row, strict=True)))
