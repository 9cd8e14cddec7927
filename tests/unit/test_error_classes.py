"""Every failure falls into one class by its error type first, then its HTTP status; only the upstream's own
failures count against its uptime."""

from __future__ import annotations

import pytest

from farebox.core.error_classes import ErrorClass, error_class


@pytest.mark.parametrize(
    ("status", "http_status", "error_type", "expected"),
    [
        ("ok", 200, None, ""),
        ("ok", 503, "http_503", ""),  # only errors have a class
        ("error", 429, "rate_limit_error", "rate_limited"),
        ("error", 429, "http_429", "rate_limited"),
        ("error", 200, "rate_limit_exceeded", "rate_limited"),
        ("error", 400, "invalid_request_error", "client_error"),
        ("error", 401, "authentication_error", "client_error"),
        ("error", 503, "http_503", "upstream_error"),
        ("error", 500, "api_error", "upstream_error"),
        ("error", 200, "overloaded_error", "upstream_error"),  # an Anthropic stream's error event
        ("error", 200, "stream_error", "upstream_error"),
        ("error", 504, "upstream_timeout", "timeout"),
        ("error", 502, "upstream_unreachable", "connection"),
        ("error", 200, "upstream_disconnected", "connection"),
        ("error", 499, "cancelled", "cancelled"),
        ("error", 200, "client_disconnected", "cancelled"),
        ("error", None, None, "other"),
        ("error", 200, "something_new", "other"),
    ],
)
def test_each_failure_has_one_class(
    status: str, http_status: int | None, error_type: str | None, expected: str
) -> None:
    assert error_class(status, http_status, error_type) == expected


def test_only_the_upstream_s_own_failures_count_against_uptime() -> None:
    failed = {kind.value for kind in ErrorClass if kind.upstream_failed}
    assert failed == {"upstream_error", "timeout", "connection"}
