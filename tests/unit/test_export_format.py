"""The export's formatting: any event's CSV line reads back, through Python's `csv` module, as the same fields
as its JSON object, and every time is `datetime.isoformat`'s, in UTC with `Z`."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import orjson
from hypothesis import given
from hypothesis import strategies as st

from farebox.analytics.export import EXPORT_FIELDS, Exporter, ExportFormat
from farebox.core.credits import CreditRate
from farebox.core.events import from_epoch_us

_names = st.one_of(st.none(), st.text(st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=12))
_counts = st.integers(0, 10**12)
_optional_counts = st.one_of(st.none(), st.integers(0, 10**6))
_times = st.integers(0, 32503680000 * 10**6 - 1)  # up to the end of year 2999
_rows = st.tuples(
    st.text(min_size=1, max_size=20),
    _times,
    st.text(min_size=1, max_size=8),
    _names,
    _names,
    _names,
    _names,
    st.sampled_from(["llm", "voice", "compute"]),
    st.text(max_size=8),
    st.text(max_size=8),
    st.text(max_size=8),
    st.text(max_size=8),
    st.sampled_from(["ok", "error"]),
    _optional_counts,
    *(_counts for _ in range(6)),
    _counts,
    _counts,
    st.integers(0, 10**15),
    _optional_counts,
    _optional_counts,
    st.sampled_from([0, 1, True, False]),
    st.sampled_from([0, 1, True, False]),
)


def _text(value: Any) -> str:
    return "" if value is None else "true" if value is True else "false" if value is False else str(value)


@given(st.lists(_rows, min_size=1, max_size=5).map(lambda rows: sorted(rows, key=lambda row: row[1])))
def test_csv_and_json_carry_the_same_fields(rows: list[tuple[Any, ...]]) -> None:
    rate = CreditRate(20_000)
    _count, csv_bytes = Exporter(ExportFormat.CSV, rate=rate)._page(rows)
    _count, json_bytes = Exporter(ExportFormat.JSON, rate=rate)._page(rows)
    parsed = list(csv.reader(io.StringIO(csv_bytes.decode(), newline="")))
    objects = orjson.loads(b"[" + json_bytes + b"]")
    assert len(parsed) == len(objects) == len(rows)
    for line, obj, row in zip(parsed, objects, rows, strict=True):
        assert list(obj) == list(EXPORT_FIELDS)
        assert line == [_text(obj[name]) for name in EXPORT_FIELDS]
        expected_time = from_epoch_us(row[1]).isoformat().replace("+00:00", "Z")
        assert obj["timestamp"] == expected_time


def test_times_across_minutes_days_and_years() -> None:
    exporter = Exporter(ExportFormat.CSV, rate=CreditRate())
    for at in [
        datetime(2026, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC),
        datetime(2027, 1, 1, tzinfo=UTC),
        datetime(2027, 1, 1, 0, 0, 1, tzinfo=UTC),
        datetime(2027, 1, 1, 0, 1, 0, 5, tzinfo=UTC),
        datetime(1970, 1, 1, tzinfo=UTC),
    ]:
        stamp = int(at.timestamp()) * 1_000_000 + at.microsecond
        assert exporter._time(stamp) == at.isoformat().replace("+00:00", "Z")
