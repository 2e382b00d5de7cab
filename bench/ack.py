"""Acknowledgement throughput: framehook's receiver against a bare signature-checking endpoint.

One run starts each server in turn (bare, then framehook; ``--rounds`` repeats the pair), the
server pinned to one CPU and the load generator to the other, replays the *same* pre-signed,
Apiframe-like deliveries against both, and prints requests/s, p50/p99 latency and the ratio
framehook/bare. Targets: ratio >= 0.5 with default SQLite durability, framehook p99 <= 25 ms.

Exit status: 0 when the run is sound, whether or not the targets are met (it is a measurement);
1 when it is broken: a server did not start, a request failed (non-2xx, timeout, socket error)
or an acknowledged delivery is missing from framehook's database; 2 for unusable arguments.

Usage::

    .venv/bin/python bench/ack.py [--duration 10] [--warmup 2] [--connections 32]
        [--generator auto|wrk|httpx] [--rounds 1] [--json PATH] [--keep]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import multiprocessing
import os
import random
import re
import secrets
import shutil
import signal
import socket
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import AsyncExitStack, closing
from dataclasses import asdict, dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

import httpx

from receiver import sign

ROOT = Path(__file__).resolve().parents[1]
ROUTE = "/webhooks/apiframe"
MODEL = "midjourney"
TARGET_RATIO = 0.5
TARGET_P99_MS = 25.0
# wrk gives up on a request after this long and counts a timeout; framehook itself answers 503
# after 10 s (intake timeout), so anything near this is already far outside the p99 target.
REQUEST_TIMEOUT_S = 5.0
# Above this share of its CPU the load generator, not the server, is probably the bottleneck.
SATURATED_GENERATOR = 0.9


# --------------------------------------------------------------------------- workload


@dataclass(frozen=True, slots=True)
class Signed:
    """One delivery as Apiframe would send it: event header, signature header, raw body."""

    event: str
    signature: str
    body: bytes


@dataclass(slots=True)
class Workload:
    """The pre-signed deliveries, replayed in order against every server."""

    deliveries: list[Signed]
    jobs: int
    duplicates: int
    events: Counter[str]


@dataclass(slots=True)
class _Job:
    id: str
    progress: int = 0


def _job_id(rng: random.Random) -> str:
    # From the seeded generator, not uuid4(): the same seed gives the same workload.
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _progress_body(job_id: str, progress: int) -> dict[str, Any]:
    return {
        "event": "progress",
        "jobId": job_id,
        "status": "PROCESSING",
        "progress": progress,
        "model": MODEL,
    }


def _completed_body(job_id: str) -> dict[str, Any]:
    # The shape of shared/fixtures/apiframe/completed-midjourney.json, job id substituted.
    image = f"https://cdn2.apiframe.ai/images/{job_id}"
    return {
        "event": "completed",
        "jobId": job_id,
        "status": "COMPLETED",
        "progress": 100,
        "result": {
            "images": [f"{image}-{n}.png" for n in range(1, 5)],
            "gridUrl": f"{image}-grid.png",
        },
        "model": MODEL,
        "creditCost": 16,
        "completedAt": "2026-11-20T10:00:32.000Z",
    }


def _failed_body(job_id: str) -> dict[str, Any]:
    # The shape of shared/fixtures/apiframe/failed-content-policy.json; the model is the job's
    # own, so a job's events agree with each other as Apiframe's do.
    return {
        "event": "failed",
        "jobId": job_id,
        "status": "FAILED",
        "error": "Provider returned an error: content policy violation",
        "model": MODEL,
    }


def generate_workload(
    count: int,
    api_key: str,
    *,
    seed: int = 1,
    in_flight: int = 50,
    duplicate_rate: float = 0.05,
    failure_rate: float = 0.10,
    retry_window: int = 500,
) -> Workload:
    """``count`` signed deliveries from ``in_flight`` interleaved, rolling jobs.

    Each job sends progress events rising by 5-15 points, then one ``completed`` (or, for
    ``failure_rate`` of jobs, ``failed``) event, and is replaced by a new job. About
    ``duplicate_rate`` of the deliveries are exact resends of a recent one (within
    ``retry_window``), as Apiframe retries look.
    """
    rng = random.Random(seed)
    jobs = [_Job(_job_id(rng)) for _ in range(in_flight)]
    started = in_flight
    duplicates = 0
    events: Counter[str] = Counter()
    out: list[Signed] = []
    while len(out) < count:
        if out and rng.random() < duplicate_rate:
            out.append(out[rng.randrange(max(0, len(out) - retry_window), len(out))])
            duplicates += 1
            events["duplicate"] += 1
            continue
        slot = rng.randrange(in_flight)
        job = jobs[slot]
        step = rng.randint(5, 15)
        if job.progress + step < 100:
            job.progress += step
            name, payload = "progress", _progress_body(job.id, job.progress)
        else:
            failed = rng.random() < failure_rate
            name = "failed" if failed else "completed"
            payload = _failed_body(job.id) if failed else _completed_body(job.id)
            jobs[slot] = _Job(_job_id(rng))
            started += 1
        body = json.dumps(payload, separators=(",", ":")).encode()
        out.append(Signed(name, sign(body, api_key), body))
        events[name] += 1
    return Workload(out, started, duplicates, events)


def write_deliveries(path: Path, deliveries: Sequence[Signed]) -> None:
    """One delivery per line, ``event<TAB>signature<TAB>body``: what both generators read.

    Compact JSON never contains a raw tab or newline, so the format needs no escaping.
    """
    with path.open("w", encoding="ascii") as out:
        for d in deliveries:
            out.write(f"{d.event}\t{d.signature}\t{d.body.decode('ascii')}\n")


def read_deliveries(path: Path) -> list[Signed]:
    """The inverse of ``write_deliveries``."""
    result: list[Signed] = []
    with path.open(encoding="ascii") as lines:
        for line in lines:
            event, signature, body = line.rstrip("\n").split("\t", 2)
            result.append(Signed(event, signature, body.encode("ascii")))
    return result


# --------------------------------------------------------------------------- servers


@dataclass(frozen=True, slots=True)
class CpuPlan:
    """Which CPU the server and the load generator get, or why they are not pinned."""

    server: int | None
    generator: int | None
    note: str

    def prefix(self, cpu: int | None) -> list[str]:
        """``taskset -c N`` for ``cpu``, or nothing when not pinning."""
        taskset = shutil.which("taskset")
        return [taskset, "-c", str(cpu)] if cpu is not None and taskset else []


def plan_cpus() -> CpuPlan:
    """Server on the first allowed CPU, generator on the second, so they never share a core."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        return CpuPlan(None, None, f"only {len(allowed)} CPU available: nothing pinned")
    if shutil.which("taskset") is None:
        return CpuPlan(None, None, "taskset not found (util-linux): nothing pinned")
    note = f"server on CPU {allowed[0]}, generator on CPU {allowed[1]}"
    return CpuPlan(allowed[0], allowed[1], note)


