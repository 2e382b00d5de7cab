"""What only the object store backends do: multipart uploads, URLs, configuration, the extras."""

from __future__ import annotations

import hashlib
import os
import sys
from collections.abc import AsyncIterator

import pytest
from obstore.store import AzureStore, S3Store

from storage import InvalidKey, Storage, StorageError, UnknownScheme, from_url
from storage._objectstore import PART_SIZE
from storage.azure import AzureStorage
from storage.gcs import GCSStorage
from storage.s3 import S3Storage
from tests.storage.conftest import BUCKET, read, stream
from tests.support import servers

MIB = 1024 * 1024
CLOUD = ["s3", "nanio", "azure"]  # s3 is moto; nanio is S3 too, another implementation


@pytest.fixture(params=CLOUD)
def cloud_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty prefix on each emulated cloud, the environment pointing there."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


@pytest.fixture
def no_cloud_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """No AWS_*, AZURE_* or GOOGLE_* variables: URL parsing only, no credentials anywhere."""
    for name in list(os.environ):
        if name.startswith(("AWS_", "AZURE_", "AZURITE_", "GOOGLE_")):
            monkeypatch.delenv(name)


async def content_type_of(url: str, key: str) -> str | None:
    """The Content-Type the cloud itself reports for ``key`` (read past our Storage API)."""
    store = S3Store.from_url(url) if url.startswith("s3:") else AzureStore.from_url(url)
    result = (await store.get_async(key)).attributes.get("Content-Type")
    assert result is None or isinstance(result, str)
    return result


@pytest.mark.anyio
async def test_multipart_upload_reads_back_byte_identical(cloud_url: str) -> None:
    """12 MiB put in 1 MiB chunks (a multipart upload) reads back identical, size and SHA-256."""
    chunks = [os.urandom(MIB) for _ in range(12)]
    whole = b"".join(chunks)
    store = from_url(cloud_url)

    stored = await store.put("video/clip.mp4", stream(*chunks), "video/mp4")
    assert (stored.size, stored.sha256) == (len(whole), hashlib.sha256(whole).hexdigest())
    assert await read(store, "video/clip.mp4") == whole
    assert await content_type_of(cloud_url, "video/clip.mp4") == "video/mp4"


@pytest.mark.anyio
async def test_small_objects_keep_their_content_type(cloud_url: str) -> None:
    """An object smaller than one part is stored with the content type given to put."""
    store = from_url(cloud_url)

    await store.put("a/image.png", stream(b"\x89PNG..."), "image/png")
    assert await content_type_of(cloud_url, "a/image.png") == "image/png"


