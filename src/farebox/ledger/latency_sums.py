"""Summing many stored latency sketches at once, in numpy: a month of one account's may be ten thousand of them.

Python only joins the blobs; their headers and counts are read from the joined bytes as arrays, each count placed
at its (group, bin) by index arithmetic, and all of them summed by one `numpy.bincount` per width. Imported only
by the reads and rebuilds that need it (`farebox.ledger.latency`), so a server that never reads percentiles never
loads numpy.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Any, TypeVar

import numpy as np

from farebox.core.latency import HEADER, LatencySketch

__all__ = ["sum_sketches"]

G = TypeVar("G", bound=Hashable)

_DTYPES: dict[int, np.dtype[Any]] = {1: np.dtype("<u1"), 2: np.dtype("<u2"), 4: np.dtype("<u4"), 8: np.dtype("<u8")}
"""Counts by bytes per count (little-endian, unsigned)."""
_EXACT = 2**53
"""`bincount` sums in float64, exact for integers below this: far more requests than any ledger holds."""


_HEAD = np.dtype([("width", "u1"), ("first", "<i2"), ("zeros", "<u8")])
assert _HEAD.itemsize == HEADER.size


def _summed(blobs: list[bytes], groups: list[int], count: int) -> list[LatencySketch]:
    """The sketch of each of `count` groups: the sum of the `blobs` whose group (`groups`, alike) it is.

    Python only joins the blobs and measures them; their headers and counts are read from the joined bytes by index
    arithmetic, and every count is summed into its (group, bin) by one `numpy.bincount` per width.
    """
    if not blobs:
        return [LatencySketch() for _ in range(count)]
    data = np.frombuffer(b"".join(blobs), dtype=np.uint8)
    sizes = np.fromiter(map(len, blobs), dtype=np.int64, count=len(blobs))
    offsets = np.cumsum(sizes) - sizes
    if (sizes < HEADER.size).any():
        raise ValueError("not an encoded latency sketch")
    heads = data[offsets[:, None] + np.arange(HEADER.size)].copy().view(_HEAD).ravel()
    widths, firsts = heads["width"].astype(np.int64), heads["first"].astype(np.int64)
    lengths = sizes - HEADER.size
    if not np.isin(widths, list(_DTYPES)).all() or (lengths % widths).any():
        raise ValueError("not an encoded latency sketch")
    owners = np.asarray(groups, dtype=np.int64)
    zeros = np.bincount(owners, weights=heads["zeros"].astype(np.float64), minlength=count)
    bins = lengths // widths
    low = int(firsts.min())
    span = max(int((firsts + bins).max()) - low, 1)
    sums = np.zeros(count * span, dtype=np.float64)
    for width, dtype in _DTYPES.items():
        chosen = np.flatnonzero((widths == width) & (bins > 0))
        if not chosen.size:
            continue
        sized = lengths[chosen]
        # Every body byte's position in `data`, in blob order: its place among the chosen bodies' bytes, moved by
        # where its blob's body starts in `data` less where it starts among them (one repeat, not two).
        where = np.arange(int(sized.sum())) + np.repeat(
            offsets[chosen] + HEADER.size - (np.cumsum(sized) - sized), sized
        )
        counts = data[where].view(dtype)
        per_blob = bins[chosen]
        # Each count's (group, bin) cell, alike: its place among the counts, moved by its blob's first cell.
        moved = owners[chosen] * span + firsts[chosen] - low - (np.cumsum(per_blob) - per_blob)
        cells = np.arange(counts.size) + np.repeat(moved, per_blob)
        sums += np.bincount(cells, weights=counts.astype(np.float64), minlength=count * span)
    if sums.size and max(sums.max(), zeros.max()) >= _EXACT:
        raise OverflowError("latency sketch counts beyond exact float64 sums")
    table = sums.astype(np.int64).reshape(count, span)
    sketches = []
    for group in range(count):
        used = np.flatnonzero(table[group])
        zero = int(zeros[group])
        if not used.size:
            sketches.append(LatencySketch(zero))
            continue
        start, stop = int(used[0]), int(used[-1]) + 1
        sketches.append(LatencySketch(zero, low + start, table[group, start:stop].tolist()))
    return sketches


def sum_sketches(rows: Iterable[tuple[G, bytes | None, bytes | None]]) -> dict[G, tuple[LatencySketch, LatencySketch]]:
    """Per group, the sum of its (latency, time to first token) sketches; a None blob is an empty sketch.

    Raises:
        ValueError: a blob is not an encoded sketch.
    """
    index: dict[G, int] = {}
    latencies: tuple[list[bytes], list[int]] = ([], [])
    ttfts: tuple[list[bytes], list[int]] = ([], [])
    for group, latency, ttft in rows:
        position = index.get(group)
        if position is None:
            position = index[group] = len(index)
        if latency is not None:
            latencies[0].append(latency)
            latencies[1].append(position)
        if ttft is not None:
            ttfts[0].append(ttft)
            ttfts[1].append(position)
    summed = zip(_summed(*latencies, len(index)), _summed(*ttfts, len(index)), strict=True)
    return dict(zip(index, summed, strict=True))
