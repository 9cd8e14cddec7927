"""The analytics engine on real ledgers (SQLite, and PostgreSQL with TEST_PG_URL): local time exactly, in any
zone, and only what the viewer may see."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING
from zoneinfo import ZoneInfo

import pytest

from farebox.analytics import Dimension, Engine, Filters, Grain, Measure, Query, Window, month_window
from farebox.core.credentials import Principal, PrincipalKind
from farebox.core.owners import Role
from farebox.errors import NotFound
from farebox.ledger.actors import Actor
from farebox.ledger.adjustments import Adjustments
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.ledger.reader import LedgerReader

if TYPE_CHECKING:
    from tests.conftest import EventFactory

pytestmark = pytest.mark.anyio

MASTER = Principal(kind=PrincipalKind.MASTER)
COST = (Measure.COST_NANO,)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


async def _by_day(ledger: Ledger, window: Window) -> dict[object, int]:
    rows = await Engine(LedgerReader(ledger)).run(Query(window, COST, grain=Grain.DAY), viewer=MASTER)
    return {row.at: row.measures[0] for row in rows}


@pytest.mark.parametrize(
    ("zone", "last_of_day", "first_of_next"),
    [
        ("Asia/Kolkata", utc(2026, 3, 1, 18, 29), utc(2026, 3, 1, 18, 30)),  # +05:30
        ("Asia/Kathmandu", utc(2026, 3, 1, 18, 14), utc(2026, 3, 1, 18, 15)),  # +05:45
        ("America/New_York", utc(2026, 3, 2, 4, 59), utc(2026, 3, 2, 5, 0)),  # -05:00
    ],
)
async def test_a_day_ends_at_local_midnight_to_the_minute(
    ledger: Ledger, make_event: EventFactory, zone: str, last_of_day: datetime, first_of_next: datetime
) -> None:
    await ledger.record_many(
        [make_event(timestamp=last_of_day, cost_nano=1), make_event(timestamp=first_of_next, cost_nano=10)]
    )
    tz = ZoneInfo(zone)
    window = Window(date(2026, 2, 28), date(2026, 3, 3), tz)
    day = last_of_day.astimezone(tz).date()
    assert await _by_day(ledger, window) == {day: 1, day + timedelta(days=1): 10}


async def test_daylight_saving_days_and_their_hours(ledger: Ledger, make_event: EventFactory) -> None:
    """New York, 1 November 2026: clocks go back at 2:00, so the day has 25 hours and 1:00 comes twice."""
    tz = ZoneInfo("America/New_York")
    start = utc(2026, 11, 1, 4)  # local midnight (EDT)
    await ledger.record_many(
        [make_event(timestamp=start + timedelta(hours=h, minutes=7), cost_nano=h + 1) for h in range(25)]
    )
    window = Window(date(2026, 11, 1), date(2026, 11, 1), tz)
    engine = Engine(LedgerReader(ledger))

    hours = await engine.run(Query(window, COST, grain=Grain.HOUR), viewer=MASTER)

    assert len(hours) == 25
    starts = sorted(row.at for row in hours)  # type: ignore[type-var]
    assert [at.strftime("%H:%M%z") for at in starts[:4]] == ["00:00-0400", "01:00-0400", "01:00-0500", "02:00-0500"]
    assert sum(row.measures[0] for row in hours) == sum(range(1, 26))
    assert await _by_day(ledger, window) == {date(2026, 11, 1): sum(range(1, 26))}


async def test_weeks_start_on_monday_and_months_on_the_first_in_the_zone(
    ledger: Ledger, make_event: EventFactory
) -> None:
    tz = ZoneInfo("Asia/Kolkata")
    await ledger.record_many(
        [
            make_event(timestamp=utc(2026, 3, 1, 12), cost_nano=1),  # Sunday 1 March
            make_event(timestamp=utc(2026, 3, 1, 19), cost_nano=2),  # Monday 2 March, 00:30 in Kolkata
            make_event(timestamp=utc(2026, 3, 31, 18, 45), cost_nano=4),  # 1 April, 00:15 in Kolkata
        ]
    )
    window = Window(date(2026, 2, 20), date(2026, 4, 10), tz)
    engine = Engine(LedgerReader(ledger))
    weeks = await engine.run(Query(window, COST, grain=Grain.WEEK), viewer=MASTER)
    months = await engine.run(Query(window, COST, grain=Grain.MONTH), viewer=MASTER)
    assert sorted((row.at, row.measures[0]) for row in weeks) == [  # type: ignore[type-var]
        (date(2026, 2, 23), 1),
        (date(2026, 3, 2), 2),
        (date(2026, 3, 30), 4),
    ]
    assert sorted((row.at, row.measures[0]) for row in months) == [(date(2026, 3, 1), 3), (date(2026, 4, 1), 4)]  # type: ignore[type-var]


async def test_groups_filters_and_totals_agree(ledger: Ledger, make_event: EventFactory) -> None:
    noon = utc(2026, 3, 10, 12)
    await ledger.record_many(
        [
            make_event(timestamp=noon, cost_nano=100, model="gpt-4o-2024-08-06", canonical_model="gpt-4o"),
            make_event(timestamp=noon, cost_nano=30, model="gpt-4o-mini", canonical_model="gpt-4o-mini", app="bot"),
            make_event(
                timestamp=noon,
                cost_nano=5,
                key_id="key-2",
                provider="anthropic",
                model="claude",
                canonical_model="claude",
            ),
        ]
    )
    engine = Engine(LedgerReader(ledger))
    window = month_window(2026, 3, ZoneInfo("UTC"))
    by_model = await engine.run(
        Query(window, (Measure.COST_NANO, Measure.REQUESTS), group_by=(Dimension.CANONICAL_MODEL,)), viewer=MASTER
    )
    assert sorted((row.dimensions, row.measures) for row in by_model) == [
        (("claude",), (5, 1)),
        (("gpt-4o",), (100, 1)),
        (("gpt-4o-mini",), (30, 1)),
    ]
    (total,) = await engine.run(Query(window, COST), viewer=MASTER)
    assert total.measures == (135,)
    only = Filters({Dimension.PROVIDER: ("openai",), Dimension.APP: ("bot",)})
    assert [row.measures for row in await engine.run(Query(window, COST, filters=only), viewer=MASTER)] == [(30,)]
    gpt4o = Filters(models=("gpt-4o",))  # the model as called, or its canonical model
    assert [row.measures for row in await engine.run(Query(window, COST, filters=gpt4o), viewer=MASTER)] == [(100,)]


async def test_each_viewer_sees_only_its_own(ledger: Ledger, make_event: EventFactory) -> None:
    noon = utc(2026, 3, 10, 12)
    await ledger.record_many(
        [
            make_event(timestamp=noon, cost_nano=1, key_id="key-1", member_id="mem-1"),
            make_event(timestamp=noon, cost_nano=10, key_id="key-2", member_id="mem-2"),
            make_event(timestamp=noon, cost_nano=100, account_id="acct-2", key_id="key-3", member_id="mem-3"),
        ]
    )
    engine = Engine(LedgerReader(ledger))
    window = month_window(2026, 3, ZoneInfo("UTC"))

    async def seen(viewer: Principal, **fields: object) -> int:
        rows = await engine.run(Query(window, COST, **fields), viewer=viewer)  # type: ignore[arg-type]
        return sum(row.measures[0] for row in rows)

    def token(role: Role, member: str = "mem-1", account: str = "acct-1") -> Principal:
        return Principal(kind=PrincipalKind.MEMBER, account_id=account, member_id=member, role=role)

    key = Principal(kind=PrincipalKind.KEY, account_id="acct-1", member_id="mem-1", key_id="key-1")
    assert await seen(MASTER) == 111
    assert await seen(MASTER, account_id="acct-2") == 100
    for role in (Role.OWNER, Role.ADMIN, Role.BILLING):
        assert await seen(token(role)) == 11
    assert await seen(token(Role.MEMBER)) == 1
    assert await seen(key) == 1
    assert await seen(key, filters=Filters({Dimension.KEY: ("key-2",)})) == 0, "a filter never widens the scope"
    with pytest.raises(NotFound):
        await seen(token(Role.OWNER), account_id="acct-2")


async def test_the_daily_cube_answers_as_the_quarter_hours_do(ledger: Ledger, make_event: EventFactory) -> None:
    directory = Directory(ledger)
    account = await directory.create_account(name="Kolkata", timezone="Asia/Kolkata")
    zone = ZoneInfo("Asia/Kolkata")
    start = utc(2026, 2, 20)
    events = [
        make_event(
            timestamp=start + timedelta(minutes=97 * n),
            account_id=account.id,
            key_id=f"key-{n % 3}",
            member_id=f"mem-{n % 2}",
            agent_id=f"agent-{n % 4}",
            app=("bot", "", "ide")[n % 3],
            model=("gpt-4o", "gpt-4o-mini", "claude")[n % 3],
            canonical_model=("gpt-4o", "gpt-4o-mini", "claude")[n % 3],
            status="error" if n % 11 == 0 else "ok",
            http_status=(429, 503, 504)[n % 3] if n % 11 == 0 else 200,
            error_type=("rate_limit_error", "http_503", "upstream_timeout")[n % 3] if n % 11 == 0 else None,
            cost_nano=1_000 + n,
        )
        for n in range(600)
    ]
    await ledger.record_many(events)
    engine = Engine(LedgerReader(ledger))
    window = Window(date(2026, 2, 25), date(2026, 3, 20), zone)
    member = Principal(kind=PrincipalKind.MEMBER, account_id=account.id, member_id="mem-1", role=Role.MEMBER)
    daily, keyed, rollups = "usage_daily", "usage_key_rollups", "usage_rollups"
    cases = [
        (MASTER, {"group_by": (Dimension.CANONICAL_MODEL, Dimension.STATUS)}, daily, rollups),
        (MASTER, {"group_by": (Dimension.KEY,), "grain": Grain.DAY}, daily, keyed),
        (
            MASTER,
            {"group_by": (Dimension.MODEL,), "grain": Grain.WEEK, "filters": Filters(models=("gpt-4o",))},
            daily,
            rollups,
        ),
        (MASTER, {"grain": Grain.MONTH}, daily, keyed),
        (member, {"group_by": (Dimension.APP,)}, daily, rollups),
        (MASTER, {"group_by": (Dimension.AGENT, Dimension.MEMBER), "grain": Grain.DAY}, daily, rollups),
        (MASTER, {"group_by": (Dimension.AGENT, Dimension.MODEL, Dimension.OPERATION)}, daily, rollups),
        (MASTER, {"grain": Grain.HOUR}, keyed, keyed),
        (MASTER, {"group_by": (Dimension.ERROR_CLASS,)}, daily, rollups),
        (
            MASTER,
            {"group_by": (Dimension.PROVIDER, Dimension.ERROR_CLASS, Dimension.STATUS), "grain": Grain.DAY},
            daily,
            rollups,
        ),
        (MASTER, {"filters": Filters({Dimension.ERROR_CLASS: ("timeout",)})}, daily, rollups),
        (
            MASTER,
            {"group_by": (Dimension.KEY,), "filters": Filters({Dimension.ERROR_CLASS: ("", "timeout")})},
            daily,
            rollups,
        ),
        (member, {"group_by": (Dimension.ERROR_CLASS,), "grain": Grain.WEEK}, daily, rollups),
        (MASTER, {"group_by": (Dimension.PROVIDER,), "grain": Grain.HOUR}, rollups, rollups),
    ]
    for viewer, fields, cube_source, exact_source in cases:
        measures = (Measure.COST_NANO, Measure.REQUESTS, Measure.INPUT_TOKENS)
        cubed = Query(window, measures, account_id=account.id, local_days=True, **fields)  # type: ignore[arg-type]
        exact = Query(window, measures, account_id=account.id, local_days=False, **fields)  # type: ignore[arg-type]
        assert engine.source(cubed, viewer=viewer) == cube_source, fields
        assert engine.source(exact, viewer=viewer) == exact_source, fields
        by_cube = sorted((str(r.at), r.dimensions, r.measures) for r in await engine.run(cubed, viewer=viewer))
        by_quarter = sorted((str(r.at), r.dimensions, r.measures) for r in await engine.run(exact, viewer=viewer))
        assert by_cube == by_quarter and by_cube, fields


async def test_a_minute_is_summed_from_the_events_as_the_rollups_sum_them(
    ledger: Ledger, make_event: EventFactory
) -> None:
    """The raw events of a minute answer exactly what the quarter-hour rollups answer for the same events: every
    measure and dimension, voided events left out, every account for the master key, the viewer's access kept."""
    minute = (utc(2026, 3, 10, 12, 20), utc(2026, 3, 10, 12, 21))
    quarter = (utc(2026, 3, 10, 12, 15), utc(2026, 3, 10, 12, 30))
    last = utc(2026, 3, 10, 12, 20, 59, 999_999)
    await ledger.record_many(
        [
            make_event(timestamp=minute[0], cost_nano=1, input_tokens=1, output_tokens=2, latency_ms=10),
            make_event(timestamp=last, cost_nano=0, key_id=None, member_id=None, agent_id=None, app=None, priced=False),
            make_event(timestamp=last, cost_nano=10, status="error", estimated=True, reasoning_tokens=3),
            make_event(
                timestamp=minute[0], cost_nano=1_000, status="error", http_status=429, error_type="rate_limit_exceeded"
            ),
            make_event(timestamp=minute[0], cost_nano=1_000, status="error", http_status=503, error_type="http_503"),
            make_event(
                timestamp=last, cost_nano=1_000, status="error", http_status=None, error_type="upstream_timeout"
            ),
            make_event(timestamp=last, cost_nano=1_000, status="error", http_status=504, error_type="upstream_timeout"),
            make_event(timestamp=minute[0], cost_nano=100, account_id="acct-2", key_id="key-3", member_id="mem-3"),
            make_event(id="evt-voided", timestamp=minute[0], cost_nano=1_000, source="ingest"),
            make_event(timestamp=quarter[0] - timedelta(microseconds=1), cost_nano=10_000),  # the quarter before
            make_event(timestamp=quarter[1], cost_nano=100_000),  # the quarter after
        ]
    )
    await Adjustments(ledger).void("evt-voided", reason="posted twice", by=Actor("cli"))
    engine = Engine(LedgerReader(ledger))
    window = Window(date(2026, 3, 10), date(2026, 3, 10), ZoneInfo("UTC"))
    owner = Principal(kind=PrincipalKind.MEMBER, account_id="acct-1", member_id="mem-2", role=Role.OWNER)
    member = Principal(kind=PrincipalKind.MEMBER, account_id="acct-1", member_id="mem-1", role=Role.MEMBER)
    groupings = [
        (),
        (Dimension.ACCOUNT, Dimension.KEY, Dimension.MEMBER, Dimension.AGENT, Dimension.APP),
        (Dimension.AXIS, Dimension.PROVIDER, Dimension.MODEL, Dimension.CANONICAL_MODEL, Dimension.OPERATION),
        (Dimension.STATUS,),
        (Dimension.ERROR_CLASS,),
        (Dimension.KEY, Dimension.ERROR_CLASS, Dimension.STATUS),
    ]
    timeouts = Filters({Dimension.ERROR_CLASS: ("timeout", "rate_limited")})
    for viewer in (MASTER, owner, member):
        for group_by, filters in [*((grouping, Filters()) for grouping in groupings), ((), timeouts)]:
            raw = Query(window, tuple(Measure), group_by=group_by, filters=filters, within=minute)
            rolled = Query(window, tuple(Measure), group_by=group_by, filters=filters, within=quarter)
            keyed = set(group_by) <= {Dimension.ACCOUNT, Dimension.KEY, Dimension.STATUS} and not filters.values
            assert (engine.source(raw, viewer=viewer), engine.source(rolled, viewer=viewer)) == (
                "usage_events",
                "usage_key_rollups" if keyed and viewer is not member else "usage_rollups",
            )
            by_events = sorted((row.dimensions, row.measures) for row in await engine.run(raw, viewer=viewer))
            by_rollups = sorted(
                (row.dimensions, row.measures) for row in await engine.run(rolled, viewer=viewer) if any(row.measures)
            )
            assert by_events == by_rollups and by_events, (viewer.kind, group_by)
    (everyone,) = await engine.run(Query(window, (Measure.COST_NANO, Measure.REQUESTS), within=minute), viewer=MASTER)
    assert everyone.measures == (4_111, 8), "both accounts, the voided event and the neighbouring quarters left out"
    (mine,) = await engine.run(Query(window, (Measure.COST_NANO,), within=minute), viewer=member)
    assert mine.measures == (11 + 4 * 1_000,), "a member's own keys only"
    by_class = await engine.run(
        Query(window, (Measure.REQUESTS,), group_by=(Dimension.ERROR_CLASS,), within=minute), viewer=MASTER
    )
    assert sorted((row.dimensions[0], row.measures[0]) for row in by_class) == [
        ("", 3),
        ("other", 1),
        ("rate_limited", 1),
        ("timeout", 2),
        ("upstream_error", 1),
    ], "classed by the writer's one rule"
    nothing = Filters({Dimension.ERROR_CLASS: ("cancelled",)})
    (none,) = await engine.run(Query(window, (Measure.REQUESTS,), filters=nothing, within=minute), viewer=MASTER)
    assert none.measures == (0,), "a sum without groups is one row, of zeros when nothing matches"


