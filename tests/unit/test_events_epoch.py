"""core.events: instants stored as epoch microseconds come back as the same aware UTC instant, millionths are
shown as exact decimals, and a usage event's defaults are what an event that says nothing more means.
core.clock: the wall clock is aware UTC."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farebox.core.clock import utcnow
from farebox.core.events import MICRO, Axis, RecordResult, Status, UsageEvent, epoch_us, format_micro, from_epoch_us

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


@pytest.mark.parametrize(
    ("at", "us"),
    [
        (_EPOCH, 0),
        (datetime(1970, 1, 1, 0, 0, 0, 1, tzinfo=UTC), 1),
        (datetime(1970, 1, 1, 0, 0, 1, tzinfo=UTC), MICRO),
        (datetime(1969, 12, 31, 23, 59, 59, 999_999, tzinfo=UTC), -1),
        (datetime(2025, 3, 1, tzinfo=UTC), 1_740_787_200 * MICRO),
        (datetime(2025, 3, 1, 5, 30, tzinfo=timezone(timedelta(hours=5, minutes=30))), 1_740_787_200 * MICRO),
        (datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC), 2**31 * MICRO),  # past the 32-bit seconds limit
    ],
)
def test_epoch_us_table(at: datetime, us: int) -> None:
    assert epoch_us(at) == us
    back = from_epoch_us(us)
    assert back == at
    assert back.tzinfo is UTC


def test_epoch_us_is_exact_where_float_timestamps_are_not() -> None:
    at = datetime(2286, 11, 20, 17, 46, 39, 999_999, tzinfo=UTC)
    assert epoch_us(at) == 9_999_999_999_999_999
    assert int(at.timestamp() * MICRO) != epoch_us(at), "a float timestamp loses the last microsecond here"
    assert from_epoch_us(9_999_999_999_999_999) == at


def test_epoch_us_needs_an_aware_datetime() -> None:
    with pytest.raises(TypeError):
        epoch_us(datetime(2025, 1, 1))  # naive minus aware cannot be subtracted


_aware = st.datetimes(
    min_value=datetime(1900, 1, 1), max_value=datetime(9000, 1, 1), timezones=st.timezones() | st.just(UTC)
)


@given(_aware)
def test_any_aware_instant_round_trips_through_epoch_microseconds(at: datetime) -> None:
    back = from_epoch_us(epoch_us(at))
    # Against UTC: Python never finds the second of two repeated wall-clock times (fold=1) equal to an
    # instant in another zone, even the same instant.
    assert back == at.astimezone(UTC)
    assert back.tzinfo is UTC
    assert back.utcoffset() == timedelta(0)


def test_the_second_of_two_repeated_wall_clock_times_is_the_later_instant() -> None:
    paris = ZoneInfo("Europe/Paris")  # 27 October 2024: 02:30 happened twice, at 00:30Z and at 01:30Z
    first = datetime(2024, 10, 27, 2, 30, tzinfo=paris)
    second = first.replace(fold=1)
    assert epoch_us(second) - epoch_us(first) == 3600 * MICRO
    assert from_epoch_us(epoch_us(second)) == datetime(2024, 10, 27, 1, 30, tzinfo=UTC)


@given(st.integers(min_value=-(2**55), max_value=2**55))
def test_any_epoch_microsecond_round_trips_through_a_datetime(us: int) -> None:
    assert epoch_us(from_epoch_us(us)) == us


@given(_aware, _aware)
def test_epoch_us_keeps_order_and_distance(a: datetime, b: datetime) -> None:
    # Through UTC: Python subtracts two datetimes of the same zone by their wall clocks.
    elapsed = b.astimezone(UTC) - a.astimezone(UTC)
    assert epoch_us(b) - epoch_us(a) == elapsed // timedelta(microseconds=1)


def test_enums_are_the_words_stored_and_sent() -> None:
    assert [a.value for a in Axis] == ["llm", "voice", "compute"]
    assert [s.value for s in Status] == ["ok", "error"]
    assert [r.value for r in RecordResult] == ["recorded", "duplicate"]
    assert Axis("voice") is Axis.VOICE and Status("error") == "error"


def _event(**changes: object) -> UsageEvent:
    fields: dict[str, object] = {
        "id": "evt_1",
        "timestamp": datetime(2025, 3, 1, tzinfo=UTC),
        "account_id": "acct_1",
        "axis": Axis.LLM,
        "provider": "openai",
        "model": "gpt-4o-2024-08-06",
        "canonical_model": "gpt-4o",
        "operation": "chat.completions",
        "cost_nano": 3_500_000,
    }
    return UsageEvent(**(fields | changes))  # type: ignore[arg-type]  # a table of mixed field types


def test_an_event_that_says_nothing_more_is_a_priced_successful_proxied_call_of_nothing() -> None:
    event = _event()
    assert (event.key_id, event.member_id, event.agent_id, event.app) == (None, None, None, None)
    assert event.tags == ()
    assert (event.input_tokens, event.output_tokens, event.cached_input_tokens) == (0, 0, 0)
    assert (event.cache_write_tokens, event.reasoning_tokens, event.characters) == (0, 0, 0)
    assert event.seconds == Decimal(0) and isinstance(event.seconds, Decimal)
    assert event.quantity == Decimal(0) and isinstance(event.quantity, Decimal)
    assert event.unit_prices == {} and event.metadata == {}
    assert event.priced is True and event.status is Status.OK
    assert (event.http_status, event.error_type, event.latency_ms, event.ttft_ms) == (None, None, None, None)
    assert event.streamed is False and event.estimated is False
    assert event.source == "proxy"


def test_events_do_not_share_their_mutable_defaults() -> None:
    first, second = _event(), _event()
    first.unit_prices["input_mtok"] = "2.5"
    first.metadata["trace"] = "t1"
    assert second.unit_prices == {} and second.metadata == {}


def test_an_event_has_no_room_for_fields_it_does_not_declare() -> None:
    event = _event()
    with pytest.raises(AttributeError):
        event.colour = "red"  # type: ignore[attr-defined]  # slots: no __dict__
    assert not hasattr(event, "__dict__")


def test_events_with_the_same_fields_are_equal() -> None:
    assert _event(tags=("a",)) == _event(tags=("a",))
    assert _event(cost_nano=1) != _event(cost_nano=2)
    assert [f.name for f in dataclasses.fields(UsageEvent)][:9] == [
        "id",
        "timestamp",
        "account_id",
        "axis",
        "provider",
        "model",
        "canonical_model",
        "operation",
        "cost_nano",
    ]


def test_utcnow_is_aware_utc_and_advances() -> None:
    before = datetime.now(UTC)
    now = utcnow()
    after = datetime.now(UTC)
    assert now.tzinfo is UTC
    assert before <= now <= after


@pytest.mark.parametrize(
    ("micro", "text"),
    [
        (0, "0"),
        (1, "0.000001"),
        (3_600_500_000, "3600.5"),
        (2 * MICRO, "2"),
        (-1, "-0.000001"),
        (-3_600_500_000, "-3600.5"),  # a void's negated seconds: not -3601 + 0.5
        (-2 * MICRO, "-2"),
    ],
)
def test_millionths_are_shown_as_exact_decimals_negatives_included(micro: int, text: str) -> None:
    assert format_micro(micro) == text
    assert Decimal(text) * MICRO == micro


@given(st.integers(min_value=-(10**18), max_value=10**18))
def test_millionths_round_trip_through_their_text(micro: int) -> None:
    assert Decimal(format_micro(micro)) * MICRO == micro
