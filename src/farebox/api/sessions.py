"""The dashboard's sign-in: sessions in an HTTP-only cookie, CSRF tokens, sign-out, and slowed failed attempts.

A member signs in with its e-mail address and password, the operator with the master key; either gets a new
session (`ledger.sessions`) named by a random secret in the `farebox_session` cookie (HttpOnly, SameSite=Lax,
Path=/, Secure over https). The pages depend on `SessionCaller`: the caller as a `Principal`, or a redirect to
the sign-in page (a browser's page request), or 401 (anything else). The pages' scripts call the JSON API with the
same cookie (`farebox.services.authenticate`): the signed-in member's role or the operator's, and an unsafe call
only with the `X-CSRF-Token` header.

CSRF: every unsafe request in a session (POST, PUT, PATCH, DELETE) carries the session's token, in the form field
`csrf_token` or the `X-CSRF-Token` header. The token is not stored: it is an HMAC of the session's secret under
a key derived from the server secret, so it is as secret as the cookie and needs no column. The sign-in form,
sent before there is a session, is guarded the same way by a pre-session: a random value in the
`farebox_sign_in` cookie (Path=/dashboard/sign-in) whose HMAC the form carries. A page of another site can
neither read the token nor, under SameSite=Lax, send either cookie with its POST; and unlike a check of the
`Origin` header, this holds behind proxies that drop or rewrite it.

Failed sign-ins are counted per e-mail address (the master key counts as one address) and per client address
(`ledger.sign_in_failures`); past the `dashboard_sign_in_*` limits the answer is 429 with `Retry-After`, whatever
the credentials. The counts live in the ledger, so every process of a ledger counts the same failures.
"""

from __future__ import annotations

import re
import secrets
from math import ceil
from typing import Annotated, Any
from urllib.parse import parse_qsl, urlencode

from fastapi import APIRouter, Depends, Query, Request
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from farebox.api.client_address import client_address
from farebox.api.errors import error_response
from farebox.api.sign_in_page import sign_in_page
from farebox.core.credentials import Principal
from farebox.errors import AuthenticationFailed, InvalidRequest, PayloadTooLarge, PermissionDenied
from farebox.services import (
    CSRF_HEADER,
    SESSION_COOKIE,
    UNSAFE_METHODS,
    DashboardAuth,
    Services,
    same,
    services,
)

__all__ = [
    "COOKIE",
    "CSRF_FIELD",
    "CSRF_HEADER",
    "SIGN_IN_PATH",
    "SessionCaller",
    "SignInRequired",
    "csrf_token",
    "router",
    "session_principal",
    "sign_in_required",
]

COOKIE = SESSION_COOKIE
SIGN_IN_COOKIE = "farebox_sign_in"
SIGN_IN_PATH = "/dashboard/sign-in"
DEFAULT_NEXT = "/dashboard/usage"
CSRF_FIELD = "csrf_token"
MAX_FORM_BYTES = 16 * 1024
"""A sign-in form (or a page's form checked for its CSRF token) is small; a larger body is 413."""

_MASTER_NAME = "master key"
"""The name failed master-key sign-ins are counted under, beside the e-mail addresses."""
_MAX_NEXT = 2048
_NONCE = re.compile(r"[A-Za-z0-9_-]{43}")
"""A pre-session's value: 256 random bits, url-safe base64 (`secrets.token_urlsafe(32)`)."""
_PAGE_HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
    "frame-ancestors 'none'",
    "Referrer-Policy": "same-origin",
    "X-Frame-Options": "DENY",
}

router = APIRouter(include_in_schema=False, tags=["dashboard"])


class SignInRequired(AuthenticationFailed):
    """No live session: a browser's page request is sent to the sign-in page, anything else gets 401."""

    default_code = "sign_in_required"


def _auth(request: Request) -> DashboardAuth:
    return services(request).dashboard


async def session_principal(request: Request) -> Principal:
    """FastAPI dependency: the caller of a dashboard page, by its session cookie.

    For an unsafe method it also checks the session's CSRF token (form field `csrf_token` or header
    `X-CSRF-Token`). The token is then available to templates through `csrf_token(request)`.

    Raises:
        SignInRequired: no cookie, or its session is unknown, signed out, expired or idle too long (or, for the
            operator's, the master key has changed since): a redirect to the sign-in page or 401.
        PermissionDenied: an unsafe request without the session's CSRF token (403 `csrf_failed`).
    """
    found = services(request)
    auth = found.dashboard
    secret = request.cookies.get(COOKIE, "")
    caller = await auth.caller(secret, master_key=found.master_key)
    if caller is None:
        raise SignInRequired("sign in to the dashboard first")
    token = auth.csrf(secret)
    if request.method in UNSAFE_METHODS:
        given = request.headers.get(CSRF_HEADER)
        if given is None and _is_form(request):
            given = (await _form(request)).get(CSRF_FIELD)
        if given is None or not same(given, token):
            message = f"missing or wrong CSRF token: send the session's token as the form field {CSRF_FIELD!r} or "
            raise PermissionDenied(message + "the X-CSRF-Token header", code="csrf_failed")
    request.state.csrf_token = token
    return caller