@pytest.mark.parametrize(
    "within",
    [
        (utc(2026, 3, 10, 12, 20), utc(2026, 3, 10, 12, 21, 0, 1)),  # off the grid and over a minute
        (utc(2026, 3, 9, 23, 59, 30), utc(2026, 3, 10, 0, 0, 30)),  # not inside the window
        (utc(2026, 3, 10, 12, 21), utc(2026, 3, 10, 12, 20)),  # ends before it starts
    ],
)
async def test_a_part_of_a_day_too_long_for_the_events_or_outside_the_window_is_refused(
    ledger: Ledger, within: tuple[datetime, datetime]
) -> None:
    window = Window(date(2026, 3, 10), date(2026, 3, 10), ZoneInfo("UTC"))
    with pytest.raises(ValueError, match="minute|window"):
        await Engine(LedgerReader(ledger)).run(Query(window, COST, within=within), viewer=MASTER)


@pytest.mark.parametrize(
    "fields",
    [
        {},  # no `within`
        {"within": (utc(2026, 3, 10, 5), utc(2026, 3, 10, 11, 1))},  # over six hours
        {"within": (utc(2026, 3, 10, 5, 0, 30), utc(2026, 3, 10, 6))},  # not whole minutes
        {"within": (utc(2026, 3, 10, 5), utc(2026, 3, 10, 6)), "grain": Grain.HOUR},
    ],
)
def test_minute_by_minute_is_six_hours_of_whole_minutes_at_most(fields: dict[str, object]) -> None:
    window = Window(date(2026, 3, 10), date(2026, 3, 10), ZoneInfo("UTC"))
    with pytest.raises(ValueError, match="minute by minute"):
        Query(window, COST, by_minute=True, **fields)  # type: ignore[arg-type]


