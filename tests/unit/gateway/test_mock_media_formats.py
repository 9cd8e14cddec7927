"""The mock's binary formats: WAV and MP3 silence and their durations, multipart parsing, embedding vectors."""

from __future__ import annotations

import base64
import io
import math
import struct
import wave
from array import array

import httpx
import pytest
from hypothesis import given
from hypothesis import strategies as st

from farebox.gateway.providers.media import audio_seconds, parse_multipart
from farebox.gateway.providers.mock.media import (
    PNG_1X1,
    embedding_basis,
    embedding_vector,
    encode_embedding,
    mp3_silence,
    wav_silence,
)

MP3_FRAME_SECONDS = 1152 / 32000


@given(st.floats(min_value=0.001, max_value=120))
def test_wav_silence_lasts_what_was_asked_and_reads_back_exactly(seconds: float) -> None:
    data = wav_silence(seconds)
    with wave.open(io.BytesIO(data)) as audio:
        assert (audio.getnchannels(), audio.getsampwidth(), audio.getframerate()) == (1, 1, 8000)
        frames = audio.getnframes()
        assert set(audio.readframes(frames)) == {0x80}  # 8-bit silence is the midpoint
    assert frames == max(1, int(seconds * 8000))
    assert audio_seconds(data) == frames / 8000


@given(st.floats(min_value=0, max_value=120))
def test_mp3_silence_is_whole_frames_and_reads_back_within_a_frame(seconds: float) -> None:
    data = mp3_silence(seconds)
    assert len(data) % 144 == 0 and data[:4] == b"\xff\xfb\x18\xc0"
    frames = len(data) // 144
    assert frames == max(1, round(seconds / MP3_FRAME_SECONDS))
    # The header says 32 kbps: 144 bytes a frame is 36 ms.
    assert audio_seconds(data) == pytest.approx(frames * MP3_FRAME_SECONDS)
    if seconds >= MP3_FRAME_SECONDS:
        assert abs(audio_seconds(data) - seconds) <= MP3_FRAME_SECONDS / 2 + 1e-9


def wav_with_chunks(*chunks: tuple[bytes, bytes], byte_rate: int = 8000) -> bytes:
    body = b"WAVE"
    for chunk_id, payload in chunks:
        body += chunk_id + struct.pack("<I", len(payload)) + payload + (b"\0" if len(payload) % 2 else b"")
    return b"RIFF" + struct.pack("<I", len(body)) + body


FMT = (b"fmt ", struct.pack("<HHIIHH", 1, 1, 8000, 8000, 1, 8))


@pytest.mark.parametrize(
    ("data", "seconds"),
    [
        (wav_with_chunks(FMT, (b"data", b"\x80" * 16000)), 2.0),
        (wav_with_chunks(FMT, (b"LIST", b"INFOISFT\x05\x00\x00\x00mock\x00"), (b"data", b"\x80" * 4000)), 0.5),
        (wav_with_chunks(FMT, (b"odd ", b"abc"), (b"data", b"\x80" * 800)), 0.1),  # odd chunks are padded
        # a data chunk that claims more than was sent: what arrived is what lasts
        (wav_with_chunks(FMT, (b"data", b"\x80" * 800))[:-400], 0.05),
    ],
    ids=["plain", "list-chunk-first", "odd-sized-chunk", "truncated"],
)
def test_wav_duration_is_read_from_its_chunks(data: bytes, seconds: float) -> None:
    assert audio_seconds(data) == pytest.approx(seconds)


@pytest.mark.parametrize(
    ("data", "seconds"),
    [
        (b"\xff\xfb\x90\x64" + bytes(412), 416 * 8 / 128000),  # bitrate index 9: 128 kbps
        (b"\xff\xfa\xe0\x00" + bytes(996), 1000 * 8 / 320000),  # index 14: 320 kbps, CRC-protected header
        (b"\xff\xfb\x00\x00" + bytes(15996), 1.0),  # "free" bitrate: unknown, so the 128 kbps guess
        (b"\xff\xfb\xf0\x00" + bytes(15996), 1.0),  # index 15 is invalid: the guess again
        (wav_with_chunks((b"data", bytes(15980))), 1.0),  # no `fmt `, no byte rate: the guess on all 16000 bytes
        (b"OggS" + bytes(31996), 2.0),
        (b"", 0.0),
    ],
    ids=["mp3-128k", "mp3-320k-crc", "mp3-free", "mp3-bad-index", "wav-no-fmt", "ogg", "empty"],
)
def test_other_audio_durations(data: bytes, seconds: float) -> None:
    assert audio_seconds(data) == pytest.approx(seconds)