@pytest.mark.anyio
async def test_a_stream_failing_after_several_parts_leaves_nothing(cloud_url: str) -> None:
    """A source that dies after more than a part raises its own error; no object appears."""

    async def broken() -> AsyncIterator[bytes]:
        for _ in range(PART_SIZE // MIB + 3):
            yield os.urandom(MIB)
        raise ConnectionError("source went away")

    store = from_url(cloud_url)

    await store.put("k/old.bin", stream(b"old"))
    with pytest.raises(ConnectionError, match="source went away"):
        await store.put("k/new.bin", broken())
    with pytest.raises(ConnectionError, match="source went away"):
        await store.put("k/old.bin", broken())
    assert not await store.exists("k/new.bin")
    assert await read(store, "k/old.bin") == b"old"


@pytest.mark.anyio
@pytest.mark.parametrize("server", ["moto", "nanio"], ids=["s3", "nanio"])
async def test_a_failed_s3_upload_is_aborted(request: pytest.FixtureRequest, server: str) -> None:
    """After a source fails mid multipart upload, S3 holds no pending upload for the key."""
    s3_url: str = request.getfixturevalue("s3_url" if server == "moto" else "nanio_url")
    endpoint: str = request.getfixturevalue(f"{server}_endpoint")

    async def broken() -> AsyncIterator[bytes]:
        for _ in range(PART_SIZE // MIB + 3):
            yield os.urandom(MIB)
        raise ConnectionError("source went away")

    store = from_url(s3_url)

    with pytest.raises(ConnectionError):
        await store.put("k/aborted.bin", broken())
    prefix = s3_url.removeprefix(f"s3://{BUCKET}/")
    pending = servers.s3_pending_uploads(endpoint, BUCKET)
    assert [key for key in pending if key.startswith(prefix)] == []


@pytest.mark.anyio
@pytest.mark.parametrize("key", ["a\x01b", "tab\there", "del\x7f"])
async def test_control_characters_are_invalid_keys(cloud_url: str, key: str) -> None:
    """Keys obstore cannot represent are InvalidKey, for every operation, before any I/O."""
    store = from_url(cloud_url)

    async def source() -> AsyncIterator[bytes]:
        raise AssertionError("the stream must not be read")
        yield b""  # pragma: no cover

    with pytest.raises(InvalidKey):
        await store.put(key, source())
    with pytest.raises(InvalidKey):
        await store.exists(key)
    with pytest.raises(InvalidKey):
        await read(store, key)
    with pytest.raises(InvalidKey):
        await store.delete(key)


@pytest.mark.anyio
@pytest.mark.parametrize("fixture", ["s3_url", "nanio_url"], ids=["s3", "nanio"])
async def test_backend_failures_are_storage_errors_naming_backend_and_key(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    """A put into a bucket that does not exist is a StorageError naming S3 and the object."""
    request.getfixturevalue(fixture)  # the environment pointing at that server
    store = from_url("s3://no-such-bucket/p")

    with pytest.raises(StorageError, match=r"S3: could not store s3://no-such-bucket/p/k\.bin"):
        await store.put("k.bin", stream(b"x"))


@pytest.mark.parametrize(
    ("url", "kind", "uri"),
    [
        ("s3://bucket/some/prefix", S3Storage, "s3://bucket/some/prefix/a/b.png"),
        ("s3://bucket", S3Storage, "s3://bucket/a/b.png"),
        ("s3a://bucket/p/", S3Storage, "s3a://bucket/p/a/b.png"),
        ("gs://bucket/prefix", GCSStorage, "gs://bucket/prefix/a/b.png"),
        ("az://container/prefix", AzureStorage, "az://container/prefix/a/b.png"),
        ("azure://container/prefix", AzureStorage, "azure://container/prefix/a/b.png"),
        ("abfs://container/prefix", AzureStorage, "abfs://container/prefix/a/b.png"),
        (
            "abfss://container@acct.dfs.core.windows.net/prefix",
            AzureStorage,
            "abfss://container@acct.dfs.core.windows.net/prefix/a/b.png",
        ),
    ],
)
@pytest.mark.usefixtures("no_cloud_environment")
def test_from_url_builds_each_cloud_backend(
    monkeypatch: pytest.MonkeyPatch, url: str, kind: type[Storage], uri: str
) -> None:
    """Each cloud scheme gets its backend, and uri() is the bucket, prefix and key."""
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "acct")
    store = from_url(url)
    assert isinstance(store, kind)
    assert isinstance(store, Storage)
    assert store.uri("a/./b.png") == uri


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("s3://bucket/prefix?region=eu-west-1", "query parameters are not supported"),
        ("gs:///prefix", "names no bucket"),
        ("az://container/prefix", "Account must be specified"),
    ],
)
@pytest.mark.usefixtures("no_cloud_environment")
def test_from_url_refuses_what_it_cannot_honour(url: str, message: str) -> None:
    """Query strings, a missing bucket or a missing Azure account are StorageErrors."""
    with pytest.raises(StorageError, match=message):
        from_url(url)


@pytest.mark.parametrize(
    ("url", "extra"), [("s3://b/p", "s3"), ("gs://b/p", "gcs"), ("az://c", "azure")]
)
def test_a_missing_extra_is_named(monkeypatch: pytest.MonkeyPatch, url: str, extra: str) -> None:
    """Without obstore, a cloud URL is UnknownScheme saying which extra to install."""
    for name in list(sys.modules):
        if name == "obstore" or name.startswith("obstore."):
            monkeypatch.setitem(sys.modules, name, None)  # makes `import obstore` fail
    for name in ("storage._objectstore", "storage.s3", "storage.gcs", "storage.azure"):
        monkeypatch.delitem(sys.modules, name, raising=False)
    with pytest.raises(UnknownScheme, match=rf"pip install 'framehook\[{extra}\]'"):
        from_url(url)


@pytest.mark.anyio
@pytest.mark.parametrize("fixture", ["s3_url", "nanio_url"], ids=["s3", "nanio"])
async def test_small_streams_go_up_in_one_request(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    """A stream shorter than a part is a single PUT (an S3 ETag without a part count)."""
    s3_url: str = request.getfixturevalue(fixture)
    store = from_url(s3_url)
    await store.put("one.bin", stream(b"x" * 1000, b"y" * 1000))
    e_tag = (await S3Store.from_url(s3_url).head_async("one.bin"))["e_tag"]
    assert isinstance(e_tag, str)
    assert "-" not in e_tag