SessionCaller = Annotated[Principal, Depends(session_principal)]
"""The signed-in caller of a dashboard page (`session_principal`)."""


def csrf_token(request: Request) -> str:
    """The current session's CSRF token, for a page's forms and scripts (after `session_principal` ran).

    Raises:
        SignInRequired: the request has no session.
    """
    token: str | None = getattr(request.state, "csrf_token", None)
    if token is None:
        raise SignInRequired("sign in to the dashboard first")
    return token


async def sign_in_required(request: Request, exc: Exception) -> Response:
    """The answer to `SignInRequired`: a browser (it accepts HTML) goes to the sign-in page, with the page it
    asked for as `next` when that was a GET; any other client gets 401 in the error shape."""
    assert isinstance(exc, SignInRequired)
    if "text/html" not in request.headers.get("accept", ""):
        return error_response(exc)
    target = SIGN_IN_PATH
    if request.method in ("GET", "HEAD"):
        asked = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        target += "?" + urlencode({"next": asked})
    response = RedirectResponse(target, status_code=303)
    if COOKIE in request.cookies:
        _clear(response, COOKIE, path="/", secure=_https(request))
    return response


def _master_check(found: Services) -> str:
    return found.dashboard.mac("master", found.master_key)


# The routes


@router.get(SIGN_IN_PATH, summary="The sign-in page")
async def sign_in_form(request: Request, next_path: Annotated[str, Query(alias="next")] = DEFAULT_NEXT) -> Response:
    """The sign-in forms; `next` is where a successful sign-in goes (a path on this site)."""
    return _page(request, next_path=_safe_next(next_path))


@router.post(SIGN_IN_PATH, summary="Sign in")
async def sign_in(request: Request) -> Response:
    """Sign in with an e-mail address and password, or the master key (a form); 303 to `next` with a new session."""
    found = services(request)
    auth = found.dashboard
    form = await _form(request)
    next_path = _safe_next(form.get("next", DEFAULT_NEXT))
    email = form.get("email", "").strip()
    nonce = request.cookies.get(SIGN_IN_COOKIE, "")
    if not nonce or not same(form.get(CSRF_FIELD, ""), auth.mac("sign-in", nonce)):
        message = "This sign-in form has expired. Please sign in again."
        return _page(request, next_path=next_path, email=email, status=403, message=message)
    master_key = form.get("master_key", "")
    name = _MASTER_NAME if master_key else f"email:{email.lower()}"
    address = _client_address(request, auth)
    now = auth.clock()
    waits = [
        wait for wait in (await auth.by_email.wait(name, now=now), await auth.by_address.wait(address, now=now)) if wait
    ]
    if waits:
        seconds = ceil(max(waits).total_seconds())
        minutes = ceil(seconds / 60)
        message = f"Too many failed sign-ins. Try again in {minutes} minute{'s' if minutes > 1 else ''}."
        headers = {"Retry-After": str(seconds)}
        return _page(request, next_path=next_path, email=email, status=429, message=message, headers=headers)
    member_id: str | None = None
    if master_key:
        signed_in = same(master_key, found.master_key)
    else:
        password = form.get("password", "")
        if not email or not password:
            message = "Enter your e-mail address and password."
            return _page(request, next_path=next_path, email=email, status=400, message=message)
        member = await found.passwords.verify(email, password)
        signed_in, member_id = member is not None, None if member is None else member.id
    if not signed_in:
        await auth.by_email.failed(name, now=now)
        await auth.by_address.failed(address, now=now)
        message = "That master key is not right." if master_key else "That e-mail address or password is not right."
        return _page(request, next_path=next_path, email=email, status=401, message=message)
    await auth.by_email.forget(name)
    return await _signed_in(request, found, member_id=member_id, next_path=next_path)


