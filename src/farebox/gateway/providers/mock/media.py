"""Binary bodies for the mock's audio and image routes, and the little multipart parsing they need.

The audio is silence in real container formats (WAV, or MPEG-1 Layer III frames), long enough to be
plausible for the text spoken; the image is a valid 1x1 PNG. Multipart parsing covers what the OpenAI
SDKs send for transcriptions (one file part and a few text fields), without a multipart dependency.
"""

from __future__ import annotations

import base64
import struct
from array import array
from hashlib import blake2b

__all__ = [
    "PNG_1X1",
    "PNG_1X1_BASE64",
    "audio_seconds",
    "embedding_vector",
    "encode_embedding",
    "mp3_silence",
    "parse_multipart",
    "wav_silence",
]

PNG_1X1_BASE64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
"""A valid 1x1 PNG, the mock's generated image, as base64 (how `b64_json` sends it)."""
PNG_1X1 = base64.b64decode(PNG_1X1_BASE64)

_WAV_RATE = 8000
_MP3_FRAME = b"\xff\xfb\x18\xc0" + bytes(140)
"""One MPEG-1 Layer III frame: 32 kbps, 32 kHz, mono, 1152 samples (36 ms), all-zero side info = silence."""
_MP3_FRAME_SECONDS = 1152 / 32000
_MP3_BITRATES_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_ASSUMED_BYTES_PER_SECOND = 16000
"""128 kbps: the guess for audio whose duration cannot be read from its header."""


def wav_silence(seconds: float) -> bytes:
    """A WAV file (8 kHz, 8-bit, mono) of `seconds` of silence."""
    samples = b"\x80" * max(1, int(seconds * _WAV_RATE))
    header = b"RIFF" + struct.pack("<I", 36 + len(samples)) + b"WAVE"
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, _WAV_RATE, _WAV_RATE, 1, 8)
    return header + fmt + b"data" + struct.pack("<I", len(samples)) + samples


def mp3_silence(seconds: float) -> bytes:
    """MPEG-1 Layer III frames making `seconds` of silence."""
    return _MP3_FRAME * max(1, round(seconds / _MP3_FRAME_SECONDS))


def audio_seconds(data: bytes) -> float:
    """The duration of an audio file: exact for WAV and MP3 frame headers, a 128 kbps guess otherwise."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        byte_rate, data_size, offset = 0, 0, 12
        while offset + 8 <= len(data):
            chunk_id, size = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
            if chunk_id == b"fmt " and offset + 20 <= len(data):
                byte_rate = struct.unpack_from("<I", data, offset + 16)[0]
            elif chunk_id == b"data":
                data_size = min(size, len(data) - offset - 8)
                break
            offset += 8 + size + (size & 1)
        if byte_rate:
            return data_size / byte_rate
    if len(data) >= 4 and data[0] == 0xFF and data[1] in (0xFB, 0xFA):
        bitrate = _MP3_BITRATES_KBPS[data[2] >> 4] if data[2] >> 4 < len(_MP3_BITRATES_KBPS) else 0
        if bitrate:
            return len(data) * 8 / (bitrate * 1000)
    return len(data) / _ASSUMED_BYTES_PER_SECOND


def parse_multipart(body: bytes, content_type: str) -> dict[str, bytes]:
    """The parts of a `multipart/form-data` body, by field name (files and text fields alike)."""
    boundary = ""
    for parameter in content_type.split(";")[1:]:
        key, _, value = parameter.strip().partition("=")
        if key.lower() == "boundary":
            boundary = value.strip('"')
    if not boundary:
        return {}
    fields: dict[str, bytes] = {}
    for part in body.split(b"--" + boundary.encode()):
        head, separator, content = part.partition(b"\r\n\r\n")
        if not separator:
            continue
        name = _disposition_name(head.decode("utf-8", "replace"))
        if name is not None:
            fields[name] = content[:-2] if content.endswith(b"\r\n") else content
    return fields


def _disposition_name(head: str) -> str | None:
    for line in head.split("\r\n"):
        if line.lower().startswith("content-disposition:"):
            for parameter in line.split(";")[1:]:
                key, _, value = parameter.strip().partition("=")
                if key.lower() == "name":
                    return value.strip('"')
    return None


def embedding_vector(text: str, dimensions: int) -> array[float]:
    """A deterministic unit-length vector for `text` (same text, same vector), as float32."""
    seed = blake2b(text.encode("utf-8", "replace"), digest_size=8).digest()
    state = int.from_bytes(seed, "little") | 1
    values = array("f")
    for _ in range(dimensions):
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        values.append(((state >> 33) / (1 << 31)) - 1.0)
    norm = sum(value * value for value in values) ** 0.5 or 1.0
    return array("f", (value / norm for value in values))


def encode_embedding(vector: array[float], *, encoding_format: str) -> list[float] | str:
    """An embedding as OpenAI sends it: a list of floats, or base64 of little-endian float32."""
    if encoding_format == "base64":
        return base64.b64encode(vector.tobytes()).decode()
    return vector.tolist()