def free_port() -> int:
    """A port the kernel just handed out (tiny race with the server binding it; fine here)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _clean_environment() -> dict[str, str]:
    # A developer's FRAMEHOOK_* settings (writers, batch size, database) would silently change
    # what is measured: the bench measures framehook's defaults, so drop them all.
    return {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("FRAMEHOOK_", "APIFRAME_")) and k != "PYTHONPATH"
    }


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

    def _log_tail(self, lines: int = 15) -> str:
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
                f"{self.name} exited with status {code}; log {self.log}:\n{self._log_tail()}"
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
                            f"{timeout:.0f} s; log {self.log}:\n{self._log_tail()}"
                        )
                    time.sleep(0.05)

    def cpu_seconds(self) -> float:
        """User + system CPU of the server process (all its threads) so far."""
        assert self.process is not None
        stat = Path(f"/proc/{self.process.pid}/stat").read_text()
        # Fields after "(comm)": state is field 3, utime 14 and stime 15.
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


def framehook_server(workdir: Path, api_key: str, cpus: CpuPlan, worker: bool = True) -> Server:
    """framehook with its defaults: SQLite in WAL with synchronous=FULL, the download handler."""
    port = free_port()
    script = Path(sys.executable).with_name("framehook")
    command = [str(script)] if script.exists() else [sys.executable, "-m", "receiver"]
    env = _clean_environment() | {
        "APIFRAME_API_KEY": api_key,
        "FRAMEHOOK_DATABASE_URL": f"sqlite:///{workdir / 'fh.db'}",
        "FRAMEHOOK_HANDLERS": "download",
        "FRAMEHOOK_LOG_FORMAT": "json",
    }
    serve = ["serve", "--host", "127.0.0.1", "--port", str(port)]
    if not worker:
        serve.append("--no-worker")  # the receiver alone, as replicas behind workers run it
    argv = [*cpus.prefix(cpus.server), *command, *serve]
    # cwd is the scratch directory so no stray .env of the developer's is read.
    return Server("framehook", argv, env, workdir, workdir / "framehook.log", port)


def bare_server(workdir: Path, api_key: str, cpus: CpuPlan) -> Server:
    """bench/bare_app.py under uvicorn with the options ``framehook serve`` passes to uvicorn."""
    port = free_port()
    env = _clean_environment() | {"APIFRAME_API_KEY": api_key}
    argv = [
        *cpus.prefix(cpus.server),
        sys.executable, "-m", "uvicorn", "bench.bare_app:app",
        "--app-dir", str(ROOT),
        "--host", "127.0.0.1", "--port", str(port),
        "--no-access-log", "--log-level", "warning",
        # framehook runs uvicorn with server_header=False and proxy_headers=False: match it.
        "--no-server-header", "--no-proxy-headers",
    ]  # fmt: skip
    return Server("bare", argv, env, workdir, workdir / "bare.log", port)


# --------------------------------------------------------------------------- load generators


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


Generator = Callable[[str, Path, int, float, int, CpuPlan, Path, str], LoadResult]

# Globals, not locals: done() reads them from the thread's Lua state with thread:get().
WRK_SCRIPT = """\
-- Generated by bench/ack.py: replays pre-signed Apiframe deliveries in order.
-- args: start position, deliveries file. Globals set above this text by the harness:
-- route (the webhook path) and wrk_ids_path (where done() writes acknowledged ids).
bodies = {}   -- raw bodies
meta = {}     -- {signature, event} per body
reqs = {}     -- the same, formatted once as HTTP requests so request() costs nothing
n = 0
position = 0  -- absolute position; the index wraps at n
sent = 0      -- request() calls: wrk calls it again for a write it must retry, so a few
              -- more than were really sent, which only loosens the database check by as many
