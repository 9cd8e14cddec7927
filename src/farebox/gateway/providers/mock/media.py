"""Binary bodies for the mock's audio and image routes, generated offline.

The audio is silence in real container formats (WAV, or MPEG-1 Layer III frames), long enough to be
plausible for the text spoken; the image is a valid 1x1 PNG.
"""

from __future__ import annotations

import base64
import struct
from array import array
from hashlib import blake2b

__all__ = [
    "PNG_1X1",
    "PNG_1X1_BASE64",
    "embedding_vector",
    "encode_embedding",
    "mp3_silence",
    "wav_silence",
]

PNG_1X1_BASE64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
"""A valid 1x1 PNG, the mock's generated image, as base64 (how `b64_json` sends it)."""
PNG_1X1 = base64.b64decode(PNG_1X1_BASE64)

_WAV_RATE = 8000
_MP3_FRAME = b"\xff\xfb\x18\xc0" + bytes(140)
"""One MPEG-1 Layer III frame: 32 kbps, 32 kHz, mono, 1152 samples (36 ms), all-zero side info = silence."""
_MP3_FRAME_SECONDS = 1152 / 32000


def wav_silence(seconds: float) -> bytes:
    """A WAV file (8 kHz, 8-bit, mono) of `seconds` of silence."""
    samples = b"\x80" * max(1, int(seconds * _WAV_RATE))
    header = b"RIFF" + struct.pack("<I", 36 + len(samples)) + b"WAVE"
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, _WAV_RATE, _WAV_RATE, 1, 8)
    return header + fmt + b"data" + struct.pack("<I", len(samples)) + samples


def mp3_silence(seconds: float) -> bytes:
    """MPEG-1 Layer III frames making `seconds` of silence."""
    return _MP3_FRAME * max(1, round(seconds / _MP3_FRAME_SECONDS))


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
