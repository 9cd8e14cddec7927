"""The address a request came from, as the audit log and the sign-in throttles count it."""

from __future__ import annotations

from starlette.datastructures import Headers

__all__ = ["client_address"]


def client_address(headers: Headers, client: tuple[str, int] | None, *, trust_proxy: bool) -> str:
    """The peer's address; behind a trusted proxy (`trust_proxy_headers`), the last hop of its `X-Forwarded-For`
    (the one the proxy added)."""
    forwarded = headers.get("x-forwarded-for")
    if forwarded and trust_proxy:
        return forwarded.split(",")[-1].strip()
    return client[0] if client else "unknown"
