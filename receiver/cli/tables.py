"""``framehook jobs`` and ``credits`` output: the admin API's views drawn as rich tables on a
terminal, as whole values in a pipe, or as the API's JSON.

Where standard output is not a terminal (``| grep``, ``| cut``, a file), nothing is cut to a
width: ``framehook jobs`` prints tab-separated lines, as ``gh`` does (no header, no colour,
times in ISO 8601), and ``jobs show`` draws its tables as wide as their values. ``--json``
prints one JSON document, the admin API's answer for the same read, as ``gh --json`` and the
``stripe`` CLI do: ``jq`` reads it whole, and a script reads the CLI and the API alike.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import orjson
from rich.console import Console, Group, RenderableType
from rich.markup import escape
from rich.table import Column, Table
from rich.text import Text

from receiver.cli.problems import Labels, error_cell, error_labels, errors_table, shorten
from receiver.db.models import TaskStatus
from receiver.intake.arrivals import DeliveryOutcome
from receiver.intake.job_state import JobStatus

__all__ = [
    "age",
    "capture",
    "jobs_lines",
    "jobs_table",
    "print_json",
    "stdout_console",
    "timeline",
]

# Wide enough that no value is cut or folded: tables are only as wide as what they hold.
_UNLIMITED = 1_000_000

_STATUS: dict[str, str] = {
    JobStatus.COMPLETED: "green",
    JobStatus.FAILED: "red",
    JobStatus.CANCELLED: "red",
    JobStatus.PROCESSING: "yellow",
}
_OUTCOME: dict[str, str] = {
    DeliveryOutcome.ACCEPTED: "green",
    DeliveryOutcome.DUPLICATE: "dim",
    DeliveryOutcome.STALE: "yellow",
    DeliveryOutcome.CONFLICT: "red",
}
# Also an attempt's outcome: ``succeeded`` and ``dead`` share the task statuses' colours.
_TASK: dict[str, str] = {
    TaskStatus.SUCCEEDED: "green",
    TaskStatus.DEAD: "bold red",
    TaskStatus.RUNNING: "yellow",
    TaskStatus.SUPERSEDED: "dim",
    TaskStatus.WAITING: "cyan",
}


def age(moment: datetime | None, now: datetime) -> str:
    """How long ago, in the largest whole unit: ``45s``, ``12m``, ``3h``, ``9d``."""
    if moment is None:
        return "-"
    seconds = max(0, int((now - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def stdout_console() -> Console:
    """Standard output: a terminal's width on a terminal; elsewhere (a pipe, a file) so wide
    that no value is cut, ellipsised or folded, which ``grep`` and ``cut`` need whole."""
    console = Console(highlight=False)
    if console.is_terminal:
        return console
    return Console(highlight=False, width=_UNLIMITED)


def print_json(document: Mapping[str, Any]) -> None:
    """``document`` as one JSON document on standard output, as the admin API writes it
    (orjson: RFC 3339 times); indented for a person at a terminal, compact otherwise."""
    pretty = orjson.OPT_INDENT_2 if Console().is_terminal else 0
    sys.stdout.write(orjson.dumps(document, option=pretty).decode() + "\n")


def _when(moment: datetime | None) -> str:
    return "-" if moment is None else moment.strftime("%Y-%m-%d %H:%M:%S")


def _styled(value: str | None, styles: Mapping[str, str]) -> Text:
    return Text(value or "-", style=styles.get(value or "", ""))


def _text(value: Any) -> str:
    return "-" if value is None else escape(str(value))


def capture(files: Mapping[str, Any]) -> Text:
    """A job's files (its view's ``files``) as ``stored/expected``: green when all are stored,
    red when some are missing, ``—`` when the result names none or the job has not ended."""
    expected, stored = files["expected"], files["stored"]
    if not expected:
        # Jobs that ended before the count was recorded still show what they stored.
        return Text(str(stored) if expected is None and stored else "—", style="dim")
    return Text(f"{stored}/{expected}", style="green" if stored >= expected else "bold red")


def jobs_table(jobs: Sequence[Mapping[str, Any]], now: datetime) -> Table:
    """One row per job (``framehook jobs``): id, model, status, progress, capture, age."""
    # A job id is what the next command needs: never cut it (nor a status).
    table = Table(
        Column("job", no_wrap=True, min_width=36, style="dim"),
        "model",
        Column("status", no_wrap=True, min_width=9),
        Column("progress", justify="right"),
        Column("captured", justify="right", no_wrap=True),
        Column("age", justify="right"),
    )
    for job in jobs:
        table.add_row(
            job["id"],
            _text(job["model"]),
            _status(job),
            f"{job['progress']}%",
            capture(job["files"]),
            age(job["createdAt"], now),
        )
    return table


def _cell(value: Any) -> str:
    # One value per field, one job per line, whatever a webhook put in it.
    text = "" if value is None else str(value)
    return " ".join(text.replace("\t", " ").splitlines())


def jobs_lines(jobs: Sequence[Mapping[str, Any]]) -> str:
    """``framehook jobs`` in a pipe: one tab-separated line per job, nothing cut or styled,
    no header (as ``gh`` prints), for ``cut -f``: id, model (empty if unknown), status,
    progress (a number), captured (``stored/expected``, ``-`` while nothing is expected) and
    when it was created (ISO 8601)."""
    lines = []
    for job in jobs:
        captured = capture(job["files"]).plain.replace("—", "-")
        fields = (
            job["id"],
            job["model"],
            job["status"],
            job["progress"],
            captured,
            job["createdAt"].isoformat(),
        )
        lines.append("\t".join(_cell(f) for f in fields) + "\n")
    return "".join(lines)


def _status(job: Mapping[str, Any]) -> Text:
    # A send-test job is marked wherever it is listed, so no one mistakes it for a real one.
    status = _styled(job["status"], _STATUS)
    return status.append(" test", style="bold magenta") if job.get("test") else status


def _files(files: Mapping[str, Any], *, test: bool = False) -> Text:
    counted = capture(files)
    if test and not files["stored"]:
        return counted.append(" (test event: nothing to capture)", style="dim")
    if files["expected"] is None and not files["stored"]:
        return counted.append(" (the job has not ended)", style="dim")
    if files["expected"] == 0 and not files["stored"]:
        return counted.append(" (the result names no file)", style="dim")
    return counted.append(" stored")


def _state(job: Mapping[str, Any], full: bool) -> Table:
    grid = Table.grid(padding=(0, 2))
    rows: list[tuple[str, str | Text]] = [
        ("status", _status(job)),
        ("progress", f"{job['progress']}%"),
        ("files", _files(job["files"], test=bool(job.get("test")))),
        ("model", _text(job["model"])),
        ("credit cost", _text(job["creditCost"])),
        ("created", _when(job["createdAt"])),
        ("updated", _when(job["updatedAt"])),
        ("completed", _when(job["completedAt"])),
    ]
    if job.get("test"):
        rows.append(
            ("test", Text("yes: a framehook send-test event; no credits, nothing to capture"))
        )
    if job["error"]:
        rows.append(("error", Text(job["error"] if full else shorten(job["error"]), style="red")))
    for label, value in rows:
        grid.add_row(Text(label, style="bold"), value)
    return grid


def _deliveries(job: Mapping[str, Any]) -> Table:
    table = Table("id", "received", "source", "event", "outcome", "body", title="deliveries")
    for d in job["deliveries"]:
        table.add_row(
            str(d["id"]),
            _when(d["receivedAt"]),
            d["source"],
            _text(d["event"]),
            _styled(d["outcome"], _OUTCOME),
            "pruned" if d["bodyFormat"] is None else d["bodyFormat"],
        )
    return table


def _attempt_time(started: datetime, finished: datetime, day: datetime) -> str:
    took = (finished - started).total_seconds()
    when = started.strftime("%H:%M:%S") if started.date() == day.date() else _when(started)
    return f"{when} ({took:.1f} s)"


def _tasks(job: Mapping[str, Any], labels: Labels, full: bool) -> Table:
    # The worker that ran each attempt is for --full: without it the table fits 80 columns.
    worker = ["worker"] if full else []
    table = Table("task", "handler", "event", "status", "attempt", *worker, "when", "error")
    table.title = "tasks and attempts"
    for t in job["tasks"]:
        table.add_row(
            str(t["id"]),
            escape(t["handler"]),
            t["event"],
            _styled(t["status"], _TASK),
            str(t["attempts"]),
            *([""] if full else []),
            f"next {_when(t['runAt'])}"
            if t["status"] == TaskStatus.QUEUED
            else f"after {', '.join(t.get('waitsFor') or ())}"
            if t["status"] == TaskStatus.WAITING
            else _when(t["finishedAt"]),
            error_cell(t["lastError"], t["id"], labels, full),
        )
        for a in t["history"]:
            table.add_row(
                "",
                "",
                "",
                _styled(a["outcome"], _TASK),
                f"#{a['attempt']}",
                *([escape(a["worker"])] if full else []),
                _attempt_time(a["startedAt"], a["finishedAt"], t["createdAt"]),
                error_cell(a["error"], t["id"], labels, full),
            )
    return table


def _assets(job: Mapping[str, Any]) -> Table:
    table = Table("#", "kind", "size", "type", "stored at", "sha256", title="files")
    for a in job["assets"]:
        table.add_row(
            str(a["position"]),
            a["kind"],
            f"{a['size']:,}",
            _text(a["contentType"]),
            escape(a["storageUri"]),
            a["sha256"][:12],
        )
    return table


def timeline(job: Mapping[str, Any], full: bool = False) -> RenderableType:
    """``framehook jobs show ID``: the job's state, deliveries, tasks with attempts, their
    errors grouped (each once: ``E1``, with how many attempts and which files it hit), files.

    Args:
        job: the job's timeline (``receiver.admin.queries.job_timeline``).
        full: print every error whole (each attempt's, as recorded), not cut to a line.
    """
    labels = error_labels(job)
    parts: list[RenderableType] = [Text(f"job {job['id']}", style="bold"), _state(job, full)]
    parts.append(_deliveries(job) if job["deliveries"] else Text("no deliveries", style="dim"))
    if job["tasks"]:
        parts.append(_tasks(job, labels, full))
        if labels:
            parts.append(errors_table(job, labels, full))
    else:
        parts.append(Text("no handler tasks", style="dim"))
    parts.append(_assets(job) if job["assets"] else Text("no files captured", style="dim"))
    return Group(*parts)
