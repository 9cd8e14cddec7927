"""One error shape for every route: `{"error": {"type", "code", "message", "details"?}}`, never a trace."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import Match

from farebox.errors import FareboxError, InvalidRequest, ValidationFailed

__all__ = ["error_response", "install_error_handlers", "unexpected_error", "validation_details"]

log = logging.getLogger(__name__)

_STATUS_TYPES = {
    400: ("invalid_request_error", "invalid_request"),
    401: ("authentication_error", "invalid_api_key"),
    403: ("permission_error", "forbidden"),
    404: ("not_found_error", "not_found"),
    405: ("invalid_request_error", "method_not_allowed"),
    413: ("invalid_request_error", "payload_too_large"),
    415: ("invalid_request_error", "unsupported_media_type"),
}
_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")


def error_response(error: FareboxError) -> JSONResponse:
    """The JSON response of a farebox error."""
    return JSONResponse(error.body(), status_code=error.status)


def validation_details(errors: Any) -> list[dict[str, Any]]:
    """Pydantic errors as `[{"loc": "events.3.input_tokens", "message": ...}]`, without echoing input."""
    return [
        {
            "loc": ".".join(str(part) for part in error["loc"] if part != "body"),
            "message": error["msg"].removeprefix("Value error, "),
        }
        for error in errors
    ]


async def _farebox_error(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, FareboxError)
    return error_response(exc)


async def _request_validation(_request: Request, exc: Exception) -> Response:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    if any(error.get("type") == "json_invalid" for error in errors):
        return error_response(InvalidRequest("malformed JSON body", code="invalid_json"))
    details = validation_details(errors)
    message = "; ".join(f"{d['loc'] or 'body'}: {d['message']}" for d in details[:3])
    return error_response(ValidationFailed(message, details=details))


async def _http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error_type, code = _STATUS_TYPES.get(exc.status_code, ("api_error", "http_error"))
    body = {"error": {"type": error_type, "code": code, "message": str(exc.detail)}}
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    return JSONResponse(body, status_code=exc.status_code, headers=headers)


def _allowed_methods(request: Request) -> str:
    """Every method some route serves at the request's path.

    The router answers 405 from the first route whose path matched, so its `Allow` names only that route's
    methods; a path served by several routes (GET, PATCH and DELETE of one record) needs them all.
    """
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]
    return ", ".join(allowed)


async def unexpected_error(_request: Request, exc: Exception) -> Response:
    """The 500 of an exception nothing else handled: logged with its trace, answered without it."""
    log.error("unhandled error: %s", exc.__class__.__name__, exc_info=exc)
    body = {"error": {"type": "api_error", "code": "internal_error", "message": "internal error"}}
    return JSONResponse(body, status_code=500)


def install_error_handlers(app: FastAPI) -> None:
    """Route every exception through the one error shape."""
    app.add_exception_handler(FareboxError, _farebox_error)
    app.add_exception_handler(RequestValidationError, _request_validation)
    app.add_exception_handler(HTTPException, _http_error)
    app.add_exception_handler(Exception, unexpected_error)
