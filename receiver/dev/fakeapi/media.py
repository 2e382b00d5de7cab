"""Small, real media files built with the standard library, one per job and file name.

Each file is a valid, decodable file of its type (a PNG, a baseline JPEG, a WebP, an MP4, an
MP3) and carries a token (the job id and file name) in a metadata or padding area, so every
job's files have their own checksums while staying a few hundred bytes.
"""

from __future__ import annotations

import hashlib
import struct
import zlib
from collections.abc import Callable

__all__ = ["CONTENT_TYPES", "media_file"]

CONTENT_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "mp4": "video/mp4",
    "mp3": "audio/mpeg",
}
"""The extensions this module builds, with the MIME type each file is detected as."""


def _colour(token: bytes) -> bytes:
    return hashlib.sha256(token).digest()[:3]


def png(token: bytes, size: int = 8) -> bytes:
    """A ``size``x``size`` RGB PNG of one colour, with ``token`` in a ``tEXt`` chunk."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        crc = zlib.crc32(kind + data)
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)

    header = struct.pack(">IIBBBBB", size, size, 8, 2, 0, 0, 0)
    scanlines = (b"\0" + _colour(token) * size) * size
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"tEXt", b"Comment\0" + token)
        + chunk(b"IDAT", zlib.compress(scanlines))
        + chunk(b"IEND", b"")
    )


def _segment(marker: int, payload: bytes) -> bytes:
    return struct.pack(">BBH", 0xFF, marker, len(payload) + 2) + payload


def jpeg(token: bytes) -> bytes:
    """An 8x8 mid-grey baseline JPEG, with ``token`` in a ``COM`` segment.

    One grey block: its DC difference and its AC coefficients are all zero, so each Huffman
    table needs one symbol (category 0 for DC, end-of-block for AC), coded as a single ``0`` bit.
    """
    jfif = b"JFIF\0\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    quantisation = b"\x00" + b"\x01" * 64  # table 0, 8-bit, all ones
    frame = struct.pack(">BHHB", 8, 8, 8, 1) + b"\x01\x11\x00"  # one component, 1x1, table 0
    one_symbol = b"\x01" + b"\x00" * 15 + b"\x00"  # one code of length 1, for symbol 0
    huffman = b"\x00" + one_symbol + b"\x10" + one_symbol  # DC table 0, AC table 0
    scan = b"\x01\x01\x00\x00\x3f\x00"  # component 1 uses DC 0 / AC 0; spectral 0..63
    entropy = b"\x3f"  # bits 0 (DC diff 0), 0 (EOB), then 1-padding
    return (
        b"\xff\xd8"
        + _segment(0xE0, jfif)
        + _segment(0xFE, token)
        + _segment(0xDB, quantisation)
        + _segment(0xC0, frame)
        + _segment(0xC4, huffman)
        + _segment(0xDA, scan)
        + entropy
        + b"\xff\xd9"
    )


def _riff_chunk(kind: bytes, data: bytes) -> bytes:
    padding = b"\0" if len(data) % 2 else b""
    return kind + struct.pack("<I", len(data)) + data + padding


# A 1x1 lossless VP8L bitstream (the well-known feature-detection image).
_VP8L_1X1 = bytes.fromhex("2f00000010071011118888fe0700")


def webp(token: bytes) -> bytes:
    """A 1x1 lossless WebP in the extended format, with ``token`` in an ``XMP `` chunk."""
    flags = 0x04 | 0x10  # XMP metadata present; the VP8L image has an alpha channel
    vp8x = struct.pack("<B3x", flags) + (0).to_bytes(3, "little") + (0).to_bytes(3, "little")
    body = (
        b"WEBP"
        + _riff_chunk(b"VP8X", vp8x)
        + _riff_chunk(b"VP8L", _VP8L_1X1)
        + _riff_chunk(b"XMP ", token)
    )
    return b"RIFF" + struct.pack("<I", len(body)) + body


def _box(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data) + 8) + kind + data


def mp4(token: bytes) -> bytes:
    """An ISO base media file: ``ftyp``, a ``moov`` with its movie header, and ``mdat``.

    The movie has no tracks (a valid, empty presentation); ``token`` is the media data.
    """
    ftyp = _box(b"ftyp", b"isom" + struct.pack(">I", 512) + b"isomiso2mp41")
    matrix = struct.pack(">9I", 0x10000, 0, 0, 0, 0x10000, 0, 0, 0, 0x40000000)
    mvhd = _box(
        b"mvhd",
        struct.pack(">B3xIIII", 0, 0, 0, 1000, 0)  # version/flags, times, timescale, duration
        + struct.pack(">IH10x", 0x10000, 0x100)  # rate 1.0, volume 1.0, reserved
        + matrix
        + b"\0" * 24  # pre-defined
        + struct.pack(">I", 1),  # next track id
    )
    return ftyp + _box(b"moov", mvhd) + _box(b"mdat", token)


# MPEG-1 Layer III, 128 kbit/s, 44.1 kHz, mono, no CRC, no padding: 417-byte frames.
_MP3_HEADER = bytes.fromhex("fffb90c4")
_MP3_FRAME_BYTES = 144 * 128_000 // 44_100


def _synchsafe(value: int) -> bytes:
    return bytes((value >> shift) & 0x7F for shift in (21, 14, 7, 0))


def mp3(token: bytes, frames: int = 3) -> bytes:
    """An MP3: an ID3v2.4 tag with ``token`` in a ``TXXX`` frame, then silent MPEG frames."""
    text = b"\x03framehook\0" + token  # UTF-8, description, value
    frame = b"TXXX" + _synchsafe(len(text)) + b"\0\0" + text
    tag = b"ID3\x04\x00\x00" + _synchsafe(len(frame)) + frame
    silence = _MP3_HEADER + b"\0" * (_MP3_FRAME_BYTES - len(_MP3_HEADER))
    return tag + silence * frames


_BUILDERS: dict[str, Callable[[bytes], bytes]] = {
    "png": png,
    "jpeg": jpeg,
    "webp": webp,
    "mp4": mp4,
    "mp3": mp3,
}


def media_file(name: str, token: str) -> bytes:
    """The bytes of a file of ``name``'s type (by its extension), unique to ``token``.

    Args:
        name: a file name ending in one of :data:`CONTENT_TYPES`' extensions (``jpg`` too).
        token: what makes this file differ from every other one (job id and file name).

    Raises:
        ValueError: the extension is not one this module builds.
    """
    extension = name.rsplit(".", 1)[-1].lower()
    extension = "jpeg" if extension == "jpg" else extension
    builder = _BUILDERS.get(extension)
    if builder is None:
        raise ValueError(f"no media of type {extension!r}; known: {', '.join(CONTENT_TYPES)}")
    return builder(token.encode("utf-8"))
