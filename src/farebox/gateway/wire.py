"""Request plumbing every proxy route shares: headers, the body, Gemini's `?key=`, and errors answered in the
client's own wire format (OpenAI's envelope, Anthropic's on `/v1/messages`, Gemini's on `/v1beta/...`)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from urllib.parse import unquote_plus

import orjson
from starlette.types import Receive, Scope, Send

from farebox.gateway.formats import FORMATS
from farebox.gateway.providers.payload import JSONObject, load_object, sub_object
from farebox.gateway.upstream import Wire

__all__ = [
    "error_message",
    "error_type_of",
    "headers_of",
    "read_body",
    "send_error",
    "split_key_param",
    "upstream_error_type",
]

_MESSAGES: Mapping[int, str] = MappingProxyType(
    {503: "the usage ledger could not record this request; nothing was charged, retry"}
)


def headers_of(scope: Scope) -> dict[str, str]:
    """The request headers by lower-case name (the last one wins for a repeated name)."""
    return {name.decode("latin-1"): value.decode("latin-1") for name, value in scope["headers"]}


async def read_body(receive: Receive) -> bytes:
    """The whole request body (its size is already bounded by the `BodySizeLimit` middleware)."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            break
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def split_key_param(query_string: bytes) -> tuple[str | None, str]:
    """A query string's `key` parameter (the last one), and the query string without any `key`, still encoded.

    The other parameters keep their bytes and order, so what goes upstream is what the client sent, less its key.
    """
    key: str | None = None
    kept: list[str] = []
    for pair in query_string.decode("latin-1").split("&"):
        name, _, value = pair.partition("=")
        if unquote_plus(name) == "key":
            key = unquote_plus(value)
        elif pair:
            kept.append(pair)
    return key, "&".join(kept)


async def send_error(send: Send, wire: Wire, status: int, message: str, *, code: str, request_id: str) -> None:
    """Answer an error farebox decided itself, in the client's wire format."""
    body = orjson.dumps(FORMATS[wire].error_body(status, message, code=code, request_id=request_id))
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(body)).encode()),
        (b"x-farebox-request-id", request_id.encode()),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


def upstream_error_type(body: bytes, status: int) -> str:
    """The error type an upstream error body names (see `error_type_of`), else `http_<status>`."""
    return error_type_of(sub_object(load_object(body), "error")) or f"http_{status}"


def error_type_of(error: JSONObject | None) -> str | None:
    """The type a provider's error object names: `type`, Gemini's `status`, else `code` (the Responses API's
    `response.error`); None when it names none."""
    if error is None:
        return None
    for field in ("type", "status", "code"):
        value = error.get(field)
        if isinstance(value, str) and value:
            return value
    return None


def error_message(status: int) -> str:
    """The message of an error farebox answers with no more specific one."""
    return _MESSAGES.get(status, f"error {status}")