counts = {}   -- status -> responses
acked = {}    -- X-Request-Id of every 2xx answer, to look up in framehook's database
cpu_init = 0
threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  position = tonumber(args[1])
  for line in io.lines(args[2]) do
    local event, signature, body = line:match("^([^\\t]*)\\t([^\\t]*)\\t(.*)$")
    n = n + 1
    bodies[n] = body
    meta[n] = {signature, event}
  end
  for i = 1, n do
    reqs[i] = wrk.format("POST", route, {
      ["Content-Type"] = "application/json",
      ["X-Webhook-Signature"] = meta[i][1],
      ["X-Webhook-Event"] = meta[i][2],
    }, bodies[i])
  end
  -- Only reqs is needed from here on. Then no garbage collection while measuring: a cycle
  -- walks every loaded request and stalls this single thread, and each stall delays all the
  -- requests in flight, which moved framehook's p99 from ~25 ms to ~150 ms (300k deliveries
  -- loaded). A run allocates only tens of MB without it.
  bodies = nil
  meta = nil
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
  if status >= 200 and status < 300 then
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
  local ids = io.open(wrk_ids_path or "/dev/null", "w")
  local first_cpu = nil
  for _, t in ipairs(threads) do
    print(string.format("BENCH sent %d", t:get("sent")))
    for status, count in pairs(t:get("counts")) do
      print(string.format("BENCH status %d %d", status, count))
    end
    for _, rid in ipairs(t:get("acked")) do ids:write(rid, "\\n") end
    local c = t:get("cpu_init")
    if first_cpu == nil or c > first_cpu then first_cpu = c end
  end
  ids:close()
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


