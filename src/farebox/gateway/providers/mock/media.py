"""Binary bodies for the mock's audio, image and embeddings routes, generated offline.

The audio is silence in real container formats (WAV, or MPEG-1 Layer III frames), long enough to be
plausible for the text spoken; the image is a valid 1x1 PNG; an embedding is a unit vector of float32.
"""

from __future__ import annotations

import base64
import itertools
import math
import random
import struct
from array import array
from collections.abc import Iterator, Sequence
from hashlib import blake2b

import orjson

__all__ = [
    "PNG_1X1",
    "PNG_1X1_BASE64",
    "embedding_basis",
    "embedding_vector",
    "embeddings_body",
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
_EMBEDDING_BLOCKS = 16
_EMBEDDINGS_PER_PIECE = 32


def wav_silence(seconds: float) -> bytes:
    """A WAV file (8 kHz, 8-bit, mono) of `seconds` of silence."""
    samples = b"\x80" * max(1, int(seconds * _WAV_RATE))
    header = b"RIFF" + struct.pack("<I", 36 + len(samples)) + b"WAVE"
    fmt = b"fmt " + struct.pack("<IHHIIHH", 16, 1, 1, _WAV_RATE, _WAV_RATE, 1, 8)
    return header + fmt + b"data" + struct.pack("<I", len(samples)) + samples


def mp3_silence(seconds: float) -> bytes:
    """MPEG-1 Layer III frames making `seconds` of silence."""
    return _MP3_FRAME * max(1, round(seconds / _MP3_FRAME_SECONDS))


def embedding_basis(dimensions: int) -> array[float]:
    """The fixed unit vector of `dimensions` float32 values that every embedding of that size is a rotation of."""
    state = 0x9E3779B97F4A7C15
    values = []
    for _ in range(dimensions):
        state = (state * 6364136223846793005 + 1442695040888963407) % (1 << 64)
        values.append(((state >> 33) / (1 << 31)) - 1.0)
    norm = math.fsum(value * value for value in values) ** 0.5 or 1.0
    return array("f", (value / norm for value in values))


def embedding_vector(text: str, basis: array[float]) -> array[float]:
    """A deterministic unit vector for `text` (same text, same vector): `basis` in 16 blocks, shuffled by its hash.

    Reordering a unit vector's values keeps it a unit vector, and moving 16 blocks costs microseconds whatever
    the dimensions, so a request for 2048 embeddings is quick; 16! orders make two texts' vectors differ.
    """
    digest = blake2b(text.encode("utf-8", "replace"), digest_size=8).digest()
    size = len(basis)
    pieces = min(size, _EMBEDDING_BLOCKS)
    cuts = [size * index // pieces * basis.itemsize for index in range(pieces + 1)]
    raw = basis.tobytes()
    blocks = [raw[start:end] for start, end in itertools.pairwise(cuts)]
    random.Random(int.from_bytes(digest, "little")).shuffle(blocks)
    vector = array("f")
    vector.frombytes(b"".join(blocks))
    return vector


def encode_embedding(vector: array[float], *, encoding_format: str) -> list[float] | str:
    """An embedding as OpenAI sends it: a list of floats, or base64 of little-endian float32."""
    if encoding_format == "base64":
        return base64.b64encode(vector.tobytes()).decode()
    return vector.tolist()


def embeddings_body(
    texts: Sequence[str], *, dimensions: int, encoding: str, model: str, usage: dict[str, int]
) -> Iterator[bytes]:
    """An embeddings answer's JSON, one embedding per text, in pieces of a few embeddings each."""
    basis = embedding_basis(dimensions)
    piece = [b'{"object":"list","data":[']
    for index, text in enumerate(texts):
        vector = encode_embedding(embedding_vector(text, basis), encoding_format=encoding)
        item = orjson.dumps({"object": "embedding", "index": index, "embedding": vector})
        piece.append(b"," + item if index else item)
        if len(piece) >= _EMBEDDINGS_PER_PIECE:
            yield b"".join(piece)
            piece = []
    piece.append(b'],"model":' + orjson.dumps(model) + b',"usage":' + orjson.dumps(usage) + b"}")
    yield b"".join(piece)
