"""Presigned URLs: the cloud backends sign GET links that a plain HTTP client, without
credentials, reads the object from until they expire; local and memory stores cannot sign."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

import anyio
import httpx
import pytest

from storage import (
    InvalidKey,
    LocalStorage,
    MemoryStorage,
    Presigning,
    StorageError,
    from_url,
    presigned_url,
)
from storage.azure import AzureStorage
from storage.gcs import GCSStorage
from storage.s3 import S3Storage
from tests.storage.conftest import stream

SIGNING = ["s3", "nanio", "azure"]  # s3 is moto; GCS has no emulator here that signs


@pytest.fixture(params=SIGNING)
def signing_url(request: pytest.FixtureRequest) -> str:
    """The URL of an empty prefix on each emulated cloud that can sign."""
    url: str = request.getfixturevalue(f"{request.param}_url")
    return url


async def status_of(url: str) -> int:
    """The status a plain GET, no credentials, gets."""
    async with httpx.AsyncClient() as client:
        return (await client.get(url)).status_code


@pytest.mark.anyio
async def test_a_presigned_url_serves_the_object_without_credentials(signing_url: str) -> None:
    """The store's signed URL for an object under its prefix answers its exact bytes, with
    their content type, to a plain GET."""
    store = from_url(signing_url)
    body = b"\x89PNG presigned " * 100
    await store.put("job-1/image-1.png", stream(body), "image/png")

    url = await presigned_url(store, "job-1/image-1.png", timedelta(minutes=10))
    assert url is not None
    async with httpx.AsyncClient() as client:
        answer = await client.get(url)
        assert answer.status_code == 200, answer.text
        assert answer.content == body
        assert answer.headers["content-type"] == "image/png"


@pytest.mark.anyio
@pytest.mark.parametrize("fixture", ["nanio_url", "azure_url"], ids=["nanio", "azure"])
async def test_a_presigned_url_stops_working_when_it_expires(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    """Valid for 3 seconds: served at once, refused (403) once the time is past. (moto does not
    check a presigned URL's signature or expiry: nanio and Azurite do.)"""
    store = from_url(request.getfixturevalue(fixture))
    await store.put("short.bin", stream(b"soon gone"))
    url = await presigned_url(store, "short.bin", timedelta(seconds=3))
    assert url is not None
    assert await status_of(url) == 200
    deadline = time.monotonic() + 20
    while await status_of(url) != 403:
        assert time.monotonic() < deadline, "the presigned URL never expired"
        await anyio.sleep(0.25)


@pytest.mark.anyio
@pytest.mark.parametrize("fixture", ["nanio_url", "azure_url"], ids=["nanio", "azure"])
async def test_a_tampered_presigned_url_is_refused(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    """A signed URL whose path is changed to another object's is refused: the signature
    covers the key."""
    store = from_url(request.getfixturevalue(fixture))
    await store.put("mine.bin", stream(b"mine"))
    await store.put("other.bin", stream(b"other"))
    url = await presigned_url(store, "mine.bin", timedelta(minutes=5))
    assert url is not None
    assert await status_of(url.replace("mine.bin", "other.bin")) == 403


@pytest.mark.anyio
@pytest.mark.parametrize("key", ["a/sp ace.png", "a/\u00e9.png"])
async def test_azure_refuses_to_sign_names_it_would_sign_wrongly(azure_url: str, key: str) -> None:
    """obstore signs Azure links to names that need percent-encoding wrongly (Azurite, like
    Azure, refuses them): such a name gets a StorageError saying so, not a link that fails."""
    store = from_url(azure_url)
    await store.put(key, stream(b"x"))
    with pytest.raises(StorageError, match="cannot sign a link"):
        await presigned_url(store, key, timedelta(minutes=5))


@pytest.mark.anyio
@pytest.mark.parametrize("fixture", ["s3_url", "nanio_url"], ids=["s3", "nanio"])
async def test_s3_signs_names_that_need_encoding(
    request: pytest.FixtureRequest, fixture: str
) -> None:
    """S3 links to names with a space, a non-ASCII letter, ``?`` and ``#`` work."""
    store = from_url(request.getfixturevalue(fixture))
    for key in ("a/sp ace.png", "a/\u00e9.png", "a/q?x#y.png"):
        await store.put(key, stream(key.encode()))
        url = await presigned_url(store, key, timedelta(minutes=5))
        assert url is not None
        async with httpx.AsyncClient() as client:
            assert (await client.get(url)).content == key.encode()


@pytest.mark.anyio
async def test_signing_checks_its_arguments(nanio_url: str) -> None:
    """A validity that is not positive is a ValueError; a key escaping the store InvalidKey."""
    store = from_url(nanio_url)
    with pytest.raises(ValueError, match="valid for some time"):
        await presigned_url(store, "a.png", timedelta(0))
    with pytest.raises(InvalidKey):
        await presigned_url(store, "../a.png", timedelta(minutes=1))


@pytest.mark.anyio
async def test_stores_that_cannot_sign_give_none(tmp_path: Path) -> None:
    """Local and memory stores have no presigned URLs: ``None``, and they are not
    ``Presigning``; the cloud backends are."""
    for store in (LocalStorage(tmp_path), MemoryStorage("presign")):
        assert not isinstance(store, Presigning)
        assert await presigned_url(store, "a.png", timedelta(minutes=1)) is None
    assert all(issubclass(cls, Presigning) for cls in (S3Storage, GCSStorage, AzureStorage))
