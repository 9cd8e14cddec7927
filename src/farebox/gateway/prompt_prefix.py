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
from hashlib import sha256

from farebox.gateway.providers.payload import JSONObject

__all__ = ["PREFIX_CHARS", "PROMPTED_OPERATIONS", "PromptPrefixes"]

PREFIX_CHARS = 4096
PROMPTED_OPERATIONS = frozenset({"chat.completions", "responses", "messages"})
"""The operations whose prompts are hashed."""
_UNIT, _RECORD = "\x1f", "\x1e"


class _Text:
    """The canonical text of a prompt as far as `PREFIX_CHARS`, built piece by piece."""

    __slots__ = ("pieces", "size")

    def __init__(self) -> None:
        self.pieces: list[str] = []
        self.size = 0

    def add(self, role: object, text: str) -> bool:
        """Add one message; whether the text now reaches `PREFIX_CHARS`."""
        name = role if isinstance(role, str) else ""
        self.pieces += (name, _UNIT, text[: PREFIX_CHARS - self.size], _RECORD)
        self.size += len(name) + len(text) + 2
        return self.size >= PREFIX_CHARS

    def add_messages(self, messages: object, *, default_role: str = "") -> bool:
        """Add each message of a list (a Responses item that is no message is passed over); whether the text now
        reaches `PREFIX_CHARS`."""
        if not isinstance(messages, list):
            return False
        for message in messages:
            if isinstance(message, dict) and "content" in message:
                if self.add(message.get("role", default_role), _text_of(message["content"])):
                    return True
        return False


def _text_of(content: object) -> str:
    """The text of a message's content: a string, or its text parts joined."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "".join(part["text"] for part in content if isinstance(part, dict) and isinstance(part.get("text"), str))
    return ""


def _long_enough(operation: str, document: JSONObject) -> _Text | None:
    """The prompt's canonical text when it reaches `PREFIX_CHARS`, else None."""
    text = _Text()
    if operation == "responses":
        instructions = document.get("instructions")
        if isinstance(instructions, str) and text.add("system", instructions):
            return text
        given = document.get("input")
        reached = text.add("user", given) if isinstance(given, str) else text.add_messages(given, default_role="user")
        return text if reached else None
    if operation == "messages":
        system = document.get("system")
        if system is not None and text.add("system", _text_of(system)):
            return text
    return text if text.add_messages(document.get("messages")) else None


class PromptPrefixes:
    """Hashes prompts' prefixes under one key (derived from the server secret: the same on every replica)."""

    __slots__ = ("_key",)

    def __init__(self, key: bytes) -> None:
        self._key = key

    def of(self, operation: str, document: JSONObject | None) -> str | None:
        """The 16-hex-digit prefix hash of a request's prompt; None for another operation or a short prompt."""
        if document is None or operation not in PROMPTED_OPERATIONS:
            return None
        text = _long_enough(operation, document)
        if text is None:
            return None
        prefix = "".join(text.pieces)[:PREFIX_CHARS]
        return hmac.new(self._key, prefix.encode("utf-8", "surrogatepass"), sha256).hexdigest()[:16]
