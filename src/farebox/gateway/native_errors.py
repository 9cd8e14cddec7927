"""The error shape of a refused body on the native routes: the Anthropic and Gemini SDKs expect their own.

`farebox.api.body_limit.BodySizeLimit` refuses a body over the size limit on every route (declared or chunked);
`native_error_shape` tells it the envelope of `/v1/messages` (Anthropic) and `/v1beta/models/...` and
`/v1/models/...` (Gemini).
"""

from __future__ import annotations

from typing import Any

from farebox.errors import FareboxError
from farebox.gateway.formats import FORMATS, WireFormat

__all__ = ["native_error_shape"]

_NATIVE_PATHS = (
    ("/v1/messages", FORMATS["anthropic"]),
    ("/v1beta/models/", FORMATS["gemini"]),
    ("/v1/models/", FORMATS["gemini"]),
)
"""(path, or path prefix ending in `/`) -> the wire format its clients expect errors in."""


def _native_format(path: str) -> WireFormat | None:
    for prefix, wire_format in _NATIVE_PATHS:
        if path == prefix or (prefix.endswith("/") and path.startswith(prefix)):
            return wire_format
    return None


def native_error_shape(path: str, error: FareboxError) -> dict[str, Any] | None:
    """The error body in the wire format of `path`'s clients; None on the OpenAI-shaped routes."""
    wire_format = _native_format(path)
    if wire_format is None:
        return None
    return wire_format.error_body(error.status, error.message, code=error.code, request_id=None)
