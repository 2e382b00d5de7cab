"""The storage probe (``framehook doctor``, ``/readyz``, and ``serve``/``worker`` at start) on
one local folder from several processes at once: processes that start together all probe it,
and each cleans up after itself."""

from __future__ import annotations

import asyncio
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pytest

import storage.local
from storage import from_url
from storage._probe import PROBE_PREFIX, probe

PROCESSES = 6
PROBES = 300


def _probe_many(root: str) -> None:
    async def many() -> None:
        store = from_url(root)
        for _ in range(PROBES):
            await probe(store)

    asyncio.run(many())


def test_processes_probing_one_folder_together_never_remove_each_others_folder(
    tmp_path: Path,
) -> None:
    """Before each probe had its own folder, a sibling's clean-up removed the shared one
    between another's making it and writing into it: ENOENT, and `worker` refused to start."""
    with ProcessPoolExecutor(PROCESSES) as pool:
        for done in [pool.submit(_probe_many, str(tmp_path)) for _ in range(PROCESSES)]:
            done.result()
    assert not (tmp_path / PROBE_PREFIX).exists()  # and nothing left behind


def test_a_probe_whose_folder_vanished_writes_again_even_if_the_prefix_is_back(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race the test above caught once under load: a sibling removes the prefix between
    this probe's making it and making its own folder (ENOENT), and a third one makes the prefix
    again before this one looks. The probe writes again instead of failing."""
    make_parents = storage.local._make_parents
    raced: list[Path] = []

    def racing(path: Path) -> None:
        if not raced:
            raced.append(path)
            (tmp_path / PROBE_PREFIX).mkdir()  # a third prober's, back before the check
            raise FileNotFoundError(2, "No such file or directory", str(path.parent))
        make_parents(path)

    monkeypatch.setattr(storage.local, "_make_parents", racing)
    asyncio.run(probe(from_url(str(tmp_path))))
    assert len(raced) == 1
    assert not (tmp_path / PROBE_PREFIX).exists()
