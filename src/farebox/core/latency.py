"""Latency sketches: mergeable summaries of durations in milliseconds, from which percentiles are read.

A sketch is DDSketch's (Masson, Rim and Lee, VLDB 2019) with its logarithmic mapping at a relative accuracy of 1%:
a duration `v` > 0 is counted in the bin `ceil(log(v) / log(gamma))`, gamma = 1.01 / 0.99, and read back as a value
within 1% of every duration in its bin, so a percentile read from a sketch is within 1% of the true duration at that
rank. Durations of 0 ms have a count of their own. Sketches merge exactly by adding bin counts: the sketch of a
range of time is the sum of the sketches of its parts, whoever recorded them.

A sketch is stored as a few bytes (`encode`): a header (`<BhQ`: the bytes per count, the first bin's key, the
count of zeros) and the counts of every bin from the first to the last non-empty one, as little-endian unsigned
integers of the smallest width that holds the largest. A quarter hour of one key and model holds a few hundred
bytes; durations from 1 ms to a minute span 551 bins.
"""

from __future__ import annotations

import math
import struct
import sys
from array import array
from bisect import bisect_right
from collections.abc import Sequence
from itertools import accumulate

from ddsketch.mapping import LogarithmicMapping

__all__ = ["HEADER", "RELATIVE_ACCURACY", "WIDTHS", "LatencySketch", "bin_key"]

RELATIVE_ACCURACY = 0.01
"""Every percentile read from a sketch is within this fraction of the true value at its rank."""
_MAPPING = LogarithmicMapping(RELATIVE_ACCURACY)
HEADER = struct.Struct("<BhQ")
"""An encoded sketch's header: bytes per count (1, 2, 4 or 8), the first bin's key, the count of zeros."""
WIDTHS = {1: "B", 2: "H", 4: "I", 8: "Q"}
"""`array` type codes by bytes per count."""
assert all(array(code).itemsize == width for width, code in WIDTHS.items())


# `_MAPPING.key(v)` is `int(ceil(log(v, 2) * multiplier))`, with the multiplier computed thus; the writer maps every
# duration it records, and a call through the mapping object costs four times the arithmetic. A unit test holds
# `bin_key` to `_MAPPING.key` on every duration from 1 ms to ten minutes and at every power of two beyond.
_MULTIPLIER = 1 / math.log1p(2 * RELATIVE_ACCURACY / (1 - RELATIVE_ACCURACY)) * math.log(2)


def bin_key(ms: int) -> int:
    """The bin a duration of `ms` > 0 milliseconds is counted in (DDSketch's logarithmic mapping)."""
    return math.ceil(math.log(ms, 2) * _MULTIPLIER)


def _narrowest(counts: Sequence[int], top: int | None = None) -> array[int]:
    """`counts` in an array of the narrowest width that holds the largest (`top` when given)."""
    top = max(counts, default=0) if top is None else top
    width = 1 if top < 1 << 8 else 2 if top < 1 << 16 else 4 if top < 1 << 32 else 8
    return array(WIDTHS[width], counts)


class LatencySketch:
    """The counts of one set of durations: zeros, and bins from `first` on (`counts[i]` is bin `first + i`).

    The counts are kept as they are stored, in an array of the narrowest width that holds them (widened when a
    count outgrows it), so that `encode` is a copy of its bytes: the writer encodes sketches at every commit.
    """

    __slots__ = ("counts", "first", "zeros")

    def __init__(self, zeros: int = 0, first: int = 0, counts: Sequence[int] = ()) -> None:
        self.zeros = zeros
        self.first = first
        self.counts = counts if isinstance(counts, array) else _narrowest(counts) if counts else array("B")

    @property
    def count(self) -> int:
        """How many durations it holds."""
        return self.zeros + sum(self.counts)

    def add(self, ms: int) -> None:
        """Count one duration. A negative one (a clock stepped back) counts as 0."""
        if ms <= 0:
            self.zeros += 1
            return
        self.add_bin(math.ceil(math.log(ms, 2) * _MULTIPLIER), 1)

    def add_bin(self, key: int, count: int) -> None:
        """Add `count` durations to bin `key`, widening the range of bins kept, or their width, if needed."""
        counts = self.counts
        if not counts:
            self.first, self.counts = key, array("B", (count,)) if count < 1 << 8 else _narrowest((count,))
            return
        index = key - self.first
        if index < 0:
            counts[0:0] = array(counts.typecode, bytes(-index * counts.itemsize))
            self.first, index = key, 0
        elif index >= len(counts):
            counts.extend(array(counts.typecode, bytes((index - len(counts) + 1) * counts.itemsize)))
        total = counts[index] + count
        try:
            counts[index] = total
        except OverflowError:
            self.counts = counts = _narrowest(counts, total)
            counts[index] = total

    def merge(self, other: LatencySketch) -> None:
        """Add every duration of `other` to this sketch."""
        self.zeros += other.zeros
        for offset, count in enumerate(other.counts):
            if count:
                self.add_bin(other.first + offset, count)

    def encode(self) -> bytes:
        """The sketch as stored (see the module's docstring)."""
        counts = self.counts
        if sys.byteorder == "big":
            counts = array(counts.typecode, counts)
            counts.byteswap()
        return HEADER.pack(counts.itemsize, self.first, self.zeros) + counts.tobytes()

    @classmethod
    def decode(cls, blob: bytes) -> LatencySketch:
        """A sketch from what `encode` wrote.

        Raises:
            ValueError: `blob` is not an encoded sketch.
        """
        try:
            width, first, zeros = HEADER.unpack_from(blob)
            counts = array(WIDTHS[width])
            counts.frombytes(memoryview(blob)[HEADER.size :])
        except (struct.error, KeyError, ValueError) as exc:
            raise ValueError("not an encoded latency sketch") from exc
        if sys.byteorder == "big":
            counts.byteswap()
        return cls(zeros, first, counts)

    def quantiles(self, ranks: Sequence[float]) -> tuple[float | None, ...]:
        """The durations (ms) at each quantile of `ranks` (0 to 1), DDSketch's way; None for an empty sketch.

        The value at quantile q is the one at rank `q * (count - 1)` among the sorted durations, read back from
        its bin: within `RELATIVE_ACCURACY` of it. This is `DDSketch.get_quantile_value` on the counts as they are
        (a unit test holds it to ddsketch's own answers), without building a DDSketch bin by bin.
        """
        count = self.count
        if not count:
            return tuple(None for _ in ranks)
        running = list(accumulate(self.counts))
        answers: list[float | None] = []
        for quantile in ranks:
            rank = quantile * (count - 1)
            if rank < self.zeros:
                answers.append(0.0)
                continue
            index = min(bisect_right(running, rank - self.zeros), len(running) - 1)  # the first bin past the rank
            answers.append(_MAPPING.value(self.first + index))
        return tuple(answers)

    def __repr__(self) -> str:
        return f"LatencySketch(zeros={self.zeros}, first={self.first}, counts={self.counts!r})"
