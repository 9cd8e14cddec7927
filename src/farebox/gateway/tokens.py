"""Offline token counting, for estimates when a provider reports no usage.

Counting uses OpenAI's BPE vocabularies through the `rs-bpe` package, which compiles `o200k_base`
(gpt-4o, gpt-4.1, gpt-5, o-series) and `cl100k_base` (gpt-4, gpt-3.5, text-embedding-3) into its wheel:
nothing is downloaded at run time, unlike `tiktoken`. Counts equal `tiktoken`'s `encode_ordinary` exactly
(special-token text such as `<|endoftext|>` counts as ordinary text). Models of other providers (Claude,
Gemini, open models) are counted with `o200k_base`: their own tokenizers are not public, and an estimate
is flagged as such in the ledger.

The one piece of process-wide state is the vocabulary itself: `rs-bpe` builds each encoder on first use
(~65 ms) and keeps it in a static inside the extension, so every `Tokenizer` shares it and creating one
costs nothing. farebox holds no module-level state of its own.

Building `o200k_base` reads the serialised vocabulary compiled into the extension: 33 MB of its file
pages become resident beside the ~35 MB encoder, and are never read again. Once an encoder is built,
farebox asks Linux to page the extension's mapping out (`MADV_PAGEOUT`, which keeps the contents: the
few code pages still in use fault back in from the file), so a gateway that has counted once stays
about 33 MB smaller.
"""

from __future__ import annotations

import ctypes
import importlib
import logging
import os
import sys
from collections.abc import Mapping, Sequence
from functools import cached_property
from typing import Protocol, cast

import anyio
import orjson

__all__ = ["Tokenizer", "count_message_tokens", "count_tokens", "encoding_for_model"]

log = logging.getLogger(__name__)

_COUNTING_THREADS = 2
"""Counting holds the GIL, so more worker threads add threads (each with its own malloc arena), not speed."""

_MADV_PAGEOUT = 21
"""Linux 5.4+: reclaim these pages now; file-backed ones are dropped and re-read from the file if touched."""

_TOKENS_PER_MESSAGE = 3
"""OpenAI's documented per-message overhead for chat models (`<|start|>role<|message|>...<|end|>`)."""
_TOKENS_PER_NAME = 1
_REPLY_PRIMER = 3
"""Every chat reply is primed with `<|start|>assistant<|message|>`."""

_CL100K_PREFIXES = ("gpt-4-", "gpt-3.5", "text-embedding-", "text-davinci", "davinci", "babbage")
"""Model-name prefixes (after any `provider/`) that use `cl100k_base`; everything else uses `o200k_base`."""


class _Encoding(Protocol):
    def count(self, text: str) -> int: ...

    def count_till_limit(self, text: str, limit: int) -> int | None: ...


class _Vocabularies(Protocol):
    """The shape of `rs_bpe.bpe.openai`, which ships without type information."""

    def o200k_base(self) -> _Encoding: ...

    def cl100k_base(self) -> _Encoding: ...


def encoding_for_model(model: str | None) -> str:
    """The BPE vocabulary farebox counts a model's text with: `o200k_base` or `cl100k_base`."""
    if model is None:
        return "o200k_base"
    name = model.rsplit("/", 1)[-1].lower()
    if name == "gpt-4" or name.startswith(_CL100K_PREFIXES):
        return "cl100k_base"
    return "o200k_base"


