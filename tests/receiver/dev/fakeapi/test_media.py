"""The fake's media files: real, well-formed files of their type, different for every job."""

from __future__ import annotations

import hashlib
import struct
import zlib

import puremagic
import pytest

from receiver.dev.fakeapi import media_file
from receiver.dev.fakeapi.media import CONTENT_TYPES
from tests.receiver.dev.fakeapi.conftest import Sink, create_job, running_fake


@pytest.mark.parametrize(("extension", "mime"), sorted(CONTENT_TYPES.items()))
def test_each_file_is_detected_as_its_type_by_puremagic(extension: str, mime: str) -> None:
    """puremagic (what framehook's downloader uses) detects each file, whole or its first 4 KiB."""
    data = media_file(f"x.{extension}", "job/x")
    assert puremagic.from_string(data, mime=True) == mime
    assert puremagic.from_string(data[:4096], mime=True) == mime


def test_jpg_is_a_jpeg_and_unknown_types_are_refused() -> None:
    """`.jpg` builds a JPEG; an extension the module cannot build is a ValueError."""
    assert media_file("a.jpg", "t") == media_file("a.jpeg", "t")
    with pytest.raises(ValueError, match="no media of type 'gif'"):
        media_file("a.gif", "t")


@pytest.mark.parametrize("extension", sorted(CONTENT_TYPES))
def test_files_differ_by_token_and_are_deterministic(extension: str) -> None:
    """Two tokens give two checksums; the same token gives the same bytes."""
    first = media_file(f"a.{extension}", "job-1/a")
    assert first == media_file(f"a.{extension}", "job-1/a")
    assert (
        hashlib.sha256(first).digest()
        != hashlib.sha256(media_file(f"a.{extension}", "job-2/a")).digest()
    )


def test_png_chunks_have_valid_crcs_and_the_pixels_decompress() -> None:
    """Every PNG chunk's CRC matches; IDAT inflates to the 8x8 RGB scanlines; IEND ends it."""
    data = media_file("a.png", "job/a.png")
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    offset, kinds, pixels = 8, [], b""
    while offset < len(data):
        (length,) = struct.unpack(">I", data[offset : offset + 4])
        kind, payload = data[offset + 4 : offset + 8], data[offset + 8 : offset + 8 + length]
        (crc,) = struct.unpack(">I", data[offset + 8 + length : offset + 12 + length])
        assert crc == zlib.crc32(kind + payload), kind
        kinds.append(kind)
        pixels += payload if kind == b"IDAT" else b""
        offset += 12 + length
    assert kinds == [b"IHDR", b"tEXt", b"IDAT", b"IEND"]
    assert len(zlib.decompress(pixels)) == 8 * (1 + 8 * 3)


def test_jpeg_is_a_sequence_of_well_formed_segments() -> None:
    """SOI, then segments whose lengths chain up to the scan, then entropy data and EOI."""
    data = media_file("a.jpeg", "job/a.jpeg")
    assert data[:2] == b"\xff\xd8"
    assert data[-2:] == b"\xff\xd9"
    offset, markers = 2, []
    while data[offset + 1] != 0xDA:
        assert data[offset] == 0xFF
        markers.append(data[offset + 1])
        offset += 2 + struct.unpack(">H", data[offset + 2 : offset + 4])[0]
    assert markers == [0xE0, 0xFE, 0xDB, 0xC0, 0xC4]
    assert b"job/a.jpeg" in data


def test_webp_riff_sizes_add_up() -> None:
    """The RIFF size is the file's size minus 8, and the chunks (VP8X, VP8L, XMP) fill it."""
    data = media_file("a.webp", "job/a.webp")
    assert data[:4] == b"RIFF"
    assert data[8:12] == b"WEBP"
    assert struct.unpack("<I", data[4:8])[0] == len(data) - 8
    offset, kinds = 12, []
    while offset < len(data):
        size = struct.unpack("<I", data[offset + 4 : offset + 8])[0]
        kinds.append(data[offset : offset + 4])
        offset += 8 + size + size % 2
    assert offset == len(data)
    assert kinds == [b"VP8X", b"VP8L", b"XMP "]


def test_mp4_boxes_fill_the_file() -> None:
    """ftyp, moov (with mvhd) and mdat, whose sizes add up to the file's."""
    data = media_file("a.mp4", "job/a.mp4")
    offset, kinds = 0, []
    while offset < len(data):
        size = struct.unpack(">I", data[offset : offset + 4])[0]
        kinds.append(data[offset + 4 : offset + 8])
        offset += size
    assert offset == len(data)
    assert kinds == [b"ftyp", b"moov", b"mdat"]
    moov = data.index(b"moov") + 4
    # A version-0 movie header is 108 bytes; the movie's only child.
    assert struct.unpack(">I4s", data[moov : moov + 8]) == (108, b"mvhd")
    assert struct.unpack(">I", data[moov - 8 : moov - 4])[0] == 8 + 108


def test_mp3_is_an_id3_tag_then_whole_mpeg_frames() -> None:
    """The ID3v2 size (synchsafe) lands on an MPEG-1 Layer III frame; frames fill the rest."""
    data = media_file("a.mp3", "job/a.mp3")
    assert data[:3] == b"ID3"
    size = 0
    for byte in data[6:10]:
        size = size << 7 | byte
    offset, frames = 10 + size, 0
    while offset < len(data):
        assert data[offset : offset + 2] == b"\xff\xfb", offset
        offset += 144 * 128_000 // 44_100
        frames += 1
    assert offset == len(data)
    assert frames >= 2


@pytest.mark.anyio
async def test_the_cdn_serves_each_jobs_own_files() -> None:
    """Two jobs' first images are different files; a file not in a result is 404."""
    sink = Sink()
    async with running_fake(sink=sink) as (client, fake):
        await create_job(client)
        await create_job(client)
        await fake.settle()
        urls = [r.body["result"]["images"][0] for r in sink.received]
        bodies = [(await client.get(url)).content for url in urls]
        assert bodies[0] != bodies[1]
        missing = urls[0].replace("-1.png", "-9.png")
        assert (await client.get(missing)).status_code == 404
        assert (await client.get("/cdn/images/nothing.png")).status_code == 404
