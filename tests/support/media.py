"""Bytes that start like real media files (what the content check reads), any size."""

from __future__ import annotations

import random
import struct
import zlib

__all__ = ["media_bytes"]


def _png_header() -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    ihdr = struct.pack(">IIBBBBB", 1, 1, 8, 2, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(b"\0" * 4))


HEADERS = {
    "png": _png_header(),
    "jpeg": b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00",
    "webp": b"RIFF\x24\x00\x00\x00WEBPVP8 ",
    "mp4": b"\x00\x00\x00\x20ftypisom\x00\x00\x02\x00isomiso2avc1mp41",
    "mp3": b"ID3\x04\x00\x00\x00\x00\x00\x00",
}
HEADERS["jpg"] = HEADERS["jpeg"]


def media_bytes(ext: str, size: int, seed: int = 0) -> bytes:
    """``size`` bytes (at least the header) of a file of type ``ext``: its real signature,
    then deterministic noise (so every file has its own checksum)."""
    header = HEADERS[ext]
    rest = max(0, size - len(header))
    return header + random.Random(f"{ext}-{size}-{seed}").randbytes(rest)
