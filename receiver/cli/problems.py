"""``framehook jobs show``'s errors: each task's error groups (``errorGroups``, grouped once
by ``receiver.admin.problems``) as one line each, labelled ``E1``, ``E2``…, and each attempt's
error as the labels of the groups it belongs to.

An error is cut to its first line (at most :data:`SHORT_ERROR` characters, ``…`` marking the
cut) unless ``--full`` asks for it whole; then each attempt's error is printed as recorded.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from rich.markup import escape
from rich.table import Column, Table
from rich.text import Text

from receiver.admin.problems import problems

__all__ = [
    "SHORT_ERROR",
    "Labels",
    "error_cell",
    "error_labels",
    "errors_table",
    "files_hit",
    "shorten",
]

SHORT_ERROR = 160
"""Characters of an error shown without ``--full``: its first line, cut here with an ``…``."""

Labels = dict[tuple[int, str], str]
"""``E1``, ``E2``…: the label of each task's error group, by (task id, normalised error)."""


def shorten(error: str, limit: int = SHORT_ERROR) -> str:
    """``error``'s first line, cut to ``limit`` characters; ``…`` says something was left
    out."""
    first, _, rest = error.strip().partition("\n")
    if len(first) > limit:
        return first[: limit - 1] + "…"
    return first + " …" if rest.strip() else first


def files_hit(positions: Iterable[int]) -> str:
    """File positions as runs: ``1-5``, ``1, 3-4``."""
    runs: list[list[int]] = []
    for n in sorted(positions):
        if runs and n == runs[-1][-1] + 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    return ", ".join(str(r[0]) if len(r) == 1 else f"{r[0]}-{r[-1]}" for r in runs)


def error_labels(job: Mapping[str, Any]) -> Labels:
    """A label for each error group of the job's tasks, numbered across the job."""
    labels: Labels = {}
    for t in job["tasks"]:
        for group in t["errorGroups"]:
            labels[t["id"], group["error"]] = f"E{len(labels) + 1}"
    return labels


def error_cell(error: str | None, task_id: int, labels: Labels, full: bool) -> str:
    """An attempt's (or task's) error, as markup: whole with ``full``, else the labels of the
    error groups it belongs to (normalised the way the groups were)."""
    if error is None:
        return "-"
    if full:
        return escape(error)
    found = {labels.get((task_id, p.error), "") for p in problems(error)} - {""}
    return ", ".join(sorted(found, key=lambda label: int(label[1:]))) or escape(shorten(error))


def errors_table(job: Mapping[str, Any], labels: Labels, full: bool) -> Table:
    """One row per distinct error of each task: its label, how many attempts recorded it,
    which files it hit, the error (its first line, cut, unless ``full``)."""
    # The error column gives way first; its cells stay one line (cut with an ellipsis at the
    # terminal's edge) unless --full asks for them whole.
    table = Table(
        Column("", no_wrap=True),
        Column("attempts", justify="right", no_wrap=True),
        Column("files", no_wrap=True),
        Column("error", style="red", min_width=20),
        title="errors",
    )
    cut = False
    for t in job["tasks"]:
        for group in t["errorGroups"]:
            error = group["error"] if full else shorten(group["error"])
            cut = cut or error != group["error"]
            table.add_row(
                labels[t["id"], group["error"]],
                str(group["count"]),
                files_hit(group["files"]) or "-",
                Text(error, no_wrap=not full, overflow="fold" if full else "ellipsis"),
            )
    if cut:
        table.caption = "errors cut to their first line; --full prints them whole"
    return table