def run_wrk(
    url: str,
    data: Path,
    start: int,
    seconds: float,
    connections: int,
    cpus: CpuPlan,
    workdir: Path,
    tag: str,
) -> LoadResult:
    """One wrk run (``-t 1 -c connections``, whole seconds: wrk takes nothing finer)."""
    wrk = shutil.which("wrk")
    assert wrk is not None
    ids = workdir / f"acked-{tag}.txt"
    script = workdir / f"replay-{tag}.lua"
    # done() runs in wrk's main Lua state, which never sees init()'s args: the ids path is
    # baked into each run's copy of the script instead.
    # JSON string literals of ASCII text are valid Lua string literals.
    script.write_text(
        f"route = {json.dumps(ROUTE)}\nwrk_ids_path = {json.dumps(str(ids))}\n" + WRK_SCRIPT
    )
    whole = max(1, math.ceil(seconds))
    argv = [
        *cpus.prefix(cpus.generator), wrk,
        "-t", "1", "-c", str(connections), "-d", f"{whole}s",
        "--latency", "--timeout", f"{REQUEST_TIMEOUT_S:.0f}s",
        "-s", str(script), url, "--", str(start), str(data),
    ]  # fmt: skip
    done = subprocess.run(argv, capture_output=True, text=True, timeout=whole + 120, check=False)
    (workdir / f"wrk-{tag}.out").write_text(done.stdout + done.stderr)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed ({done.returncode}): {done.stderr.strip() or done.stdout}")
    summary = parse_wrk(done.stdout, workdir / f"wrk-{tag}.out")
    return summary.result(acked_ids=ids.read_text().split() if ids.exists() else [])


def _percentile(ordered: Sequence[float], pct: float) -> float:
    if not ordered:
        return 0.0
    rank = max(0, math.ceil(pct / 100 * len(ordered)) - 1)  # nearest rank, like wrk
    return ordered[rank]


async def _httpx_drive(
    url: str, deliveries: Sequence[Signed], start: int, seconds: float, connections: int
) -> dict[str, Any]:
    position = start
    sent = 0
    latencies: list[float] = []
    statuses: Counter[int] = Counter()
    errors: Counter[str] = Counter()
    acked: list[str] = []
    n = len(deliveries)
    # One single-connection client per worker: a shared httpcore pool rescans all of its
    # connections on every request, which costs more CPU than the requests themselves.
    limits = httpx.Limits(max_connections=1, max_keepalive_connections=1)
    # The URL is plain http, but every client would still load the CA bundle: share one.
    tls = ssl.create_default_context()

    async def worker(client: httpx.AsyncClient) -> None:
        nonlocal position, sent
        # Stop sending at the deadline but wait for what is in flight: every request sent is
        # answered or failed, so the database check is exact.
        while time.perf_counter() < deadline:
            d = deliveries[position % n]
            position += 1
            sent += 1
            headers = {
                "Content-Type": "application/json",
                "X-Webhook-Signature": d.signature,
                "X-Webhook-Event": d.event,
            }
            t0 = time.perf_counter()
            try:
                answer = await client.post(url, content=d.body, headers=headers)
            except httpx.TimeoutException:
                errors["timeout"] += 1
                continue
            except httpx.TransportError:
                errors["socket"] += 1
                continue
            latencies.append(time.perf_counter() - t0)
            statuses[answer.status_code] += 1
            request_id = answer.headers.get("x-request-id")
            if 200 <= answer.status_code < 300 and request_id:
                acked.append(request_id)

    async with AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(
                httpx.AsyncClient(
                    limits=limits, timeout=REQUEST_TIMEOUT_S, trust_env=False, verify=tls
                )
            )
            for _ in range(connections)
        ]
        began = time.perf_counter()
        cpu_began = time.process_time()
        deadline = began + seconds
        await asyncio.gather(*(worker(client) for client in clients))
        elapsed = time.perf_counter() - began
        cpu = time.process_time() - cpu_began
    latencies.sort()
    return {
        "generator": "httpx",
        "duration_s": elapsed,
        "sent": sent,
        "statuses": dict(statuses),
        "socket_errors": dict(errors),
        "p50_ms": _percentile(latencies, 50) * 1000,
        "p99_ms": _percentile(latencies, 99) * 1000,
        "max_ms": (latencies[-1] if latencies else 0.0) * 1000,
        "cpu_s": cpu,
        "acked_ids": acked,
    }


def _httpx_child(
    url: str, data: str, start: int, seconds: float, connections: int, cpu: int | None
) -> dict[str, Any]:
    # Runs in its own process so the client never competes with the harness for the GIL.
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})
    drive = _httpx_drive(url, read_deliveries(Path(data)), start, seconds, connections)
    try:
        import uvloop  # uvicorn[standard] brings it; it makes this client about 40% faster
    except ImportError:
        return asyncio.run(drive)
    return uvloop.run(drive)


