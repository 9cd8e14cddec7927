"""The keyed hash of a long prompt's beginning: which text it is of, for each prompted wire shape, and when there
is none."""

from __future__ import annotations

import hmac
from hashlib import sha256

import pytest

from farebox.gateway.prompt_prefix import PREFIX_CHARS, PromptPrefixes

KEY = b"k" * 32
LONG = "You are a support agent for Acme. " * 200  # 6,800 characters
U, R = "\x1f", "\x1e"


def expected(canonical: str, key: bytes = KEY) -> str:
    return hmac.new(key, canonical[:PREFIX_CHARS].encode(), sha256).hexdigest()[:16]


def chat(*messages: tuple[str, object]) -> dict[str, object]:
    return {"model": "gpt-4o", "messages": [{"role": role, "content": content} for role, content in messages]}


def test_a_chat_prompt_s_hash_is_the_hmac_of_its_first_4096_canonical_characters() -> None:
    prefixes = PromptPrefixes(KEY)
    document = chat(("system", LONG), ("user", "Where is my order?"))
    got = prefixes.of("chat.completions", document)
    assert got == expected(f"system{U}{LONG}{R}user{U}Where is my order?{R}")
    assert got is not None and len(got) == 16 and int(got, 16) >= 0
    assert got != PromptPrefixes(b"x" * 32).of("chat.completions", document), "keyed: another key, another hash"


def test_what_follows_the_prefix_does_not_change_the_hash_and_what_is_in_it_does() -> None:
    prefixes = PromptPrefixes(KEY)
    base = prefixes.of("chat.completions", chat(("system", LONG), ("user", "one")))
    assert base == prefixes.of("chat.completions", chat(("system", LONG), ("user", "two")))
    assert base != prefixes.of("chat.completions", chat(("system", "Be brief. " + LONG), ("user", "one")))
    assert base != prefixes.of("chat.completions", chat(("developer", LONG), ("user", "one"))), "the role counts"


def test_a_prompt_shorter_than_the_prefix_has_none() -> None:
    prefixes = PromptPrefixes(KEY)
    just_short = "a" * (PREFIX_CHARS - len(f"user{U}{R}") - 1)
    assert prefixes.of("chat.completions", chat(("user", just_short))) is None
    assert prefixes.of("chat.completions", chat(("user", just_short + "a"))) == expected(f"user{U}{just_short}a{R}")
    assert prefixes.of("chat.completions", {"model": "gpt-4o"}) is None
    assert prefixes.of("chat.completions", {"model": "gpt-4o", "messages": "not a list"}) is None


def test_text_parts_read_as_the_same_text_as_a_string_and_media_are_left_out() -> None:
    prefixes = PromptPrefixes(KEY)
    parts = [
        {"type": "text", "text": LONG[:3000]},
        {"type": "image_url", "image_url": {"url": "https://example.test/a.png"}},
        {"type": "text", "text": LONG[3000:]},
    ]
    assert prefixes.of("chat.completions", chat(("user", parts))) == prefixes.of(
        "chat.completions", chat(("user", LONG))
    )


def test_anthropic_messages_start_with_the_system_prompt_string_or_blocks() -> None:
    prefixes = PromptPrefixes(KEY)
    messages = [{"role": "user", "content": "Hi"}]
    as_string = {"model": "claude-sonnet-4-6", "system": LONG, "messages": messages, "max_tokens": 10}
    as_blocks = as_string | {"system": [{"type": "text", "text": LONG, "cache_control": {"type": "ephemeral"}}]}
    assert prefixes.of("messages", as_string) == expected(f"system{U}{LONG}")
    assert prefixes.of("messages", as_blocks) == prefixes.of("messages", as_string)
    in_messages = {"model": "claude-sonnet-4-6", "messages": [{"role": "user", "content": LONG}], "max_tokens": 10}
    assert prefixes.of("messages", in_messages) == expected(f"user{U}{LONG}")


def test_responses_start_with_the_instructions_then_the_input() -> None:
    prefixes = PromptPrefixes(KEY)
    assert prefixes.of("responses", {"model": "gpt-4o", "instructions": LONG, "input": "Hi"}) == expected(
        f"system{U}{LONG}"
    )
    assert prefixes.of("responses", {"model": "gpt-4o", "input": LONG}) == expected(f"user{U}{LONG}")
    items = [
        {"type": "function_call", "call_id": "c1", "name": "lookup", "arguments": "{}"},
        {"role": "user", "content": [{"type": "input_text", "text": LONG}]},
    ]
    assert prefixes.of("responses", {"model": "gpt-4o", "input": items}) == expected(f"user{U}{LONG}")


@pytest.mark.parametrize("operation", ["embeddings", "completions", "images", "generate_content"])
def test_other_operations_are_not_hashed(operation: str) -> None:
    document = chat(("user", LONG)) | {"input": LONG, "prompt": LONG}
    assert PromptPrefixes(KEY).of(operation, document) is None


def test_text_no_utf_8_can_encode_is_hashed_without_failing() -> None:
    prefix = PromptPrefixes(KEY).of("chat.completions", chat(("user", "\ud800" + LONG)))
    assert prefix is not None and len(prefix) == 16
