"""A task's errors grouped for reading: one entry per distinct error, how often, which files.

A download that cannot resolve its CDN records, on every attempt, one error naming each file
that was not stored (``retry requested: 5 of 5 files not stored: image 1 (https://…): …;
image 2 (https://…): …``). Shown as recorded, six attempts of a five-file job repeat the same
DNS error thirty times. Grouped here, once, for the admin API (``errorGroups``), and so for
the dashboard and ``framehook jobs show`` alike, it is one entry: the error, six attempts,
files 1-5.

Normalising decides what "the same error" is. A multi-file summary is split into its files'
reasons; the file's URL and its storage key (``job-1/image-3.png``) are replaced with
``<url>`` and ``<file>`` in its reason, since that is all that differs from one file to the
next; and the worker's ``(attempt N, giving up)`` is dropped. Other text stays as recorded:
a handler's own message may carry a URL that matters.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from handlers.download import find_assets
from receiver.admin.views import AttemptView, ErrorGroupView

__all__ = ["Problem", "error_groups", "file_positions", "problems", "task_errors"]

Positions = Mapping[tuple[str, int], int]
"""A file's position in its job's result, by the ``(kind, n)`` its error names it with."""

# What receiver.queue.worker wraps a handler's reason in, and the download handler's summary
# (handlers.download: "N of M files not stored: " then "; "-separated files).
_SUMMARY = re.compile(r"(?:retry requested: |permanent failure: )?\d+ of \d+ files not stored: ")
_FILE = re.compile(r"(?:^|; )(image|grid|video|audio|cover|file) (\d+) \((.*?)\): ")
_GIVING_UP = re.compile(r" \(attempt \d+, giving up\)$")
_URL = re.compile(r"https?://[^\s()\"'<>]+")


@dataclass(frozen=True, slots=True)
class Problem:
    """One error of one attempt: its normalised text, and the file it hit (its position in
    the result), if it was one file's."""

    error: str
    file: int | None = None


def file_positions(result: Any) -> dict[tuple[str, int], int]:
    """Each file's position, by the ``(kind, n)`` the download handler names it with
    (``image 2``), as it numbers the files of ``result``."""
    refs, _schemes = find_assets(result)
    return {(ref.kind, ref.n): ref.position for ref in refs}


def _file_reason(reason: str, kind: str, n: int) -> str:
    # The key the file was written to (the default template's "{job_id}/{kind}-{n}.{ext}")
    # differs per file, as does any URL (a redirect's, the file's own).
    key = re.compile(rf"[^\s:;,()]*\b{kind}-{n}\b[^\s:;,()]*")
    return key.sub("<file>", _URL.sub("<url>", reason)).strip()


def problems(error: str, positions: Positions | None = None) -> list[Problem]:
    """``error`` (as an attempt recorded it) as its problems: one per file of a download's
    multi-file summary, else the one message. Files ``positions`` does not know keep the
    number their error gives (for a file of no promised kind, that is its position).
    """
    message = _GIVING_UP.sub("", error.strip())
    summary = _SUMMARY.match(message)
    listed = message[summary.end() :] if summary else ""
    files = list(_FILE.finditer(listed))
    if not files or files[0].start() != 0:
        return [Problem(message)]
    found: list[Problem] = []
    ends = [m.start() for m in files[1:]] + [len(listed)]
    for match, end in zip(files, ends, strict=True):
        kind, n = match[1], int(match[2])
        position = (positions or {}).get((kind, n), n)
        found.append(Problem(_file_reason(listed[match.end() : end], kind, n), position))
    return found


def task_errors(
    history: Sequence[AttemptView], last_error: str | None, updated_at: datetime
) -> list[tuple[str, datetime]]:
    """A task's errors and when each was recorded: every attempt's, and the task's last error
    if no attempt holds it (an expired lease is recorded on the task alone)."""
    errors = [(a["error"], a["finishedAt"]) for a in history if a["error"]]
    newest = history[-1]["error"] if history else None
    if last_error and last_error != newest:
        errors.append((last_error, updated_at))
    return errors


def error_groups(
    errors: Iterable[tuple[str, datetime]], positions: Positions | None = None
) -> list[ErrorGroupView]:
    """Group ``(error, when)`` pairs by normalised text: per group, how many of them hit it
    (an attempt that failed five files with it counts once), the files it hit, and when it
    was last seen. The most recent first; then the most frequent, the lowest file, the text.
    """
    groups: dict[str, ErrorGroupView] = {}
    for error, when in errors:
        counted: set[str] = set()
        for problem in problems(error, positions):
            group = groups.setdefault(
                problem.error,
                {"error": problem.error, "count": 0, "files": [], "lastSeen": when},
            )
            if problem.error not in counted:
                counted.add(problem.error)
                group["count"] += 1
                group["lastSeen"] = max(group["lastSeen"], when)
            if problem.file is not None and problem.file not in group["files"]:
                group["files"].append(problem.file)
    for group in groups.values():
        group["files"].sort()
    return sorted(
        groups.values(),
        key=lambda g: (
            -g["lastSeen"].timestamp(),
            -g["count"],
            g["files"][:1] or [0],
            g["error"],
        ),
    )
