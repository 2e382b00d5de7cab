"""``framehook jobs`` output: the admin API's views drawn as rich tables."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.table import Column, Table
from rich.text import Text

from receiver.db.models import TaskStatus
from receiver.intake.arrivals import DeliveryOutcome
from receiver.intake.job_state import JobStatus

__all__ = ["age", "capture", "jobs_table", "timeline"]

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
            _styled(job["status"], _STATUS),
            f"{job['progress']}%",
            capture(job["files"]),
            age(job["createdAt"], now),
        )
    return table


def _files(files: Mapping[str, Any]) -> Text:
    counted = capture(files)
    if files["expected"] is None and not files["stored"]:
        return counted.append(" (the job has not ended)", style="dim")
    if files["expected"] == 0 and not files["stored"]:
        return counted.append(" (the result names no file)", style="dim")
    return counted.append(" stored")


def _state(job: Mapping[str, Any]) -> Table:
    grid = Table.grid(padding=(0, 2))
    rows: list[tuple[str, str | Text]] = [
        ("status", _styled(job["status"], _STATUS)),
        ("progress", f"{job['progress']}%"),
        ("files", _files(job["files"])),
        ("model", _text(job["model"])),
        ("credit cost", _text(job["creditCost"])),
        ("created", _when(job["createdAt"])),
        ("updated", _when(job["updatedAt"])),
        ("completed", _when(job["completedAt"])),
    ]
    if job["error"]:
        rows.append(("error", Text(job["error"], style="red")))
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


def _tasks(job: Mapping[str, Any]) -> Table:
    table = Table("task", "handler", "event", "status", "attempt", "worker", "when", "error")
    table.title = "tasks and attempts"
    for t in job["tasks"]:
        table.add_row(
            str(t["id"]),
            escape(t["handler"]),
            t["event"],
            _styled(t["status"], _TASK),
            str(t["attempts"]),
            "",
            f"next {_when(t['runAt'])}"
            if t["status"] == TaskStatus.QUEUED
            else _when(t["finishedAt"]),
            _text(t["lastError"]),
        )
        for a in t["history"]:
            took = (a["finishedAt"] - a["startedAt"]).total_seconds()
            table.add_row(
                "",
                "",
                "",
                _styled(a["outcome"], _TASK),
                f"#{a['attempt']}",
                escape(a["worker"]),
                f"{_when(a['startedAt'])} ({took:.1f} s)",
                _text(a["error"]),
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


def timeline(job: Mapping[str, Any]) -> RenderableType:
    """``framehook jobs show ID``: the job's state, deliveries, tasks with attempts, files."""
    parts: list[RenderableType] = [Text(f"job {job['id']}", style="bold"), _state(job)]
    for section, draw, none in (
        ("deliveries", _deliveries, "no deliveries"),
        ("tasks", _tasks, "no handler tasks"),
        ("assets", _assets, "no files captured"),
    ):
        parts.append(draw(job) if job[section] else Text(none, style="dim"))
    return Group(*parts)
