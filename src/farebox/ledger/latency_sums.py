"""Summing many stored latency sketches at once, in numpy: a month of one account's may be ten thousand of them.

Each encoded sketch's counts are read in place (`numpy.frombuffer`, no copy) and added to its group's running sum
as one vector addition, so a sketch costs a few microseconds however many bins it has. Imported only by the
reads and rebuilds that need it (`farebox.ledger.latency`), so a server that never reads percentiles never loads
numpy.
"""

from __future__ import annotations

import struct
from collections.abc import Hashable, Iterable
from typing import Any, TypeVar

import numpy as np

from farebox.core.latency import HEADER, LatencySketch

__all__ = ["sum_sketches"]

G = TypeVar("G", bound=Hashable)

# Counts are unsigned; eight-byte ones are read as signed, which holds any count below 2**63, so that every sum
# stays in int64.
_DTYPES: dict[int, np.dtype[Any]] = {1: np.dtype("<u1"), 2: np.dtype("<u2"), 4: np.dtype("<u4"), 8: np.dtype("<i8")}


class _Sum:
    """A running sum of sketches: zeros, and int64 counts of bins from `first` on, widened as sketches need."""

    __slots__ = ("bins", "first", "zeros")

    def __init__(self) -> None:
        self.zeros = 0
        self.first = 0
        self.bins: np.ndarray[Any, np.dtype[np.int64]] | None = None

    def add(self, blob: bytes) -> None:
        try:
            width, first, zeros = HEADER.unpack_from(blob)
            counts = np.frombuffer(blob, dtype=_DTYPES[width], offset=HEADER.size)
        except (struct.error, KeyError, ValueError) as exc:
            raise ValueError("not an encoded latency sketch") from exc
        self.zeros += zeros
        if not counts.size:
            return
        bins = self.bins
        if bins is None:
            self.first, self.bins = first, counts.astype(np.int64)
            return
        low, high = min(first, self.first), max(first + counts.size, self.first + bins.size)
        if low < self.first or high > self.first + bins.size:
            grown = np.zeros(high - low, dtype=np.int64)
            grown[self.first - low : self.first - low + bins.size] = bins
            self.first, self.bins = low, bins = low, grown
        bins[first - self.first : first - self.first + counts.size] += counts

    def sketch(self) -> LatencySketch:
        if self.bins is None:
            return LatencySketch(self.zeros)
        used = np.flatnonzero(self.bins)
        if not used.size:
            return LatencySketch(self.zeros)
        start, stop = int(used[0]), int(used[-1]) + 1
        return LatencySketch(self.zeros, self.first + start, self.bins[start:stop].tolist())


def sum_sketches(rows: Iterable[tuple[G, bytes | None, bytes | None]]) -> dict[G, tuple[LatencySketch, LatencySketch]]:
    """Per group, the sum of its (latency, time to first token) sketches; a None blob is an empty sketch.

    Raises:
        ValueError: a blob is not an encoded sketch.
    """
    sums: dict[G, tuple[_Sum, _Sum]] = {}
    for group, latency, ttft in rows:
        pair = sums.get(group)
        if pair is None:
            pair = sums[group] = (_Sum(), _Sum())
        if latency is not None:
            pair[0].add(latency)
        if ttft is not None:
            pair[1].add(ttft)
    return {group: (latency.sketch(), ttft.sketch()) for group, (latency, ttft) in sums.items()}