def run_httpx(
    url: str,
    data: Path,
    start: int,
    seconds: float,
    connections: int,
    cpus: CpuPlan,
    workdir: Path,
    tag: str,
) -> LoadResult:
    """The fallback generator: asyncio + httpx in a child process, ``connections`` at once."""
    del workdir, tag  # nothing to keep: the child returns everything
    with ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("spawn")) as pool:
        future = pool.submit(
            _httpx_child, url, str(data), start, seconds, connections, cpus.generator
        )
        raw = future.result(timeout=seconds + 120)
    return LoadResult(**raw)


# --------------------------------------------------------------------------- runs


@dataclass(slots=True)
class StoreCheck:
    """framehook's database against what the load generator saw acknowledged."""

    rows: int
    acked: int
    acked_ids: int
    unanswered: int
    missing: int
    ok: bool
    note: str


@dataclass(slots=True)
class Run:
    """One server, one warm-up and one measured run."""

    server: str
    round: int
    measured: LoadResult
    warmup: LoadResult | None
    server_cpu: float
    end_position: int
    store: StoreCheck | None = None

    def row(self) -> dict[str, Any]:
        m = self.measured
        return {
            "server": self.server,
            "round": self.round,
            "requests_per_s": round(m.rps, 1),
            "p50_ms": round(m.p50_ms, 3),
            "p99_ms": round(m.p99_ms, 3),
            "max_ms": round(m.max_ms, 3),
            "responses": m.responses,
            "statuses": {str(k): v for k, v in sorted(m.statuses.items())},
            "non_2xx": m.non_2xx,
            "socket_errors": m.socket_errors,
            "duration_s": round(m.duration_s, 3),
            "server_cpu": round(self.server_cpu, 3),
            "generator_cpu": round(m.generator_cpu, 3),
            "end_position": self.end_position,
            "warmup_requests": None if self.warmup is None else self.warmup.responses,
            "store_check": None if self.store is None else asdict(self.store),
        }


def check_store(db: Path, results: Sequence[LoadResult]) -> StoreCheck:
    """Every acknowledged delivery must be a ``deliveries`` row.

    Each 2xx answer carries framehook's ``X-Request-Id``, stored with the row, so the check is
    by identity, not only by count. wrk stops mid-flight: requests it sent but never saw
    answered may have been stored too, so rows may exceed the 2xx count by that many, no more.
    """
    acked = sum(r.ok for r in results)
    ids = {i for r in results for i in r.acked_ids}
    unanswered = sum(r.unanswered for r in results)
    with closing(sqlite3.connect(db)) as connection:
        rows = connection.execute("SELECT count(*) FROM deliveries").fetchone()[0]
        stored = {row[0] for row in connection.execute("SELECT request_id FROM deliveries")}
    missing = len(ids - stored)
    problems = []
    if len(ids) != acked:
        problems.append(f"{acked - len(ids)} acknowledgements without a usable X-Request-Id")
    if missing:
        problems.append(f"{missing} acknowledged deliveries are not in the database")
    if not acked <= rows <= acked + unanswered:
        problems.append(f"{rows} rows for {acked} acknowledgements (+{unanswered} unanswered)")
    return StoreCheck(rows, acked, len(ids), unanswered, missing, not problems, "; ".join(problems))


def measure(
    kind: str,
    round_no: int,
    generator: Generator,
    args: argparse.Namespace,
    data: Path,
    api_key: str,
    cpus: CpuPlan,
    scratch: Path,
) -> Run:
    """Start one server, warm it up, measure it, stop it (and check framehook's database)."""
    workdir = scratch / f"{kind}-{round_no}"
    workdir.mkdir()
    if kind == "framehook":
        server = framehook_server(workdir, api_key, cpus, worker=not args.no_worker)
        probes = [("/healthz", 200), ("/readyz", 200)]
    else:
        server = bare_server(workdir, api_key, cpus)
        probes = [(ROUTE, 405)]  # a GET reaching the POST-only route: the app is serving
    url = server.base_url + ROUTE
    try:
        server.start()
        server.wait_ready(probes)
        position = 0
        warm = None
        if args.warmup > 0:
            # The measured run continues where the warm-up stopped, so it sees new events, not
            # the warm-up's again (which framehook would answer as cheap duplicates).
            warm = generator(url, data, 0, args.warmup, args.connections, cpus, workdir, "warmup")
            position = warm.sent
        cpu_before = server.cpu_seconds()
        measured = generator(
            url, data, position, args.duration, args.connections, cpus, workdir, "run"
        )
        server_cpu = (server.cpu_seconds() - cpu_before) / measured.duration_s
        server.check_alive()
    finally:
        server.stop()
    run = Run(kind, round_no, measured, warm, server_cpu, position + measured.sent)
    if kind == "framehook":
        run.store = check_store(workdir / "fh.db", [r for r in (warm, measured) if r is not None])
    return run


