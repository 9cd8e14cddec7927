"""What kind of failure an error event was: a few classes every provider's errors fall into.

Providers name their errors freely (`overloaded_error`, `RESOURCE_EXHAUSTED`, `http_503`...), so error rates
"by type" group them into the classes below; the rollups keep the class as a dimension. The upstream failed
(`upstream_failed`) when it answered with a 5xx, did not answer in time, or could not be reached or dropped
the connection: a provider's uptime is the share of its requests without such a failure.
"""

from __future__ import annotations

from enum import StrEnum

__all__ = ["ErrorClass", "error_class"]


class ErrorClass(StrEnum):
    RATE_LIMITED = "rate_limited"
    """The upstream refused for rate or quota (429)."""
    CLIENT_ERROR = "client_error"
    """The upstream refused the request itself (another 4xx: bad request, authentication, not found)."""
    UPSTREAM_ERROR = "upstream_error"
    """The upstream failed (a 5xx, or an error event in a stream it ended)."""
    TIMEOUT = "timeout"
    """The upstream did not answer in time."""
    CONNECTION = "connection"
    """The upstream could not be reached, or dropped the connection."""
    CANCELLED = "cancelled"
    """The client went away before the answer ended."""
    OTHER = "other"
    """An error with neither a known type nor an HTTP status that says more (e.g. ingested events)."""

    @property
    def upstream_failed(self) -> bool:
        """Whether this counts against the provider's uptime."""
        return self in (ErrorClass.UPSTREAM_ERROR, ErrorClass.TIMEOUT, ErrorClass.CONNECTION)


# Error types that say more than their HTTP status: farebox's own (`farebox.gateway.upstream`, the proxy), and
# the providers' names for overload and rate limits, which a stream reports under HTTP 200.
_BY_TYPE = {
    "upstream_timeout": ErrorClass.TIMEOUT,
    "upstream_unreachable": ErrorClass.CONNECTION,
    "upstream_disconnected": ErrorClass.CONNECTION,
    "cancelled": ErrorClass.CANCELLED,
    "client_disconnected": ErrorClass.CANCELLED,
    "stream_error": ErrorClass.UPSTREAM_ERROR,
    "overloaded_error": ErrorClass.UPSTREAM_ERROR,
    "api_error": ErrorClass.UPSTREAM_ERROR,
    "server_error": ErrorClass.UPSTREAM_ERROR,
    "internal_error": ErrorClass.UPSTREAM_ERROR,
    "UNAVAILABLE": ErrorClass.UPSTREAM_ERROR,
    "INTERNAL": ErrorClass.UPSTREAM_ERROR,
    "rate_limit_error": ErrorClass.RATE_LIMITED,
    "rate_limit_exceeded": ErrorClass.RATE_LIMITED,
    "RESOURCE_EXHAUSTED": ErrorClass.RATE_LIMITED,
}


def error_class(status: str, http_status: int | None, error_type: str | None) -> str:
    """The class of an event (`ErrorClass`'s value), or '' for an event that did not fail."""
    if status != "error":
        return ""
    known = _BY_TYPE.get(error_type or "")
    if known is not None:
        return known.value
    if http_status == 429:
        return ErrorClass.RATE_LIMITED.value
    if http_status is not None and http_status >= 500:
        return ErrorClass.UPSTREAM_ERROR.value
    if http_status is not None and http_status >= 400:
        return ErrorClass.CLIENT_ERROR.value
    return ErrorClass.OTHER.value
