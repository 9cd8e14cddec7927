"""Offline token counting: exact o200k/cl100k counts, no network, OpenAI's chat framing heuristic."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from farebox.gateway.tokens import Tokenizer, count_message_tokens, count_tokens, encoding_for_model


@pytest.fixture(autouse=True)
def offline(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No hub, and an empty tiktoken cache: a tokenizer that downloads would fail here."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("TRANSFORMERS_OFFLINE", "1")
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path / "empty-tiktoken-cache"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("hello world", 2),
        ("Hello, world!", 4),
        ("我是助手。", 3),
        ("The quick brown fox jumps over the lazy dog.", 10),
        ("def count_tokens(text: str) -> int:\n    return 0\n", 15),
        ("<|endoftext|>", 7),  # special-token text counts as ordinary text
        ("\U0001f468\u200d\U0001f469\u200d\U0001f467 emoji family", 10),
        ("a" * 1000, 125),
        ("", 0),
    ],
)
def test_o200k_counts_match_tiktoken(text: str, expected: int) -> None:
    # expected values are tiktoken's `o200k_base.encode_ordinary` lengths
    assert count_tokens(text) == expected
    assert count_tokens(text, model="gpt-4o") == expected


def test_cl100k_for_older_models() -> None:
    text = "我是助手。"
    assert count_tokens(text, model="gpt-4") != count_tokens(text, model="gpt-4o")
    assert count_tokens("hello world", model="gpt-3.5-turbo") == 2


@pytest.mark.parametrize(
    ("model", "encoding"),
    [
        (None, "o200k_base"),
        ("gpt-4o-mini", "o200k_base"),
        ("openai/gpt-4.1", "o200k_base"),
        ("o3-mini", "o200k_base"),
        ("claude-sonnet-4-5", "o200k_base"),
        ("gpt-4", "cl100k_base"),
        ("gpt-4-turbo", "cl100k_base"),
        ("gpt-3.5-turbo", "cl100k_base"),
        ("text-embedding-3-small", "cl100k_base"),
    ],
)
def test_encoding_for_model(model: str | None, encoding: str) -> None:
    assert encoding_for_model(model) == encoding


def test_lone_surrogates_are_counted_not_raised() -> None:
    assert count_tokens("a\ud800b") == count_tokens("a\ufffdb")


def test_chat_framing_heuristic() -> None:
    messages = [{"role": "user", "content": "hello world"}]
    assert count_message_tokens(messages) == 3 + 1 + 2 + 3
    named = [{"role": "user", "name": "bob", "content": "hello world"}]
    assert count_message_tokens(named) == 3 + 1 + count_tokens("bob") + 1 + 2 + 3
    parts = [{"role": "user", "content": [{"type": "text", "text": "hello"}, {"type": "text", "text": " world"}]}]
    assert count_message_tokens(parts) == count_message_tokens(messages)
    assert count_message_tokens([]) == 3
    assert count_message_tokens(["not a message", {"role": "user", "content": None}]) == 3 + 3 + 1


def test_tokenizer_instances_share_the_loaded_vocabulary() -> None:
    first, second = Tokenizer(), Tokenizer()
    assert first.count("hello world") == second.count("hello world") == 2


def test_counts_with_no_network_at_all(tmp_path: Path) -> None:
    """A fresh process whose sockets all fail still counts: nothing is fetched at run time."""
    script = textwrap.dedent(
        """
        import socket

        def refuse(*args, **kwargs):
            raise OSError("network disabled for this test")

        socket.socket = refuse
        socket.create_connection = refuse
        socket.getaddrinfo = refuse

        from farebox.gateway.tokens import count_tokens
        print(count_tokens("hello world"), count_tokens("hello world", model="gpt-4"))
        """
    )
    env = {"HF_HUB_OFFLINE": "1", "TIKTOKEN_CACHE_DIR": str(tmp_path), "PATH": "/usr/bin:/bin"}
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env, check=True)
    assert result.stdout.split() == ["2", "2"]
