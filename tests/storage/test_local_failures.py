"""The local store's filesystem failures are storage errors: a full disk is ``StorageFull``
(it may pass once space is freed), a read-only one ``StorageRefused``; each keeps its errno,
names what to change in one line, and leaves nothing behind. Real filesystems, not mocks: a
small tmpfs filled or remounted read-only."""

from __future__ import annotations

import errno
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import InvalidKey, LocalStorage, StorageError, StorageFull, StorageRefused
from tests.storage.conftest import read, stream
from tests.support.mounts import fill, read_only


def files(root: Path) -> list[str]:
    """Every file under ``root`` (hidden temporary ones included)."""
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def assert_explains(error: StorageError, code: int, change: str) -> None:
    """``error`` carries ``code`` (and the OSError as its cause) and says, in one line, which
    errno and what to change."""
    assert error.errno == code
    assert isinstance(error.__cause__, OSError)
    assert error.__cause__.errno == code
    message = str(error)
    assert "\n" not in message
    assert f"({errno.errorcode[code]})" in message
    assert change in message
    assert "FRAMEHOOK_STORAGE_URL" in message


@pytest.mark.anyio
async def test_a_full_disk_is_storage_full_and_the_put_passes_once_space_is_freed(
    disk: Path,
) -> None:
    """ENOSPC mid-write: ``StorageFull`` naming the key, no partial file left; after the
    filler is deleted the same put stores the object."""
    store = LocalStorage(disk)
    await store.put("job-1/seed.bin", stream(b"x"))
    filler = fill(disk)
    with pytest.raises(StorageFull, match=r"writing job-1/image-1\.png") as failed:
        await store.put("job-1/image-1.png", stream(b"p" * 8192, b"q" * 8192))
    assert_explains(failed.value, errno.ENOSPC, "free space there")
    assert files(disk) == ["filler", "job-1/seed.bin"]
    filler.unlink()
    stored = await store.put("job-1/image-1.png", stream(b"p" * 8192, b"q" * 8192))
    assert stored.size == 16384
    assert await read(store, "job-1/image-1.png") == b"p" * 8192 + b"q" * 8192


@pytest.mark.anyio
async def test_a_file_larger_than_the_disk_is_storage_full(disk: Path) -> None:
    """A body bigger than the whole filesystem fails with ``StorageFull``, nothing left."""
    store = LocalStorage(disk)
    with pytest.raises(StorageFull) as failed:
        await store.put("big.bin", stream(*[b"z" * 16384] * 16))
    assert_explains(failed.value, errno.ENOSPC, "free space there")
    assert files(disk) == []


@pytest.mark.anyio
@pytest.mark.parametrize("key", ["job-1/image-1.png", "new-dir/image-1.png"])
async def test_a_read_only_disk_is_storage_refused(disk: Path, key: str) -> None:
    """EROFS, into a directory that exists or one to create: ``StorageRefused`` saying to
    mount it read-write; the stored object is still readable."""
    store = LocalStorage(disk)
    await store.put("job-1/kept.bin", stream(b"kept"))
    read_only(disk)
    with pytest.raises(StorageRefused) as failed:
        await store.put(key, stream(b"data"))
    assert_explains(failed.value, errno.EROFS, "mount it read-write")
    assert files(disk) == ["job-1/kept.bin"]
    assert await read(store, "job-1/kept.bin") == b"kept"


@pytest.mark.anyio
async def test_deleting_on_a_read_only_disk_is_storage_refused(disk: Path) -> None:
    """Not only puts: a delete the filesystem refuses is a storage error too."""
    store = LocalStorage(disk)
    await store.put("a.bin", stream(b"a"))
    read_only(disk)
    with pytest.raises(StorageRefused, match=r"deleting a\.bin"):
        await store.delete("a.bin")


@pytest.mark.anyio
async def test_a_name_too_long_for_the_filesystem_is_an_invalid_key(tmp_path: Path) -> None:
    """ENAMETOOLONG: the key cannot be stored here whatever happens, so ``InvalidKey``."""
    store = LocalStorage(tmp_path)
    with pytest.raises(InvalidKey, match="ENAMETOOLONG") as failed:
        await store.put("job/" + "n" * 300 + ".png", stream(b"x"))
    assert failed.value.errno == errno.ENAMETOOLONG


@pytest.mark.anyio
async def test_the_streams_own_os_error_is_raised_unchanged(tmp_path: Path) -> None:
    """An OSError of the data source (not the store's) is the caller's: raised as it is,
    nothing left under the key."""
    problem = OSError(errno.EIO, "source went away")

    async def source() -> AsyncIterator[bytes]:
        yield b"first"
        raise problem

    store = LocalStorage(tmp_path)
    with pytest.raises(OSError, match="source went away") as failed:
        await store.put("k.bin", source())
    assert failed.value is problem
    assert files(tmp_path) == []


@pytest.mark.anyio
async def test_any_other_os_error_is_a_storage_error_naming_it(tmp_path: Path) -> None:
    """A store under a regular file (ENOTDIR): a plain ``StorageError`` (retryable) naming the
    OS error's class and errno; deleting there is removing nothing, not an error."""
    (tmp_path / "a-file").write_text("not a directory")
    store = LocalStorage(tmp_path / "a-file" / "assets")
    with pytest.raises(StorageError) as failed:
        await store.put("job-1/image-1.png", stream(b"x"))
    assert not isinstance(failed.value, StorageFull | StorageRefused | InvalidKey)
    assert failed.value.errno == errno.ENOTDIR
    assert "writing job-1/image-1.png: NotADirectoryError: Not a directory (ENOTDIR)" in str(
        failed.value
    )
    await store.delete("job-1/image-1.png")
