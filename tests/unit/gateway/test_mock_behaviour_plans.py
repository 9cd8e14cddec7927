"""How the mock decides each answer: its settings, `x-mock-*` headers, magic model suffixes and generated text."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farebox.gateway.providers.mock.behaviour import (
    WORDS,
    MockConfig,
    MockPlan,
    generated_words,
    new_id,
    plan_request,
    split_model,
)
from farebox.gateway.tokens import count_tokens


def plan(
    headers: dict[str, str] | None = None,
    *,
    model: str = "gpt-4o",
    max_tokens: int | None = None,
    config: MockConfig | None = None,
    seed: int = 0,
) -> MockPlan:
    return plan_request(
        config or MockConfig(), random.Random(seed), headers=headers or {}, model=model, max_tokens=max_tokens
    )


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"latency_ms": -1}, "delays"),
        ({"chunk_delay_ms": -0.5}, "delays"),
        ({"output_tokens": -1}, "output_tokens"),
        ({"error_rate": -0.01}, "error_rate"),
        ({"error_rate": 1.01}, "error_rate"),
    ],
)
def test_settings_out_of_range_are_refused(settings: dict[str, float], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        MockConfig(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "settings", [{}, {"latency_ms": 0, "chunk_delay_ms": 0}, {"output_tokens": 0}, {"error_rate": 0}, {"error_rate": 1}]
)
def test_settings_at_the_edges_are_accepted(settings: dict[str, float]) -> None:
    MockConfig(**settings)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("model", "split"),
    [
        ("gpt-4o", ("gpt-4o", None)),
        ("gpt-4o@429", ("gpt-4o", "429")),
        ("gpt-4o@drop3", ("gpt-4o", "drop3")),
        ("org/model@v2@500", ("org/model@v2", "500")),  # only the last `@` starts a suffix
        ("@429", ("@429", None)),  # a suffix needs a model name before it
        ("gpt-4o@", ("gpt-4o", "")),
    ],
)
def test_split_model(model: str, split: tuple[str, str | None]) -> None:
    assert split_model(model) == split


@pytest.mark.parametrize(
    ("headers", "model", "status", "drop_after", "name"),
    [
        ({}, "gpt-4o", None, None, "gpt-4o"),
        ({"x-mock-status": "503"}, "gpt-4o", 503, None, "gpt-4o"),
        ({}, "gpt-4o@429", 429, None, "gpt-4o"),
        ({"x-mock-status": "500"}, "gpt-4o@429", 429, None, "gpt-4o"),  # the model suffix wins
        ({"x-mock-drop-after": "2"}, "gpt-4o", None, 2, "gpt-4o"),
        ({}, "gpt-4o@drop0", None, 0, "gpt-4o"),
        ({"x-mock-drop-after": "9"}, "gpt-4o@drop3", None, 3, "gpt-4o"),
        ({}, "gpt-4o@dropx", None, None, "gpt-4o"),  # unknown suffixes are stripped and ignored
        ({}, "gpt-4o@fast", None, None, "gpt-4o"),
        ({"x-mock-status": "abc", "x-mock-drop-after": "-3"}, "m", None, None, "m"),  # unreadable headers ignored
    ],
)
def test_status_and_drop_point(
    headers: dict[str, str], model: str, status: int | None, drop_after: int | None, name: str
) -> None:
    decided = plan(headers, model=model)
    assert (decided.status, decided.drop_after, decided.model) == (status, drop_after, name)


@pytest.mark.parametrize(
    ("headers", "config_tokens", "max_tokens", "output", "finish_length"),
    [
        ({}, None, None, 20, False),
        ({}, None, 5, 5, True),  # the default is min(max_tokens, 20), stopping at the limit
        ({}, None, 100, 20, False),
        ({}, 7, None, 7, False),
        ({}, 7, 7, 7, True),  # generating exactly the limit reports a length stop
        ({}, 50, 10, 10, True),
        ({"x-mock-output-tokens": "3"}, 50, None, 3, False),  # the header wins over the setting
        ({"x-mock-output-tokens": "0"}, None, None, 0, False),
        ({"x-mock-output-tokens": "many"}, 9, None, 9, False),
        ({}, None, 0, 0, True),
    ],
)
def test_output_tokens_and_the_length_stop(
    headers: dict[str, str], config_tokens: int | None, max_tokens: int | None, output: int, finish_length: bool
) -> None:
    decided = plan(headers, max_tokens=max_tokens, config=MockConfig(output_tokens=config_tokens))
    assert (decided.output_tokens, decided.finish_length) == (output, finish_length)


def test_cache_reasoning_latency_and_abort_headers() -> None:
    headers = {
        "x-mock-cached-tokens": "1024",
        "x-mock-cache-write-tokens": "512",
        "x-mock-reasoning-tokens": "64",
        "x-mock-latency-ms": "250",
        "x-mock-drop-mode": "abort",
    }
    decided = plan(headers, config=MockConfig(latency_ms=10, chunk_delay_ms=30))
    assert (decided.cached_tokens, decided.cache_write_tokens, decided.reasoning_tokens) == (1024, 512, 64)
    assert (decided.latency_s, decided.chunk_delay_s, decided.abort) == (0.25, 0.03, True)
    plain = plan({"x-mock-drop-mode": "close", "x-mock-cached-tokens": "-5"}, config=MockConfig(latency_ms=10))
    assert (plain.latency_s, plain.abort, plain.cached_tokens) == (0.01, False, 0)
    assert plan({"x-mock-latency-ms": "0"}, config=MockConfig(latency_ms=500)).latency_s == 0


def test_a_forced_status_skips_the_random_draw() -> None:
    config = MockConfig(error_rate=1.0)
    rng = random.Random(1)
    before = rng.getstate()
    forced = plan_request(config, rng, headers={"x-mock-status": "404"}, model="m", max_tokens=None)
    assert forced.status == 404
    assert rng.getstate() == before


def test_the_error_rate_draws_429_or_500_from_the_seeded_source() -> None:
    always = [plan(config=MockConfig(error_rate=1.0), seed=seed).status for seed in range(40)]
    assert set(always) == {429, 500}
    assert [plan(config=MockConfig(error_rate=1.0), seed=seed).status for seed in range(40)] == always
    assert {plan(config=MockConfig(error_rate=0.0), seed=seed).status for seed in range(40)} == {None}


@given(st.integers(0, 300))
def test_n_generated_words_are_exactly_n_tokens(n: int) -> None:
    words = generated_words(n)
    assert len(words) == n
    assert count_tokens("".join(words)) == n
    assert count_tokens("".join(words), model="gpt-4o") == n


def test_generated_words_start_with_the_and_cycle_through_the_word_list() -> None:
    words = generated_words(len(WORDS) + 2)
    assert words[:3] == ["The", " quick", " brown"]
    assert words[-1] == " " + WORDS[0]
    assert generated_words(0) == []


def test_new_ids_are_prefixed_and_unique() -> None:
    ids = {new_id("chatcmpl-") for _ in range(200)}
    assert len(ids) == 200
    assert all(item.startswith("chatcmpl-") and len(item) == len("chatcmpl-") + 24 for item in ids)
