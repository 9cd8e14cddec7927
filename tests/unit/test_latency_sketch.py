"""Latency sketches: DDSketch's answers to the value, within 1% of the truth, merged exactly, stored in a few bytes
and read back whole, one at a time or ten thousand at once."""

from __future__ import annotations

import struct

import pytest
from ddsketch import DDSketch
from ddsketch.mapping import LogarithmicMapping
from hypothesis import given
from hypothesis import strategies as st

from farebox.core.latency import HEADER, RELATIVE_ACCURACY, LatencySketch, bin_key
from farebox.ledger.latency_sums import sum_sketches

RANKS = (0.0, 0.5, 0.9, 0.95, 0.99, 1.0)
durations = st.lists(st.integers(min_value=0, max_value=10_000_000), min_size=1, max_size=300)


def _sketch(values: list[int]) -> LatencySketch:
    sketch = LatencySketch()
    for value in values:
        sketch.add(value)
    return sketch


def _at_rank(values: list[int], quantile: float) -> int:
    """The true value at DDSketch's rank for `quantile`: `q * (n - 1)`, rounded down."""
    return sorted(values)[int(quantile * (len(values) - 1))]


def test_a_thousand_durations_of_one_to_a_thousand_ms() -> None:
    p50, p95, p99 = _sketch(list(range(1, 1_001))).quantiles((0.5, 0.95, 0.99))
    assert p50 is not None and p95 is not None and p99 is not None
    assert abs(p50 - 500) <= 5 and abs(p95 - 950) <= 9.5 and abs(p99 - 990) <= 9.9


@given(durations)
def test_every_percentile_is_within_one_percent_of_the_true_value(values: list[int]) -> None:
    answers = _sketch(values).quantiles(RANKS)
    for quantile, answer in zip(RANKS, answers, strict=True):
        exact = _at_rank(values, quantile)
        assert answer is not None
        assert abs(answer - exact) <= RELATIVE_ACCURACY * exact, (quantile, answer, exact)


@given(durations)
def test_the_answers_are_ddsketch_s_own(values: list[int]) -> None:
    reference = DDSketch(RELATIVE_ACCURACY)
    for value in values:
        reference.add(value)
    expected = tuple(reference.get_quantile_value(quantile) for quantile in RANKS)
    assert _sketch(values).quantiles(RANKS) == pytest.approx(expected, rel=1e-12)


def test_durations_fall_in_ddsketch_s_own_bins() -> None:
    mapping = LogarithmicMapping(RELATIVE_ACCURACY)
    durations = [*range(1, 600_001), *(2**power + delta for power in range(22, 63) for delta in (-1, 0, 1))]
    assert [bin_key(ms) for ms in durations] == [mapping.key(ms) for ms in durations]


def test_every_bin_s_value_maps_back_to_that_bin() -> None:
    """What `quantiles` relies on to hand DDSketch a bin's count as a value: every bin a duration in ms can fall in."""
    mapping = LogarithmicMapping(RELATIVE_ACCURACY)
    keys = range(bin_key(1), bin_key(2**63) + 1)
    assert [mapping.key(mapping.value(key)) for key in keys] == list(keys)


@given(durations, durations)
def test_merging_two_sketches_is_sketching_both_sets(first: list[int], second: list[int]) -> None:
    merged = _sketch(first)
    merged.merge(_sketch(second))
    whole = _sketch(first + second)
    assert (merged.zeros, merged.first, merged.counts) == (whole.zeros, whole.first, whole.counts)
    assert merged.quantiles(RANKS) == whole.quantiles(RANKS)


@pytest.mark.parametrize(("largest", "width"), [(255, 1), (256, 2), (65_535, 2), (65_536, 4), (2**32, 8)])
def test_counts_are_stored_in_the_narrowest_width_that_holds_them(largest: int, width: int) -> None:
    sketch = LatencySketch(zeros=7)
    sketch.add_bin(bin_key(120), largest)
    sketch.add_bin(bin_key(100), 3)
    blob = sketch.encode()
    assert HEADER.unpack_from(blob) == (width, bin_key(100), 7)
    assert len(blob) == HEADER.size + width * (bin_key(120) - bin_key(100) + 1)
    back = LatencySketch.decode(blob)
    assert (back.zeros, back.first, back.counts) == (sketch.zeros, sketch.first, sketch.counts)


def test_a_quarter_hour_of_durations_from_1_ms_to_a_minute_is_a_few_hundred_bytes() -> None:
    assert len(_sketch([1, 60_000]).encode()) == HEADER.size + 552


def test_an_empty_sketch_has_no_percentiles() -> None:
    assert LatencySketch().quantiles((0.5, 0.99)) == (None, None)
    assert LatencySketch().count == 0


@pytest.mark.parametrize("blob", [b"", b"\x03" + bytes(10), b"\x02" + struct.pack("<hQ", 0, 0) + b"\x01"])
def test_bytes_that_are_not_a_sketch_are_refused(blob: bytes) -> None:
    with pytest.raises(ValueError, match="not an encoded latency sketch"):
        LatencySketch.decode(blob)
    with pytest.raises(ValueError, match="not an encoded latency sketch"):
        sum_sketches([("g", blob, None)])


@given(st.lists(st.tuples(st.sampled_from("abc"), durations, durations), min_size=1, max_size=12))
def test_summing_stored_sketches_at_once_is_merging_them_one_by_one(
    stored: list[tuple[str, list[int], list[int]]],
) -> None:
    rows = [
        (group, _sketch(latencies).encode(), _sketch(ttfts).encode() if ttfts[0] % 2 else None)
        for group, latencies, ttfts in stored
    ]
    expected: dict[str, tuple[LatencySketch, LatencySketch]] = {}
    for group, latency, ttft in rows:
        pair = expected.setdefault(group, (LatencySketch(), LatencySketch()))
        pair[0].merge(LatencySketch.decode(latency))
        if ttft is not None:
            pair[1].merge(LatencySketch.decode(ttft))
    summed = sum_sketches(rows)
    assert summed.keys() == expected.keys()
    for group, (latency, ttft) in summed.items():
        for got, want in ((latency, expected[group][0]), (ttft, expected[group][1])):
            assert (got.zeros, got.count, got.quantiles(RANKS)) == (want.zeros, want.count, want.quantiles(RANKS))