def multipart(files: dict[str, tuple[str, bytes, str]], data: dict[str, str]) -> tuple[bytes, str]:
    """A multipart body exactly as httpx (and so the OpenAI SDK) encodes one."""
    request = httpx.Request("POST", "http://mock/", files=files, data=data)
    return request.read(), request.headers["content-type"]


def test_a_form_encoded_by_httpx_parses_back() -> None:
    audio = wav_silence(0.2) + b"\r\n--not-the-boundary\r\n\r\n"  # CRLFs and dashes inside the file are kept
    body, content_type = multipart(
        {"file": ("speech.wav", audio, "audio/wav")},
        {"model": "whisper-1", "response_format": "verbose_json", "prompt": "naïve café"},
    )
    assert parse_multipart(body, content_type) == {
        "file": audio,
        "model": b"whisper-1",
        "response_format": b"verbose_json",
        "prompt": "naïve café".encode(),
    }


@pytest.mark.parametrize(
    "content_type",
    [
        'multipart/form-data; boundary="XyZ"',
        "multipart/form-data;BOUNDARY=XyZ",
        "multipart/form-data; charset=utf-8; boundary=XyZ",
    ],
)
def test_boundary_parameter_forms(content_type: str) -> None:
    body = b'--XyZ\r\nContent-Disposition: form-data; name="model"\r\n\r\nm\r\n--XyZ--\r\n'
    assert parse_multipart(body, content_type) == {"model": b"m"}


@pytest.mark.parametrize(
    ("body", "content_type"),
    [
        (b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nm\r\n--b--', "multipart/form-data"),
        (b'--b\r\nContent-Disposition: form-data; name="model"\r\n\r\nm\r\n--b--', "application/json"),
        (b'{"model": "m"}', "multipart/form-data; boundary=b"),
        (b"--b\r\nContent-Type: text/plain\r\n\r\nno name\r\n--b--\r\n", "multipart/form-data; boundary=b"),
        (b'--b\r\nContent-Disposition: form-data; name="model"\r\nno blank line\r\n--b--',
         "multipart/form-data; boundary=b"),
    ],
    ids=["no-boundary", "not-multipart", "json-body", "part-without-disposition", "part-without-header-end"],
)  # fmt: skip
def test_unreadable_forms_give_no_fields(body: bytes, content_type: str) -> None:
    assert parse_multipart(body, content_type) == {}


def test_field_names_come_from_the_disposition_whatever_its_case_and_the_last_duplicate_wins() -> None:
    body = (
        b"--b\r\ncontent-disposition: form-data; NAME=model\r\n\r\nfirst\r\n"
        b'--b\r\nContent-Type: text/plain\r\nContent-Disposition: form-data; name="model"\r\n\r\nsecond\r\n'
        b"--b--\r\n"
    )
    assert parse_multipart(body, "multipart/form-data; boundary=b") == {"model": b"second"}


@given(st.text(max_size=50), st.integers(1, 64))
def test_embeddings_are_deterministic_unit_vectors(text: str, dimensions: int) -> None:
    basis = embedding_basis(dimensions)
    vector = embedding_vector(text, basis)
    assert len(vector) == dimensions
    assert vector == embedding_vector(text, embedding_basis(dimensions))
    assert math.sqrt(sum(value * value for value in vector)) == pytest.approx(1.0, rel=1e-5)


def test_different_texts_give_different_vectors() -> None:
    basis = embedding_basis(1536)
    vectors = {embedding_vector(f"text {index}", basis).tobytes() for index in range(2048)}
    assert len(vectors) == 2048  # 2048 inputs, as many vectors
    assert embedding_vector("hello", embedding_basis(8)) != embedding_vector("hello!", embedding_basis(8))
    assert embedding_vector("a\ud800", basis) == embedding_vector("a?", basis)  # lone surrogates encode as `?`


def test_embedding_encodings() -> None:
    vector = embedding_vector("fare", embedding_basis(5))
    floats = encode_embedding(vector, encoding_format="float")
    assert isinstance(floats, list) and floats == vector.tolist()
    encoded = encode_embedding(vector, encoding_format="base64")
    assert isinstance(encoded, str)
    decoded = array("f")
    decoded.frombytes(base64.b64decode(encoded))  # little-endian float32, as OpenAI sends it
    assert decoded == vector


def test_the_generated_image_is_a_1x1_png() -> None:
    assert PNG_1X1[:8] == b"\x89PNG\r\n\x1a\n"
    width, height = struct.unpack(">II", PNG_1X1[16:24])
    assert (width, height) == (1, 1)
