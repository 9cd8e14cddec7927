"""A keyed hash of a long prompt's beginning: how the cost advice sees repeated prompts without keeping any.

For chat completions, the Responses API and Anthropic's Messages, a prompt's canonical text is its system prompt
(Anthropic's `system`, the Responses API's `instructions`) and then its messages in order, each written as its
role, a unit separator (U+001F), its text (string content, or its text parts joined) and a record separator
(U+001E). Images, audio, files, tool definitions and a Responses item that is no message (a function call, its
output) are not part of it. A prompt whose canonical text reaches `PREFIX_CHARS` characters (about 1,024 tokens
at four characters a token: the shortest prompt OpenAI's and Anthropic's prompt caches keep) gets the
HMAC-SHA256 of its first `PREFIX_CHARS` characters (UTF-8) under a key derived from the server secret, cut to 16
hex digits (64 bits). A shorter prompt gets none, and costs no more than a few length sums of strings the
request's parse already made.

Only the hash is recorded, never the text: keyed, so without the server secret nobody holding the ledger can
test a guessed prompt against it; and two requests share a hash only if their first `PREFIX_CHARS` characters
are the same.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from hashlib import sha256

from farebox.gateway.providers.payload import JSONObject

__all__ = ["PREFIX_CHARS", "PROMPTED_OPERATIONS", "PromptPrefixes"]

PREFIX_CHARS = 4096
PROMPTED_OPERATIONS = frozenset({"chat.completions", "responses", "messages"})
"""The operations whose prompts are hashed."""
_UNIT, _RECORD = "\x1f", "\x1e"


def _turns(operation: str, document: JSONObject) -> Iterator[tuple[object, object]]:
    """The prompt's turns in order, as (role, content): the system prompt, then the messages (a Responses item
    that is no message passed over)."""
    default = ""
    if operation == "responses":
        instructions = document.get("instructions")
        if isinstance(instructions, str):
            yield "system", instructions
        messages = document.get("input")
        if isinstance(messages, str):
            yield "user", messages
            return
        default = "user"
    else:
        if operation == "messages" and (system := document.get("system")) is not None:
            yield "system", system
        messages = document.get("messages")
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict) and "content" in message:
                yield message.get("role", default), message["content"]


def _role(role: object) -> str:
    return role if isinstance(role, str) else ""


def _length(content: object) -> int:
    """The length of a turn's text (`_text_of`), without joining its parts."""
    if isinstance(content, str):
        return len(content)
    if isinstance(content, list):
        return sum(
            len(text) for part in content if isinstance(part, dict) and isinstance(text := part.get("text"), str)
        )
    return 0


def _text_of(content: object) -> str:
    """The text of a turn's content: a string, or its text parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str))
    return ""


def _prefix(operation: str, document: JSONObject) -> str | None:
    """The first `PREFIX_CHARS` characters of the prompt's canonical text; None when it is shorter. Lengths are
    summed first and the text built only for a long prompt."""
    turns = []
    size = 0
    for turn in _turns(operation, document):
        turns.append(turn)
        size += len(_role(turn[0])) + _length(turn[1]) + 2
        if size >= PREFIX_CHARS:
            break
    else:
        return None
    # A slice that covers a whole string is that string: short texts are not copied, a long one is cut.
    text = "".join(f"{_role(role)}{_UNIT}{_text_of(content)[:PREFIX_CHARS]}{_RECORD}" for role, content in turns)
    return text[:PREFIX_CHARS]


class PromptPrefixes:
    """Hashes prompts' prefixes under one key (derived from the server secret: the same on every replica)."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = key

    def of(self, operation: str, document: JSONObject | None) -> str | None:
        """The 16-hex-digit prefix hash of a request's prompt; None for another operation or a short prompt."""
        if document is None or operation not in PROMPTED_OPERATIONS:
            return None
        prefix = _prefix(operation, document)
        if prefix is None:
            return None
        return hmac.new(self._key, prefix.encode("utf-8", "surrogatepass"), sha256).hexdigest()[:16]