# --------------------------------------------------------------------------- report


def _print_table(runs: Sequence[Run]) -> None:
    header = (
        f"{'server':<10} {'rnd':>3} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} {'max ms':>8} "
        f"{'non-2xx':>7} {'errors':>6} {'srv cpu':>7} {'gen cpu':>7}"
    )
    print(header)
    print("-" * len(header))
    for run in runs:
        m = run.measured
        print(
            f"{run.server:<10} {run.round:>3} {m.rps:>9.1f} {m.p50_ms:>8.2f} {m.p99_ms:>8.2f} "
            f"{m.max_ms:>8.2f} {m.non_2xx:>7} {m.errors:>6} {run.server_cpu:>7.0%} "
            f"{m.generator_cpu:>7.0%}"
        )


def _choose_generator(requested: str) -> tuple[str, Generator] | None:
    has_wrk = shutil.which("wrk") is not None
    if requested == "wrk" and not has_wrk:
        print("error: --generator wrk but wrk is not installed (apt-get install -y wrk)")
        return None
    if requested == "httpx" or not has_wrk:
        if requested == "auto":
            print(
                "note: wrk not found (apt-get install -y wrk); falling back to the httpx client, "
                "which saturates its CPU long before the servers do: the ratio will read high."
            )
        return "httpx", run_httpx
    return "wrk", run_wrk


def _parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--duration", type=float, default=10.0, help="measured seconds per server")
    parser.add_argument("--warmup", type=float, default=2.0, help="warm-up seconds per server")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument("--generator", choices=("auto", "wrk", "httpx"), default="auto")
    parser.add_argument("--rounds", type=int, default=1, help="bare+framehook pairs to run")
    parser.add_argument("--json", type=Path, default=None, metavar="PATH", help="write results")
    parser.add_argument("--seed", type=int, default=1, help="workload seed")
    parser.add_argument(
        "--max-rate",
        type=float,
        default=25_000,
        help="requests/s the workload is sized for (more than either server reaches here)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch directory")
    parser.add_argument(
        "--no-worker",
        action="store_true",
        help="run framehook serve --no-worker (the receiver alone, without the embedded worker)",
    )
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.warmup < 0 or args.connections < 1 or args.rounds < 1:
        parser.error("--duration > 0, --warmup >= 0, --connections >= 1, --rounds >= 1")
    return args


