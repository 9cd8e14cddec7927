"""What the gateway reads from binary request bodies: multipart form fields and audio durations.

Multipart parsing covers what the OpenAI SDKs send for transcriptions (one file part and a few text fields).
A transcription is priced by the seconds of audio it was given: exact for WAV and MP3 frame headers.
"""

from __future__ import annotations

import struct

__all__ = ["audio_seconds", "parse_multipart"]

_MP3_BITRATES_KBPS = (0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_ASSUMED_BYTES_PER_SECOND = 16000
"""128 kbps: the guess for audio whose duration cannot be read from its header."""


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
