"""Small real filesystems of a test's own: a tmpfs to fill up (a real ENOSPC), grow again, or
remount read-only (a real EROFS). Running as root ignores file modes, so a ``chmod``-ed
directory proves nothing; a full or read-only filesystem stops root too.

Mounting needs CAP_SYS_ADMIN (root, outside an unprivileged container): without it the tests
that need one skip, saying so. The fixtures are ``tmpfs`` and ``disk`` in ``tests/conftest.py``.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest

__all__ = ["Tmpfs", "fill", "read_only"]


def _mount(*args: str) -> subprocess.CompletedProcess[str]:
    try:
        return subprocess.run(["mount", *args], capture_output=True, text=True, check=False)
    except FileNotFoundError:
        pytest.skip("no mount command here: a small tmpfs is needed for a real ENOSPC/EROFS")


def _free(where: Path) -> int:
    stat = os.statvfs(where)
    return stat.f_bavail * stat.f_frsize


def fill(where: Path, name: str = "filler", leave: int = 0) -> Path:
    """Write a file under ``where`` until only ``leave`` bytes are free on its filesystem
    (none: until writes fail with ENOSPC); returns it (delete it to free the space)."""
    filler = where / name
    with filler.open("ab", buffering=0) as out:  # unbuffered: closing has nothing to flush
        if leave:
            while (room := _free(where) - leave) > 0:
                out.write(bytes(min(room, 1_048_576)))
            return filler
        for chunk in (1_048_576, 4096):
            block = bytes(chunk)
            with contextlib.suppress(OSError):  # ENOSPC: this size no longer fits
                while True:
                    out.write(block)
    return filler


def read_only(where: Path) -> None:
    """Remount the tmpfs at ``where`` read-only."""
    done = _mount("-o", "remount,ro", str(where))
    assert done.returncode == 0, done.stderr


class Tmpfs:
    """A tmpfs of ``size`` bytes mounted at ``path`` (created); skips the test where mounting
    is not permitted."""

    def __init__(self, path: Path, size: int) -> None:
        path.mkdir(parents=True, exist_ok=True)
        done = _mount("-t", "tmpfs", "-o", f"size={size}", "framehook-test", str(path))
        if done.returncode != 0:
            pytest.skip(
                "cannot mount a tmpfs (needs root with CAP_SYS_ADMIN): "
                + (done.stderr.strip() or str(done.returncode))
            )
        self.path = path

    def remount(self, options: str) -> None:
        """``mount -o remount,OPTIONS``: ``size=64m`` grows it, ``ro``/``rw`` flip it."""
        done = _mount("-o", f"remount,{options}", str(self.path))
        assert done.returncode == 0, done.stderr

    def free(self) -> int:
        """Bytes an unprivileged writer could still use."""
        return _free(self.path)

    def fill(self, name: str = "filler", leave: int = 0) -> Path:
        """:func:`fill` on this tmpfs."""
        return fill(self.path, name, leave)

    def unmount(self) -> None:
        """Lazily: a process the test could not stop, or a file it left open, must not keep
        the mount alive."""
        subprocess.run(["umount", "-l", str(self.path)], capture_output=True, check=False)