class Tokenizer:
    """Counts tokens with OpenAI's BPE vocabularies, loading each one lazily on first use."""

    @cached_property
    def _vocabularies(self) -> _Vocabularies:
        # Imported here, not at module level: importing farebox must not map a 50 MB extension.
        return cast(_Vocabularies, importlib.import_module("rs_bpe.bpe").openai)

    @cached_property
    def threads(self) -> anyio.CapacityLimiter:
        """The worker threads that async callers count on (made on first use, inside the event loop)."""
        return anyio.CapacityLimiter(_COUNTING_THREADS)

    @cached_property
    def o200k_base(self) -> _Encoding:
        """The `o200k_base` encoder (gpt-4o and later)."""
        encoder = self._vocabularies.o200k_base()
        _page_out_extension()
        return encoder

    @cached_property
    def cl100k_base(self) -> _Encoding:
        """The `cl100k_base` encoder (gpt-4, gpt-3.5, text-embedding-3)."""
        encoder = self._vocabularies.cl100k_base()
        _page_out_extension()
        return encoder

    def warm(self) -> None:
        """Build `o200k_base` now rather than at the first count (which would hold the GIL for ~65 ms)."""
        self.o200k_base.count("farebox")

    def _encoder(self, model: str | None) -> _Encoding:
        return self.cl100k_base if encoding_for_model(model) == "cl100k_base" else self.o200k_base

    def count(self, text: str, *, model: str | None = None) -> int:
        """The number of tokens in `text` for `model`'s vocabulary (o200k_base when unknown)."""
        if not text:
            return 0
        encoder = self._encoder(model)
        try:
            return encoder.count(text)
        except UnicodeEncodeError:
            # Lone surrogates (valid in a Python str, not in UTF-8) become U+FFFD, as a provider would see them.
            return encoder.count(text.encode("utf-8", "replace").decode("utf-8"))

    def count_until(self, text: str, limit: int, *, model: str | None = None) -> int | None:
        """The tokens of `text` as `count` counts them, or None when there are more than `limit`.

        Counting stops once past `limit`, so its cost is bounded by the limit, not by the text: a megabyte
        string is refused after its first few thousand tokens.
        """
        if not text:
            return 0
        encoder = self._encoder(model)
        try:
            return encoder.count_till_limit(text, limit)
        except UnicodeEncodeError:
            return encoder.count_till_limit(text.encode("utf-8", "replace").decode("utf-8"), limit)

    def count_content(self, value: object, *, model: str | None = None) -> int:
        """Tokens of one message field: a string, a list of content parts (their text), or other JSON as text."""
        return self.count(_text_of(value), model=model)

    def count_messages(self, messages: Sequence[object], *, model: str | None = None) -> int:
        """Prompt tokens of a chat `messages` list, by OpenAI's documented heuristic.

        Each message costs 3 tokens of framing plus its role, content and name (1 more for a name); the
        reply is primed with 3 more. Content given as parts counts its text parts; tool calls and other
        structured fields count as their JSON text. Images and audio are not counted.
        """
        total = _REPLY_PRIMER
        for message in messages:
            if not isinstance(message, Mapping):
                continue
            total += _TOKENS_PER_MESSAGE
            for key, value in message.items():
                total += self.count_content(value, model=model)
                if key == "name":
                    total += _TOKENS_PER_NAME
        return total


def _page_out_extension() -> None:
    """Ask Linux to reclaim the resident pages of the `rs-bpe` extension's file mappings (see the module doc).

    Only a hint: the mappings keep their contents, and where the kernel refuses (before 5.4, or another
    platform) nothing changes but the resident size.
    """
    if sys.platform != "linux":
        return
    extension = os.path.realpath(importlib.import_module("rs_bpe.bpe").__file__ or "")
    libc = ctypes.CDLL(None, use_errno=True)
    libc.madvise.argtypes = [ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int]
    with open("/proc/self/maps", encoding="utf-8") as maps:
        for line in maps:
            fields = line.split(maxsplit=5)
            if len(fields) == 6 and fields[5].rstrip("\n") == extension:
                start, end = (int(address, 16) for address in fields[0].split("-"))
                if libc.madvise(start, end - start, _MADV_PAGEOUT) != 0:
                    log.debug("madvise(MADV_PAGEOUT) refused: errno %d", ctypes.get_errno())
                    return


_MEDIA_PARTS = frozenset(
    {"image_url", "image", "input_image", "input_audio", "audio", "file", "input_file", "document"}
)
"""Content parts that are images, audio or files: not counted (their tokens are the provider's to report)."""


def _text_of(value: object) -> str:
    """The countable text of one message field."""
    if isinstance(value, str):
        return value
    if value is None or isinstance(value, bool | int | float):
        return ""
    if isinstance(value, list):
        pieces: list[str] = []
        for part in value:
            if isinstance(part, Mapping):
                text = part.get("text")
                if isinstance(text, str):
                    pieces.append(text)
                elif part.get("type") not in _MEDIA_PARTS:  # a tool call, a tool result, ...: its JSON
                    pieces.append(orjson.dumps(part, option=orjson.OPT_NON_STR_KEYS).decode())
            elif isinstance(part, str):
                pieces.append(part)
        return "".join(pieces)
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


def count_tokens(text: str, *, model: str | None = None) -> int:
    """The number of tokens in `text` for `model` (o200k_base when unknown), counted offline."""
    return Tokenizer().count(text, model=model)


def count_message_tokens(messages: Sequence[object], *, model: str | None = None) -> int:
    """Prompt tokens of a chat `messages` list (OpenAI's per-message heuristic), counted offline."""
    return Tokenizer().count_messages(messages, model=model)