def _terminate(signum: int, _frame: FrameType | None) -> None:
    # Turn SIGTERM into SystemExit so the finally blocks stop the servers.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark; returns the exit status."""
    args = _parse_args(argv)
    signal.signal(signal.SIGTERM, _terminate)
    chosen = _choose_generator(args.generator)
    if chosen is None:
        return 2
    generator_name, generator = chosen
    if generator_name == "wrk":
        # wrk's -d takes whole seconds; say so rather than silently measuring longer.
        for name in ("warmup", "duration"):
            value = getattr(args, name)
            if value > 0 and value != math.ceil(value):
                print(f"note: wrk runs whole seconds: --{name} {value:g} -> {math.ceil(value)}")
                setattr(args, name, float(math.ceil(value)))
    cpus = plan_cpus()
    api_key = "afk_bench_" + secrets.token_hex(16)
    count = max(10_000, math.ceil(args.max_rate * (args.warmup + args.duration)))
    began = time.perf_counter()
    workload = generate_workload(count, api_key, seed=args.seed)
    scratch = Path(tempfile.mkdtemp(prefix="framehook-bench-"))
    data = scratch / "deliveries.tsv"
    write_deliveries(data, workload.deliveries)
    print(
        f"workload: {count} signed deliveries ({dict(workload.events)}), {workload.jobs} jobs, "
        f"50 in flight; generated in {time.perf_counter() - began:.1f} s"
    )
    print(
        f"generator: {generator_name}, {args.connections} connections; {cpus.note}; "
        f"warm-up {args.warmup:g} s + {args.duration:g} s per server, {args.rounds} round(s)"
    )
    runs: list[Run] = []
    broken: list[str] = []
    try:
        for round_no in range(1, args.rounds + 1):
            for kind in ("bare", "framehook"):
                runs.append(measure(kind, round_no, generator, args, data, api_key, cpus, scratch))
    except (RuntimeError, OSError, TimeoutError, subprocess.TimeoutExpired) as exc:
        broken.append(f"{exc.__class__.__name__}: {exc}")
    except KeyboardInterrupt:
        broken.append("interrupted")
    print()
    _print_table(runs)
    print()
    for run in runs:
        results = [r for r in (run.warmup, run.measured) if r is not None]
        bad = sum(r.non_2xx for r in results)
        failed = sum(r.errors for r in results)
        if bad or failed:
            statuses: Counter[int] = Counter()
            for r in results:
                statuses.update(r.statuses)
            broken.append(
                f"{run.server} round {run.round}: {bad} non-2xx answers, {failed} timeouts/"
                f"socket errors (statuses {dict(statuses)})"
            )
        if run.end_position > count:
            print(f"note: {run.server} round {run.round} wrapped around the workload (duplicates)")
        if run.measured.generator_cpu >= SATURATED_GENERATOR:
            print(
                f"note: {run.server} round {run.round}: the load generator used "
                f"{run.measured.generator_cpu:.0%} of its CPU; the server may not be the bottleneck"
            )
        if run.store is not None:
            s = run.store
            print(
                f"store check round {run.round}: deliveries rows = {s.rows}, 2xx acknowledged = "
                f"{s.acked} (ids found: {s.acked_ids - s.missing}/{s.acked_ids}; "
                f"{s.unanswered} sent but unanswered at stop): {'ok' if s.ok else 'MISMATCH'}"
            )
            if not s.ok:
                broken.append(f"store check round {run.round}: {s.note}")
    summary: dict[str, Any] = {}
    bare = [r.measured.rps for r in runs if r.server == "bare"]
    framehook = [r for r in runs if r.server == "framehook"]
    if bare and framehook:
        ratio = statistics.median(r.measured.rps for r in framehook) / statistics.median(bare)
        # The worst p99 across rounds: a target on tail latency should not be averaged away.
        p99 = max(r.measured.p99_ms for r in framehook)
        ratio_met, p99_met = ratio >= TARGET_RATIO, p99 <= TARGET_P99_MS
        print(f"ratio framehook/bare = {ratio:.2f}")
        print(f"target ratio >= {TARGET_RATIO}: {'met' if ratio_met else 'NOT met'}")
        print(
            f"target framehook p99 <= {TARGET_P99_MS:g} ms: {p99:.2f} ms, "
            f"{'met' if p99_met else 'NOT met'}"
        )
        summary = {
            "ratio": round(ratio, 4),
            "ratio_met": ratio_met,
            "p99_ms": p99,
            "p99_met": p99_met,
        }
    for problem in broken:
        print(f"BROKEN RUN: {problem}", file=sys.stderr)
    if args.json is not None:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        report = {
            "config": {
                "generator": generator_name,
                "connections": args.connections,
                "duration_s": args.duration,
                "warmup_s": args.warmup,
                "rounds": args.rounds,
                "seed": args.seed,
                "cpus": cpus.note,
                "targets": {"ratio": TARGET_RATIO, "p99_ms": TARGET_P99_MS},
            },
            "workload": {
                "deliveries": count,
                "jobs": workload.jobs,
                "events": dict(workload.events),
            },
            "runs": [run.row() for run in runs],
            "summary": summary,
            "broken": broken,
        }
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    if broken or args.keep:
        print(f"scratch directory kept: {scratch}")
    else:
        shutil.rmtree(scratch, ignore_errors=True)
    return 1 if broken else 0


if __name__ == "__main__":
    sys.exit(main())
