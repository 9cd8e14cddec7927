"""The OpenAPI document (`GET /openapi.json`): FastAPI's, made to state every answer each route can give.

FastAPI documents a route's success answer, its parameters, its body and its credential (`farebox.services.authenticate`
declares the two ways to send one). `describe_errors` adds the errors, in the one envelope every route
answers (`farebox.api.errors`), by what makes a route answer them:

| the operation                              | may answer                                              |
| ------------------------------------------ | ------------------------------------------------------- |
| takes a credential                         | 401 (none, or a bad one), 403 (not this caller's to do), |
|                                            | 503 (the ledger could not commit: a member token's use  |
|                                            | is recorded, and most routes write)                     |
| has a path parameter (every one is an id), | 404                                                     |
| or an `account_id` query parameter         |                                                         |
| takes a body                               | 400 (not JSON), 413 (too large), 422 (a bad field)      |
| has a query parameter                      | 422 (a bad value, or one given twice: `api.query`)      |

A route adds the errors only it answers (a 409, a 400 of its own) with `responses=errors({409: "..."})`;
this fills in their envelope. FastAPI's own 422 schema, which farebox never answers, is replaced.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["ERROR_SCHEMA", "describe_errors", "errors"]

ERROR_SCHEMA: dict[str, Any] = {
    "title": "Error",
    "description": "Every error farebox answers, in OpenAI's envelope.",
    "type": "object",
    "required": ["error"],
    "additionalProperties": False,
    "properties": {
        "error": {
            "type": "object",
            "required": ["type", "code", "message"],
            "additionalProperties": False,
            "properties": {
                "type": {"type": "string", "description": "The OpenAI error type, e.g. `permission_error`."},
                "code": {"type": "string", "description": "A stable machine-readable reason, e.g. `not_admin`."},
                "message": {"type": "string", "description": "One line for humans."},
                "details": {
                    "type": "array",
                    "description": "422 only: one `{loc, message}` per problem (`index` and `id` for events).",
                    "items": {"type": "object"},
                },
            },
        }
    },
}

_ERROR_REF = {"$ref": "#/components/schemas/Error"}
_CREDENTIAL = {
    401: "No credential, or an unknown, revoked or expired one.",
    403: "The credential may not do this: `proxy_key`, `not_admin`, `not_yours`, ...",
    503: "The ledger could not commit; nothing was changed. Retry.",
}
_NOT_FOUND = {404: "No record with this id, or none the caller may know of."}
_BODY = {
    400: "The body is not JSON (`invalid_json`).",
    413: "The body is larger than the `max_body_bytes` setting.",
    422: "A field is missing, unknown or bad; `error.details` names each.",
}
_QUERY = {422: "A query parameter is missing, bad or given more than once; `error.details` names it."}
_FASTAPI_VALIDATION = ("HTTPValidationError", "ValidationError")
_FASTAPI_422 = "Validation Error"


def errors(descriptions: Mapping[int, str]) -> dict[int | str, dict[str, Any]]:
    """The `responses=` of a route's own errors: status -> when it is answered (the envelope is added)."""
    return {status: {"description": description} for status, description in descriptions.items()}


def describe_errors(document: dict[str, Any]) -> dict[str, Any]:
    """`document` (FastAPI's), with every operation's errors in the one envelope; changed in place."""
    for item in document.get("paths", {}).values():
        for operation in item.values():
            responses = operation.setdefault("responses", {})
            if responses.get("422", {}).get("description") == _FASTAPI_422:
                del responses["422"]  # FastAPI's, on every route with a parameter: rebuilt below where true
            for status, description in _errors_of(operation).items():
                responses.setdefault(str(status), {"description": description})
            for status, response in responses.items():
                if int(status) >= 400:
                    response["content"] = {"application/json": {"schema": _ERROR_REF}}
    schemas = document.setdefault("components", {}).setdefault("schemas", {})
    for name in _FASTAPI_VALIDATION:
        schemas.pop(name, None)
    schemas["Error"] = ERROR_SCHEMA
    return document


def _errors_of(operation: Mapping[str, Any]) -> dict[int, str]:
    found: dict[int, str] = {}
    parameters = operation.get("parameters", [])
    if operation.get("security"):
        found |= _CREDENTIAL
    if any(parameter["in"] == "path" or parameter["name"] == "account_id" for parameter in parameters):
        found |= _NOT_FOUND
    if any(parameter["in"] == "query" for parameter in parameters):
        found |= _QUERY
    if "requestBody" in operation:
        found |= _BODY
    return found