async def test_minute_by_minute_counts_each_minute_of_the_events_as_the_rollups_do(
    ledger: Ledger, make_event: EventFactory
) -> None:
    start = utc(2026, 3, 10, 5)
    await ledger.record_many(
        [
            make_event(timestamp=start + timedelta(seconds=41 * n), cost_nano=n, key_id=f"key-{n % 3}")
            for n in range(400)
        ]
        + [make_event(id="evt-voided", timestamp=start, cost_nano=10**9, source="ingest")]
    )
    await Adjustments(ledger).void("evt-voided", reason="posted twice", by=Actor("cli"))
    engine = Engine(LedgerReader(ledger))
    window = Window(date(2026, 3, 10), date(2026, 3, 10), ZoneInfo("Asia/Kathmandu"))
    span = (start, start + timedelta(hours=4))
    minutes = await engine.run(
        Query(window, COST, group_by=(Dimension.KEY,), within=span, by_minute=True), viewer=MASTER
    )
    assert engine.source(Query(window, COST, within=span, by_minute=True), viewer=MASTER) == "usage_events"
    quarters = await engine.run(Query(window, COST, group_by=(Dimension.KEY,), within=span), viewer=MASTER)
    by_key: dict[str, int] = {}
    for row in minutes:
        assert isinstance(row.at, datetime) and row.at.utcoffset() == timedelta(hours=5, minutes=45)
        assert row.at.second == 0 and span[0] <= row.at < span[1]
        by_key[row.dimensions[0]] = by_key.get(row.dimensions[0], 0) + row.measures[0]
    assert by_key == {row.dimensions[0]: row.measures[0] for row in quarters if row.measures[0]}
    first = min(minutes, key=lambda row: row.at)  # type: ignore[arg-type, return-value]
    assert (first.at, first.measures) == (start, (0,)), "05:00:00, event 0; the voided one left out"


