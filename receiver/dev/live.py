"""Following jobs live, as framehook's database records them, in a rich table.

``framehook demo`` and ``generate`` show what the webhooks stored (status, progress) and what
the download handler captured (asset rows; its task for the ``completed`` event). Only while no
webhook comes does ``JobWatch`` ask Apiframe's job API, and it keeps that answer apart.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.markup import escape
from rich.progress_bar import ProgressBar
from rich.table import Table
from rich.text import Text
from sqlalchemy import Engine, select
from sqlalchemy.exc import SQLAlchemyError

from handlers.download import find_assets
from receiver.apiframe.client import ApiframeClient, ApiframeError
from receiver.db.engine import create_db_engine, normalize_url
from receiver.db.models import AssetRecord, Job, Task, TaskStatus, metadata
from receiver.intake.job_state import TERMINAL, JobStatus

__all__ = ["TERMINAL", "JobView", "JobWatch", "StoredFile", "jobs_table", "read_jobs"]

_jobs = metadata.tables[Job.__tablename__]
_assets = metadata.tables[AssetRecord.__tablename__]
_tasks = metadata.tables[Task.__tablename__]
_PENDING = frozenset({TaskStatus.QUEUED, TaskStatus.RUNNING})
_STYLES: dict[str, str] = {
    JobStatus.COMPLETED: "green",
    JobStatus.FAILED: "red",
    JobStatus.CANCELLED: "red",
    JobStatus.PROCESSING: "yellow",
}


@dataclass(frozen=True, slots=True)
class StoredFile:
    """One captured file: where it is stored, its type and size."""

    uri: str
    content_type: str | None
    size: int


@dataclass(frozen=True, slots=True)
class JobView:
    """One job as the database has it now.

    Attributes:
        status: the job's status (``QUEUED`` ... ``COMPLETED``).
        expected: files the completed result names (0 before completion).
        files: the files captured so far, by position.
        capture: the status of the capturing handler's task for the ``completed`` event
            (``queued``, ``running``, ``succeeded``, ``dead``); ``None`` without one.
        capture_error: that task's last error.
    """

    id: str
    status: str
    progress: int
    model: str | None
    error: str | None
    expected: int
    files: tuple[StoredFile, ...]
    capture: str | None
    capture_error: str | None

    @property
    def terminal(self) -> bool:
        """The job has ended (its files may still be on their way)."""
        return self.status in TERMINAL

    @property
    def capturing(self) -> bool:
        """The job completed and its files are being captured."""
        return self.status == "COMPLETED" and self.capture in _PENDING

    @property
    def settled(self) -> bool:
        """Nothing more will happen: ended, and captured (or the capture gave up)."""
        return self.terminal and not self.capturing


def _capture_status(statuses: list[str]) -> str | None:
    # A replay queues a task again: any success counts, then anything still pending.
    for status in (TaskStatus.SUCCEEDED, TaskStatus.RUNNING, TaskStatus.QUEUED, TaskStatus.DEAD):
        if status in statuses:
            return status.value
    return None


def read_jobs(engine: Engine, ids: Sequence[str], handler: str = "download") -> dict[str, JobView]:
    """The jobs among ``ids`` the database knows, with ``handler``'s captures (blocking I/O).

    Raises:
        sqlalchemy.exc.SQLAlchemyError: the database is unavailable or has no schema yet.
    """
    wanted = list(ids)
    if not wanted:
        return {}
    with engine.connect() as connection:
        jobs = connection.execute(select(_jobs).where(_jobs.c.id.in_(wanted))).all()
        assets = connection.execute(
            select(_assets.c.job_id, _assets.c.storage_uri, _assets.c.content_type, _assets.c.size)
            .where(_assets.c.job_id.in_(wanted), _assets.c.handler == handler)
            .order_by(_assets.c.job_id, _assets.c.position)
        ).all()
        tasks = connection.execute(
            select(_tasks.c.job_id, _tasks.c.status, _tasks.c.last_error)
            .where(
                _tasks.c.job_id.in_(wanted),
                _tasks.c.handler == handler,
                _tasks.c.event == "completed",
            )
            .order_by(_tasks.c.id)
        ).all()
    files: dict[str, list[StoredFile]] = {}
    for job_id, uri, content_type, size in assets:
        files.setdefault(job_id, []).append(StoredFile(uri, content_type, size))
    statuses: dict[str, list[str]] = {}
    errors: dict[str, str | None] = {}
    for job_id, status, last_error in tasks:
        statuses.setdefault(job_id, []).append(status)
        errors[job_id] = last_error
    return {
        row.id: JobView(
            id=row.id,
            status=row.status,
            progress=row.progress,
            model=row.model,
            error=row.error,
            expected=len(find_assets(row.result)[0]) if row.status == "COMPLETED" else 0,
            files=tuple(files.get(row.id, ())),
            capture=_capture_status(statuses.get(row.id, [])),
            capture_error=errors.get(row.id),
        )
        for row in jobs
    }


def _status(view: JobView | None) -> Text:
    # No row yet: the job exists at Apiframe, its first webhook has not come.
    if view is None:
        return Text("waiting", style="dim")
    return Text(view.status, style=_STYLES.get(view.status, ""))


def _files(view: JobView | None) -> Text:
    if view is None or view.status != "COMPLETED":
        return Text("-" if view is None or not view.terminal else "0", style="dim")
    if view.capture == TaskStatus.DEAD:
        return Text(f"{len(view.files)}/{view.expected} failed", style="bold red")
    if view.capture is None or view.capture == TaskStatus.SUCCEEDED:
        return Text(str(len(view.files)), style="green")
    return Text(f"{len(view.files)}/{view.expected}", style="cyan")


def jobs_table(
    rows: Sequence[tuple[str, str, JobView | None]],
    *,
    title: str | None = None,
    notes: Sequence[str] = (),
    final: bool = False,
) -> RenderableType:
    """A table of jobs, one row each, with notes under it (a job not stored yet is "waiting").

    Args:
        rows: ``(job id or a placeholder, model, the job as stored or None)`` per job.
        title: the table's title.
        notes: lines printed under the table (rich markup allowed).
        final: whole job ids and no progress column (a summary, not a live view).
    """
    table = Table(title=title, title_justify="left", expand=False)
    # Fixed widths, so the table does not jump about as jobs move on.
    table.add_column("job", no_wrap=True, style="dim", min_width=36 if final else 8)
    table.add_column("model", no_wrap=True, min_width=12)
    table.add_column("status", no_wrap=True, min_width=10)
    if not final:
        table.add_column("progress", no_wrap=True)
    table.add_column("files", justify="right", no_wrap=True, min_width=5)
    for job_id, model, view in rows:
        cells: list[RenderableType] = [
            escape(job_id if final else job_id[:8]),
            escape(model),
            _status(view),
            _files(view),
        ]
        if not final:
            cells.insert(3, _progress_cell(view))
        table.add_row(*cells)
    return Group(table, *(Text.from_markup(note) for note in notes))


def _progress_cell(view: JobView | None) -> Table:
    progress = 0 if view is None else view.progress
    failed = view is not None and view.status in ("FAILED", "CANCELLED")
    bar = ProgressBar(100, progress, width=16, complete_style="red" if failed else "green")
    cell = Table.grid(padding=(0, 1))
    cell.add_row(bar, Text(f"{progress:>3}%"))
    return cell


class JobWatch:
    """One job followed through framehook's database; Apiframe is polled while no news comes.

    Args:
        job_id: the job.
        database_url: the receiver's database (a SQLite file is not created if missing).
        client: Apiframe's job API, for :meth:`poll`.
        quiet_seconds: how long the database may go without news before polling starts.

    Attributes:
        view: the job as the database has it (``None`` before its first webhook).
        api: the job as Apiframe last answered, once polled.
        api_ended_at: when Apiframe first said the job ended (``time.monotonic()``).
        problems: what went wrong reading the database (``database``) or polling (``api``).
    """

    def __init__(
        self, job_id: str, database_url: str, client: ApiframeClient, quiet_seconds: float = 10.0
    ) -> None:
        self.job_id = job_id
        self.view: JobView | None = None
        self.api: dict[str, Any] | None = None
        self.api_ended_at: float | None = None
        self.problems: dict[str, str] = {}
        self._url = normalize_url(database_url)
        self._engine: Engine | None = None
        self._client = client
        self._quiet = quiet_seconds
        self._news = time.monotonic()

    @property
    def api_status(self) -> str | None:
        """Apiframe's last word on the job's status (once polled)."""
        return None if self.api is None else str(self.api.get("status"))

    @property
    def quiet(self) -> float:
        """Seconds since the database last had news of the job."""
        return time.monotonic() - self._news

    @property
    def polling(self) -> bool:
        """Whether the job is unfinished in the database and has been quiet too long."""
        unfinished = self.view is None or not self.view.terminal
        return unfinished and self.quiet >= self._quiet

    def read(self) -> None:
        """Read the job from the database (blocking: run it in a thread)."""
        file = self._url.database if self._url.get_backend_name() == "sqlite" else None
        if file and file != ":memory:" and not Path(file).exists():
            self.problems["database"] = f"no database at {file} yet"
            return
        try:
            if self._engine is None:
                self._engine = create_db_engine(self._url.render_as_string(False), pool_size=1)
            view = read_jobs(self._engine, [self.job_id]).get(self.job_id)
        except SQLAlchemyError as exc:
            self.problems["database"] = f"cannot read the database ({type(exc).__name__})"
            return
        self.problems.pop("database", None)
        if _news(view) != _news(self.view):
            self._news = time.monotonic()
        self.view = view

    async def poll(self, every: float) -> None:
        """Ask Apiframe about the job every ``every`` seconds while :attr:`polling`; forever."""
        while True:
            await asyncio.sleep(every)
            if not self.polling:
                continue
            try:
                self.api = await self._client.job(self.job_id)
            except ApiframeError as exc:
                self.problems["api"] = str(exc)
                continue
            if self.api is None:
                self.problems["api"] = "Apiframe does not know the job"
                continue
            self.problems.pop("api", None)
            if self.api_status in TERMINAL and self.api_ended_at is None:
                self.api_ended_at = time.monotonic()

    def close(self) -> None:
        """Close the database connections (blocking)."""
        if self._engine is not None:
            self._engine.dispose()


def _news(view: JobView | None) -> Any:
    return None if view is None else (view.status, view.progress, len(view.files), view.capture)
