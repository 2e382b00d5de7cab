"""One behaviour for every storage backend: the conformance suite.

Memory and local run everywhere; S3 runs on two servers, moto and nanio, and Azure on Azurite
(see ``conftest.py``); GCS is skipped, for want of an emulator obstore can talk to.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from storage import (
    InvalidKey,
    LocalStorage,
    MemoryStorage,
    ObjectNotFound,
    Storage,
    StorageError,
    UnknownScheme,
    from_url,
    register_scheme,
)
from tests.storage.conftest import read, stream
from tests.support.servers import GCS_EMULATOR_MISSING

BACKENDS = [
    "memory",
    "local",
    "s3",
    "nanio",
    "azure",
    pytest.param("gcs", marks=pytest.mark.skip(GCS_EMULATOR_MISSING)),
]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    """Each backend, empty (the cloud ones built by ``from_url`` from the environment)."""
    if request.param == "memory":
        return MemoryStorage("test")
    if request.param == "local":
        return LocalStorage(tmp_path / "assets")
    url: str = request.getfixturevalue(f"{request.param}_url")
    return from_url(url)


@pytest.mark.anyio
async def test_put_then_read_back_with_size_and_checksum(store: Storage) -> None:
    """A streamed put is stored whole; size and SHA-256 describe the bytes."""
    data = [os.urandom(1000), os.urandom(70_000), b""]

    stored = await store.put("job-1/image-1.png", stream(*data), "image/png")
    whole = b"".join(data)
    assert (stored.key, stored.size, stored.content_type) == (
        "job-1/image-1.png",
        len(whole),
        "image/png",
    )
    assert stored.sha256 == hashlib.sha256(whole).hexdigest()
    assert stored.uri == store.uri("job-1/image-1.png")
    assert await store.exists("job-1/image-1.png")
    assert await read(store, "job-1/image-1.png") == whole


@pytest.mark.anyio
async def test_overwrite_and_delete(store: Storage) -> None:
    """A second put replaces the object; delete removes it; deleting nothing is fine."""
    await store.put("a/b.txt", stream(b"one"))
    await store.put("a/b.txt", stream(b"two"))
    assert await read(store, "a/b.txt") == b"two"
    await store.delete("a/b.txt")
    assert not await store.exists("a/b.txt")
    await store.delete("a/b.txt")


@pytest.mark.anyio
async def test_size_is_the_stored_objects_and_none_without_one(store: Storage) -> None:
    """``size`` reads the object's size without its bytes: what the put stored, the new size
    after an overwrite, ``None`` for a missing key and after a delete."""
    assert await store.size("job-1/video-1.mp4") is None
    first = await store.put("job-1/video-1.mp4", stream(os.urandom(70_000), b"tail"))
    assert await store.size("job-1/video-1.mp4") == first.size == 70_004
    await store.put("job-1/video-1.mp4", stream(b""))
    assert await store.size("job-1/video-1.mp4") == 0
    await store.delete("job-1/video-1.mp4")
    assert await store.size("job-1/video-1.mp4") is None
    assert await store.size("job-1") is None  # a "directory" is no object


@pytest.mark.anyio
async def test_size_refuses_keys_outside_the_store(store: Storage) -> None:
    """``size`` validates keys as ``put`` does."""
    with pytest.raises(InvalidKey):
        await store.size("../escape.bin")


@pytest.mark.anyio
async def test_missing_object_raises_object_not_found(store: Storage) -> None:
    """Opening a key with nothing under it is ObjectNotFound."""
    with pytest.raises(ObjectNotFound):
        await read(store, "nope/none.bin")


@pytest.mark.anyio
@pytest.mark.parametrize(
    "key", ["", "/etc/passwd", "../escape.txt", "a/../../b", "a\\b", "a\x00b", "."]
)
async def test_keys_can_never_escape_the_store(store: Storage, key: str) -> None:
    """Absolute, parent-relative, backslash or NUL keys are refused before any write."""
    with pytest.raises(InvalidKey):
        await store.put(key, stream(b"x"))


@pytest.mark.anyio
async def test_redundant_key_parts_are_normalised(store: Storage) -> None:
    """ "a//b" and "a/./b" name the same object as "a/b" (still inside the store)."""
    stored = await store.put("a/./b//c.bin", stream(b"x"))
    assert stored.key == "a/b/c.bin"
    assert await read(store, "a/b/c.bin") == b"x"


@pytest.mark.anyio
async def test_a_failed_stream_leaves_nothing_under_the_key(store: Storage) -> None:
    """If the source dies mid-stream, no partial object is visible (and an old one survives)."""

    async def broken() -> AsyncIterator[bytes]:
        yield b"partial data"
        raise ConnectionError("source went away")

    await store.put("k/old.bin", stream(b"old"))
    with pytest.raises(ConnectionError):
        await store.put("k/new.bin", broken())
    with pytest.raises(ConnectionError):
        await store.put("k/old.bin", broken())
    assert not await store.exists("k/new.bin")
    assert await read(store, "k/old.bin") == b"old"


@pytest.mark.anyio
async def test_local_store_leaves_no_temporary_files(tmp_path: Path) -> None:
    """After puts, successful or not, only final files are in the directory."""
    store = LocalStorage(tmp_path)

    async def broken() -> AsyncIterator[bytes]:
        yield b"x"
        raise ConnectionError

    await store.put("d/f.bin", stream(b"ok"))
    with pytest.raises(ConnectionError):
        await store.put("d/g.bin", broken())
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == ["f.bin"]


@pytest.mark.anyio
async def test_local_store_sweeps_a_killed_writers_leftover_once_the_key_is_stored(
    tmp_path: Path,
) -> None:
    """A temporary file left by a writer killed mid-put goes when the key is stored whole;
    another key's temporary files are not touched."""
    store = LocalStorage(tmp_path)
    (tmp_path / "d").mkdir()
    mine = tmp_path / "d" / ".f.bin.0123abcd.part"
    other = tmp_path / "d" / ".g.bin.0123abcd.part"
    mine.write_bytes(b"half")
    other.write_bytes(b"half")
    await store.put("d/f.bin", stream(b"whole"))
    assert sorted(p.name for p in (tmp_path / "d").iterdir()) == [other.name, "f.bin"]


@pytest.mark.anyio
async def test_local_store_refuses_a_symlink_out_of_its_root(tmp_path: Path) -> None:
    """A directory symlinked outside the root cannot be written through."""
    root = tmp_path / "root"
    outside = tmp_path / "outside"
    root.mkdir()
    outside.mkdir()
    (root / "link").symlink_to(outside)
    store = LocalStorage(root)

    with pytest.raises(StorageError):
        await store.put("link/file.bin", stream(b"x"))
    assert list(outside.iterdir()) == []


@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("framehook-data/assets", LocalStorage),
        ("file:///tmp/fh-assets", LocalStorage),
        ("memory://", MemoryStorage),
    ],
)
def test_from_url_chooses_the_backend_by_scheme(url: str, kind: type) -> None:
    """Paths and file:// are local, memory:// is in memory."""
    assert isinstance(from_url(url), kind)


def test_unknown_scheme_and_duplicate_registration_are_errors() -> None:
    """An unregistered scheme names itself; registering a taken scheme is refused."""
    with pytest.raises(UnknownScheme, match="nosuch://"):
        from_url("nosuch://bucket/prefix")
    with pytest.raises(StorageError, match="already registered"):
        register_scheme("memory", lambda url: MemoryStorage())