async def test_active_keys_are_counted_once_per_slot_alike_from_every_table(
    ledger: Ledger, make_event: EventFactory
) -> None:
    """A key busy in two hours is one key of their day; a key whose only request was voided, and usage without a key,
    count for nothing; failed requests count. The events, both rollups and the daily cube answer alike."""
    await ledger.record_many(
        [
            make_event(timestamp=utc(2026, 3, 10, 10, 5), key_id="key-1"),
            make_event(timestamp=utc(2026, 3, 10, 11, 5), key_id="key-1"),
            make_event(
                timestamp=utc(2026, 3, 10, 10, 20), key_id="key-2", member_id="mem-2", status="error", http_status=503
            ),
            make_event(id="evt-voided", timestamp=utc(2026, 3, 10, 10, 40), key_id="key-3", source="ingest"),
            make_event(timestamp=utc(2026, 3, 10, 10, 50), key_id=None, member_id=None),
            make_event(timestamp=utc(2026, 3, 10, 10, 10), account_id="acct-2", key_id="key-4", member_id="mem-4"),
        ]
    )
    await Adjustments(ledger).void("evt-voided", reason="posted twice", by=Actor("cli"))
    engine = Engine(LedgerReader(ledger))
    window = Window(date(2026, 3, 10), date(2026, 3, 10), ZoneInfo("UTC"))
    provider = Filters({Dimension.PROVIDER: (make_event().provider,)})

    async def counted(viewer: Principal = MASTER, **fields: object) -> dict[object, int]:
        query = Query(window, COST, **fields)  # type: ignore[arg-type]
        return {row.at: row.measures[0] for row in await engine.active_keys(query, viewer=viewer)}

    ten, eleven = utc(2026, 3, 10, 10), utc(2026, 3, 10, 11)
    assert await counted(grain=Grain.HOUR) == {ten: 3, eleven: 1}, "every account's keys for the master key"
    for source, fields in [
        ("usage_key_rollups", {}),
        ("usage_rollups", {"filters": provider}),
        ("usage_daily", {"local_days": True}),
    ]:
        query = Query(window, COST, grain=Grain.DAY, account_id="acct-1", **fields)  # type: ignore[arg-type]
        assert engine.source(query, viewer=MASTER) == source
        (day,) = await engine.active_keys(query, viewer=MASTER)
        assert (day.at, day.measures) == (date(2026, 3, 10), (2,)), source
    assert await counted(grain=Grain.HOUR, account_id="acct-1", filters=provider) == {ten: 2, eleven: 1}
    minutes = await counted(account_id="acct-1", within=(ten, ten + timedelta(hours=2)), by_minute=True)
    assert {at: n for at, n in minutes.items() if n} == {
        utc(2026, 3, 10, 10, 5): 1,
        utc(2026, 3, 10, 10, 20): 1,
        utc(2026, 3, 10, 11, 5): 1,
    }
    member = Principal(kind=PrincipalKind.MEMBER, account_id="acct-1", member_id="mem-1", role=Role.MEMBER)
    assert await counted(member, grain=Grain.DAY, account_id="acct-1") == {date(2026, 3, 10): 1}
    with pytest.raises(ValueError, match="error class"):
        await counted(grain=Grain.DAY, group_by=(Dimension.ERROR_CLASS,))