@router.post("/dashboard/sign-out", summary="Sign out")
async def sign_out(request: Request, _caller: SessionCaller) -> Response:
    """End the session (a form with its CSRF token); 303 to the sign-in page."""
    await _auth(request).sessions.end(request.cookies[COOKIE])
    response = RedirectResponse(SIGN_IN_PATH, status_code=303)
    _clear(response, COOKIE, path="/", secure=_https(request))
    return response


@router.get("/dashboard/session", summary="The signed-in caller")
async def current_session(request: Request, caller: SessionCaller) -> Response:
    """Who is signed in, and the session's CSRF token for the page's scripts (JSON)."""
    body: dict[str, Any] = {
        "kind": caller.kind.value,
        "account_id": caller.account_id,
        "member_id": caller.member_id,
        "role": None if caller.role is None else caller.role.value,
        "csrf_token": csrf_token(request),
    }
    return JSONResponse(body, headers={"Cache-Control": "no-store"})


async def _signed_in(request: Request, found: Services, *, member_id: str | None, next_path: str) -> Response:
    """303 to `next_path` with a new session: the one the request came with (if any) ends, so a session id planted
    before the sign-in is never the one signed in (no fixation)."""
    auth = found.dashboard
    old = request.cookies.get(COOKIE)
    if old:
        await auth.sessions.end(old)
    master_check = _master_check(found) if member_id is None else None
    secret = await auth.sessions.begin(member_id=member_id, master_check=master_check)
    secure = _https(request)
    response = RedirectResponse(next_path, status_code=303, headers={"Cache-Control": "no-store"})
    max_age = int(auth.lifetime.total_seconds())
    response.set_cookie(COOKIE, secret, max_age=max_age, path="/", secure=secure, httponly=True, samesite="lax")
    _clear(response, SIGN_IN_COOKIE, path=SIGN_IN_PATH, secure=secure)
    return response


def _page(
    request: Request,
    *,
    next_path: str,
    email: str = "",
    status: int = 200,
    message: str | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """The sign-in page, with the pre-session's token in its forms (the cookie's value kept, or a new one)."""
    nonce = request.cookies.get(SIGN_IN_COOKIE, "")
    if _NONCE.fullmatch(nonce) is None:
        nonce = secrets.token_urlsafe(32)
    csrf = _auth(request).mac("sign-in", nonce)
    html = sign_in_page(csrf=csrf, next_path=next_path, email=email, message=message)
    response = HTMLResponse(html, status_code=status, headers=_PAGE_HEADERS | (headers or {}))
    response.set_cookie(SIGN_IN_COOKIE, nonce, path=SIGN_IN_PATH, secure=_https(request), httponly=True, samesite="lax")
    return response


def _clear(response: Response, name: str, *, path: str, secure: bool) -> None:
    response.delete_cookie(name, path=path, secure=secure, httponly=True, samesite="lax")


def _safe_next(value: str) -> str:
    """`value` if it is a path on this site (not `//host`, no backslash or control character), else the default."""
    local = value.startswith("/") and not value.startswith("//") and "\\" not in value
    if local and len(value) <= _MAX_NEXT and value.isprintable() and " " not in value:
        return value
    return DEFAULT_NEXT


def _https(request: Request) -> bool:
    """Whether the browser reached us over https: the scheme, or a trusted proxy's `X-Forwarded-Proto`."""
    forwarded = request.headers.get("x-forwarded-proto")
    if forwarded and _auth(request).trust_proxy_headers:
        return forwarded.split(",")[0].strip().lower() == "https"
    return request.url.scheme == "https"


def _client_address(request: Request, auth: DashboardAuth) -> str:
    client = None if request.client is None else (request.client.host, request.client.port)
    return client_address(request.headers, client, trust_proxy=auth.trust_proxy_headers)


def _is_form(request: Request) -> bool:
    return request.headers.get("content-type", "").split(";")[0].strip().lower() == "application/x-www-form-urlencoded"


async def _form(request: Request) -> dict[str, str]:
    """The fields of a url-encoded form body (the last value of a repeated one).

    Raises:
        HTTPException: not a url-encoded form (415).
        PayloadTooLarge: more than `MAX_FORM_BYTES`.
        InvalidRequest: not url-encoded UTF-8.
    """
    if not _is_form(request):
        raise HTTPException(415, "send the form as application/x-www-form-urlencoded")
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise PayloadTooLarge(f"a form may have at most {MAX_FORM_BYTES} bytes")
    try:
        return dict(parse_qsl(body.decode("ascii"), keep_blank_values=True, errors="strict", max_num_fields=32))
    except ValueError:  # UnicodeDecodeError included
        raise InvalidRequest("malformed form body: url-encoded UTF-8 expected", code="invalid_form") from None
