"""core.owners: the rules that check what users type (names, e-mail addresses, timezones, caps, model lists,
tags, labels, choices). A broken rule is a 422 that names the field, in the message and in `details`."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from farebox.core.owners import (
    BLANK,
    EMAIL_PATTERN,
    MAX_CAP_NANO,
    NAME_PATTERN,
    Plan,
    Role,
    as_utc,
    check_cap,
    check_timezone,
    choice,
    clean_email,
    clean_label,
    clean_models,
    clean_name,
    clean_tags,
    invalid,
    percent_used,
)
from farebox.core.periods import Period
from farebox.errors import ValidationFailed


def assert_refused(caught: pytest.ExceptionInfo[ValidationFailed], field: str, message: str) -> None:
    """The error is a 422 naming `field` with `message`, in the text and in its one `details` item."""
    error = caught.value
    assert error.status == 422
    assert error.code == "validation_failed"
    assert error.message == f"{field}: {message}"
    assert error.details == [{"loc": field, "message": message}]


def test_invalid_builds_the_422_for_one_field() -> None:
    error = invalid("plan", "must be one of free, pro, enterprise")
    assert isinstance(error, ValidationFailed)
    assert error.body() == {
        "error": {
            "type": "invalid_request_error",
            "code": "validation_failed",
            "message": "plan: must be one of free, pro, enterprise",
            "details": [{"loc": "plan", "message": "must be one of free, pro, enterprise"}],
        }
    }


# --- names and labels -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "cleaned"),
    [
        ("Acme", "Acme"),
        ("  Acme Corp \n", "Acme Corp"),
        ("x", "x"),
        ("a" * 200, "a" * 200),
        ("  " + "a" * 200 + "  ", "a" * 200),  # the limit applies after stripping
        ("Zoë 日本", "Zoë 日本"),
        ("inner   blanks kept", "inner   blanks kept"),
    ],
)
def test_clean_name_accepts(value: str, cleaned: str) -> None:
    assert clean_name(value) == cleaned


@pytest.mark.parametrize(
    ("value", "message"),
    [("", "must not be empty"), ("   \t\n", "must not be empty"), ("a" * 201, "must be at most 200 characters")],
)
def test_clean_name_refuses(value: str, message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        clean_name(value)
    assert_refused(caught, "name", message)


def test_clean_name_names_the_field_it_is_given() -> None:
    with pytest.raises(ValidationFailed) as caught:
        clean_name(" ", field="display_name")
    assert_refused(caught, "display_name", "must not be empty")


@pytest.mark.parametrize(
    ("value", "cleaned"),
    [(None, None), ("", None), ("   ", None), (" agent-7 ", "agent-7"), ("a" * 200, "a" * 200)],
)
def test_clean_label_blank_means_none(value: str | None, cleaned: str | None) -> None:
    assert clean_label(value, field="agent_id") == cleaned


def test_clean_label_refuses_a_long_label_naming_the_field() -> None:
    with pytest.raises(ValidationFailed) as caught:
        clean_label("a" * 201, field="app")
    assert_refused(caught, "app", "must be at most 200 characters")


# --- e-mail addresses -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "cleaned"),
    [
        ("ada@example.com", "ada@example.com"),
        ("Ada.Lovelace@Example.COM", "ada.lovelace@example.com"),
        ("  bob@example.org\n", "bob@example.org"),
        ("a+tag@sub.example.co.uk", "a+tag@sub.example.co.uk"),
        ("x@y", "x@y"),  # a local domain is an address too
        ("a" * 310 + "@example.c", "a" * 310 + "@example.c"),  # 320 characters: the limit
    ],
)
def test_clean_email_lower_cases_and_strips(value: str, cleaned: str) -> None:
    assert clean_email(value) == cleaned


@pytest.mark.parametrize(
    "value",
    [
        "",
        "ada",
        "ada@",
        "@example.com",
        "ada@@example.com",
        "a@b@c",
        "ada lovelace@example.com",
        "ada@exa mple.com",
        "a" * 311 + "@example.c",  # 321 characters
    ],
)
def test_clean_email_refuses_what_is_not_an_address(value: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        clean_email(value)
    assert_refused(caught, "email", f"not an e-mail address: {value!r}")


@given(st.emails())
def test_any_address_is_kept_lower_cased_and_cleaning_is_idempotent(address: str) -> None:
    cleaned = clean_email(address)
    assert cleaned == address.lower()
    assert clean_email(cleaned) == cleaned


# --- the patterns the OpenAPI document states for these rules -------------------------------------------------


def test_blank_is_exactly_what_strip_removes() -> None:
    blank = re.compile(f"[{BLANK}]")
    for code in range(0x10000):  # every character Python counts as blank is below U+3001
        assert bool(blank.match(chr(code))) is chr(code).isspace(), hex(code)


@pytest.mark.parametrize(
    "value", ["Acme", " x ", "\x1c\x85x\u3000", "", " ", "\x1c\x1d\x1e\x1f", "\x85\xa0\u2028\u3000"]
)
def test_the_name_pattern_allows_what_clean_name_keeps(value: str) -> None:
    try:
        kept = bool(clean_name(value))
    except ValidationFailed:
        kept = False
    assert bool(re.search(NAME_PATTERN, value)) is kept


@pytest.mark.parametrize(
    "value", ["ada@example.com", "\x1c ada@example.com\x85", "ada\x1c@example.com", "a@b\x85c", "@b"]
)
def test_the_email_pattern_allows_what_clean_email_takes(value: str) -> None:
    try:
        taken = bool(clean_email(value))
    except ValidationFailed:
        taken = False
    assert bool(re.match(EMAIL_PATTERN, value)) is taken


# --- timezones --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["UTC", "Europe/Paris", "Asia/Kolkata", "Asia/Kathmandu", "America/Argentina/Salta"])
def test_check_timezone_returns_a_known_name_unchanged(name: str) -> None:
    assert check_timezone(name) == name


@pytest.mark.parametrize("name", ["Mars/Olympus", "europe/paris", "", "../etc/passwd", "/etc/localtime", "UTC+2"])
def test_check_timezone_refuses_unknown_names(name: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_timezone(name)
    assert_refused(caught, "timezone", f"unknown timezone {name!r} (use an IANA name such as 'Europe/Paris')")


# --- caps -------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("nano", [None, 0, 1, 50 * 10**9, MAX_CAP_NANO])
def test_check_cap_accepts_none_and_zero_to_a_billion_usd(nano: int | None) -> None:
    assert check_cap(nano) == nano


def test_the_largest_cap_is_a_billion_usd_and_fits_a_signed_64_bit_column() -> None:
    assert MAX_CAP_NANO == 1_000_000_000 * 10**9
    assert MAX_CAP_NANO < 2**63 - 1


@pytest.mark.parametrize(
    ("nano", "message"),
    [
        (-1, "must not be negative"),
        (-(10**20), "must not be negative"),
        (MAX_CAP_NANO + 1, "must be at most 1000000000 USD"),
    ],
)
def test_check_cap_refuses_out_of_range(nano: int, message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        check_cap(nano)
    assert_refused(caught, "spend_cap", message)
    with pytest.raises(ValidationFailed) as caught:
        check_cap(nano, field="member_cap")
    assert_refused(caught, "member_cap", message)


# --- model lists and tags ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("models", "cleaned"),
    [
        (None, None),
        (["gpt-4o"], ("gpt-4o",)),
        ([" gpt-4o ", "claude-sonnet-4-5"], ("gpt-4o", "claude-sonnet-4-5")),
        (["b", "a", "b", " a "], ("b", "a")),  # de-duplicated, first position kept
        (("x" for _ in range(3)), ("x",)),  # any iterable
        (["GPT-4o", "gpt-4o"], ("GPT-4o", "gpt-4o")),  # model names are case-sensitive
    ],
)
def test_clean_models(models: list[str] | None, cleaned: tuple[str, ...] | None) -> None:
    assert clean_models(models) == cleaned


@pytest.mark.parametrize(
    ("models", "message"),
    [
        ([], "name at least one model, or null for every model"),
        (["gpt-4o", " "], "items must not be empty"),
        (["a" * 201], "items must be at most 200 characters"),
    ],
)
def test_clean_models_refuses(models: list[str], message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        clean_models(models)
    assert_refused(caught, "allowed_models", message)


@pytest.mark.parametrize(
    ("tags", "cleaned"),
    [([], ()), (["prod", " team-a ", "prod"], ("prod", "team-a")), (("z", "a"), ("z", "a"))],
)
def test_clean_tags(tags: list[str], cleaned: tuple[str, ...]) -> None:
    assert clean_tags(tags) == cleaned


@pytest.mark.parametrize(
    ("tags", "message"),
    [([""], "items must not be empty"), (["ok", "t" * 201], "items must be at most 200 characters")],
)
def test_clean_tags_refuses(tags: list[str], message: str) -> None:
    with pytest.raises(ValidationFailed) as caught:
        clean_tags(tags)
    assert_refused(caught, "tags", message)


_item = st.text(min_size=1, max_size=20).filter(lambda s: s.strip() != "")


@given(st.lists(_item, max_size=12))
def test_cleaned_items_are_unique_stripped_in_first_seen_order_and_stable(items: list[str]) -> None:
    cleaned = clean_tags(items)
    assert len(set(cleaned)) == len(cleaned)
    assert set(cleaned) == {item.strip() for item in items}
    assert list(cleaned) == sorted(cleaned, key=[item.strip() for item in items].index)
    assert clean_tags(cleaned) == cleaned


# --- choices ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "value", "member"),
    [
        (Plan, "pro", Plan.PRO),
        (Role, "owner", Role.OWNER),
        (Period, "total", Period.TOTAL),
        (Plan, Plan.FREE, Plan.FREE),
    ],
)
def test_choice_takes_an_allowed_value(kind: type[Plan | Role | Period], value: str, member: object) -> None:
    assert choice(kind, value, field="f") is member


@pytest.mark.parametrize(
    ("kind", "value", "field", "message"),
    [
        (Plan, "gold", "plan", "must be one of free, pro, enterprise, not 'gold'"),
        (Role, "Admin", "role", "must be one of owner, admin, billing, member, not 'Admin'"),
        (Period, "yearly", "cap_period", "must be one of daily, weekly, monthly, total, not 'yearly'"),
        (Period, "", "cap_period", "must be one of daily, weekly, monthly, total, not ''"),
    ],
)
def test_choice_lists_the_allowed_values(
    kind: type[Plan | Role | Period], value: str, field: str, message: str
) -> None:
    with pytest.raises(ValidationFailed) as caught:
        choice(kind, value, field=field)
    assert_refused(caught, field, message)


# --- instants and percentages -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("at", "utc"),
    [
        (None, None),
        (datetime(2025, 1, 1, 12), datetime(2025, 1, 1, 12, tzinfo=UTC)),  # naive is UTC
        (
            datetime(2025, 1, 1, 12, tzinfo=timezone(timedelta(hours=5, minutes=30))),
            datetime(2025, 1, 1, 6, 30, tzinfo=UTC),
        ),
        (datetime(2025, 1, 1, 12, tzinfo=UTC), datetime(2025, 1, 1, 12, tzinfo=UTC)),
    ],
)
def test_as_utc(at: datetime | None, utc: datetime | None) -> None:
    result = as_utc(at)
    assert result == utc
    if result is not None:
        assert result.tzinfo is UTC and result.replace(tzinfo=None) == utc.replace(tzinfo=None)  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("spent", "cap", "percent"),
    [
        (0, None, None),
        (10**12, None, None),
        (0, 0, "100.00"),  # a zero cap allows nothing: it is used up
        (5, 0, "100.00"),
        (0, 100, "0.00"),
        (50, 100, "50.00"),
        (100, 100, "100.00"),
        (250, 100, "250.00"),  # overspend shows above 100
        (1, 3, "33.33"),
        (2, 3, "66.67"),
        (1, 8, "12.50"),
        (1, 80_000, "0.00"),  # 0.00125 -> 0.00
        (1, 20_000, "0.00"),  # 0.005: half to even -> 0.00
        (3, 20_000, "0.02"),  # 0.015: half to even -> 0.02
        (1, 800, "0.12"),  # 0.125: half to even -> 0.12
        (3, 40_000, "0.01"),  # 0.0075 -> 0.01
        (1, 16_000, "0.01"),  # 0.00625 -> 0.01
    ],
)
def test_percent_used(spent: int, cap: int | None, percent: str | None) -> None:
    result = percent_used(spent, cap)
    if percent is None:
        assert result is None
    else:
        assert isinstance(result, Decimal)
        assert str(result) == percent  # two places, always


@given(spent=st.integers(0, 10**18), cap=st.integers(1, 10**18))
def test_percent_used_is_within_half_a_hundredth_of_the_exact_share(spent: int, cap: int) -> None:
    result = percent_used(spent, cap)
    assert result is not None and result.as_tuple().exponent == -2
    assert abs(result - Decimal(spent) * 100 / Decimal(cap)) <= Decimal("0.005")