async def test_averaging_under_keeps_only_the_groups_whose_requests_average_under_the_bounds(
    ledger: Ledger, make_event: EventFactory
) -> None:
    """The bound holds per group (a key's day), on the average per request, not on any one request; from the daily
    cube and the quarter-hour rollups alike."""
    await ledger.record_many(
        [
            make_event(timestamp=utc(2026, 3, 10, 9), key_id="key-1", input_tokens=1_500, output_tokens=10),
            make_event(timestamp=utc(2026, 3, 10, 10), key_id="key-1", input_tokens=300, output_tokens=10),
            make_event(timestamp=utc(2026, 3, 11, 9), key_id="key-1", input_tokens=1_200, output_tokens=10),
            make_event(timestamp=utc(2026, 3, 10, 9), key_id="key-2", input_tokens=100, output_tokens=900),
            make_event(timestamp=utc(2026, 3, 11, 9), key_id="key-2", input_tokens=999, output_tokens=499),
        ]
    )
    engine = Engine(LedgerReader(ledger))
    window = Window(date(2026, 3, 10), date(2026, 3, 11), ZoneInfo("UTC"))
    bounds = {Measure.INPUT_TOKENS: 1_000, Measure.OUTPUT_TOKENS: 500}
    provider = Filters({Dimension.PROVIDER: (make_event().provider,)})
    for source, local_days, filters in [
        ("usage_daily", True, Filters()),
        ("usage_key_rollups", False, Filters()),
        ("usage_rollups", False, provider),
    ]:
        query = Query(
            window,
            (Measure.REQUESTS, Measure.INPUT_TOKENS),
            group_by=(Dimension.KEY,),
            grain=Grain.DAY,
            filters=filters,
            account_id="acct-1",
            local_days=local_days,
            averaging_under=bounds,
        )
        assert engine.source(query, viewer=MASTER) == source
        rows = await engine.run(query, viewer=MASTER)
        assert sorted((row.at, row.dimensions, row.measures) for row in rows) == [  # type: ignore[type-var]
            (date(2026, 3, 10), ("key-1",), (2, 1_800)),
            (date(2026, 3, 11), ("key-2",), (1, 999)),
        ], source
    for refused in (
        Query(window, COST, averaging_under=bounds),
        Query(window, COST, group_by=(Dimension.ERROR_CLASS,), averaging_under=bounds),
    ):
        with pytest.raises(ValueError, match="averages are bounded"):
            await engine.run(refused, viewer=MASTER)
