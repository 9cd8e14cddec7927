"""Signing in to the dashboard over HTTP, as a browser does: the form, the session cookie, CSRF, sign-out, the
session's end by time, and failed attempts slowed down.

Each client keeps its cookies as a browser would (httpx's cookie jar); `GET /dashboard/session` is the page the
tests read the signed-in caller from.
"""

from __future__ import annotations

import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from admin_client import CHEAP_HASHES, MASTER, Api, assert_error, open_api

from farebox.app import create_app
from farebox.settings import Settings

pytestmark = pytest.mark.anyio

PASSWORD = "correct horse battery"
JSON = {"accept": "application/json"}
HTML = {"accept": "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"}
_TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')


async def _member(api: Api, email: str = "mo@acme.test", role: str = "admin") -> dict[str, Any]:
    account = await api.account()
    member = await api.member(account["id"], email, role)
    assert (
        await api.call("PUT", f"/accounts/{account['id']}/members/{member['id']}/password", {"password": PASSWORD})
    ).status_code == 204
    return member


async def _form_token(client: httpx.AsyncClient, query: str = "") -> str:
    page = await client.get("/dashboard/sign-in" + query, headers=HTML)
    assert page.status_code == 200, page.text
    (token,) = set(_TOKEN.findall(page.text))
    return token


async def _sign_in(client: httpx.AsyncClient, headers: dict[str, str] | None = None, **fields: str) -> httpx.Response:
    """Open the sign-in page, then send its form with `fields` (email and password, or master_key)."""
    token = await _form_token(client)
    return await client.post("/dashboard/sign-in", data={"csrf_token": token, **fields}, headers=headers)


def _cookie(response: httpx.Response, name: str = "farebox_session") -> str:
    """The Set-Cookie header of `name`."""
    (header,) = [h for h in response.headers.get_list("set-cookie") if h.startswith(f"{name}=")]
    return header


def _attributes(header: str) -> set[str]:
    return {part.strip().split("=")[0].lower() for part in header.split(";")[1:]}


async def _whoami(client: httpx.AsyncClient) -> httpx.Response:
    return await client.get("/dashboard/session", headers=JSON)


async def test_a_member_signs_in_with_e_mail_and_password_and_the_session_says_who_it_is(api: Api) -> None:
    member = await _member(api)
    page = await api.client.get("/dashboard/sign-in", headers=HTML)
    assert page.headers["content-type"].startswith("text/html")
    for field in ('for="email"', 'autocomplete="username"', 'for="password"', 'autocomplete="current-password"'):
        assert field in page.text
    assert 'for="master_key"' in page.text

    response = await _sign_in(api.client, email="MO@acme.test", password=PASSWORD)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == "/dashboard/usage"
    cookie = _cookie(response)
    assert {"httponly", "path", "samesite", "max-age"} <= _attributes(cookie)
    assert "secure" not in _attributes(cookie), "plain http: a Secure cookie would never come back"
    assert "SameSite=lax" in cookie and "Path=/;" in cookie and "Max-Age=43200" in cookie

    who = await _whoami(api.client)
    assert who.status_code == 200, who.text
    body = who.json()
    assert re.fullmatch(r"[0-9a-f]{64}", body.pop("csrf_token"))
    assert body == {"kind": "member", "account_id": member["account_id"], "member_id": member["id"], "role": "admin"}


async def test_the_operator_signs_in_with_the_master_key(api: Api) -> None:
    response = await _sign_in(api.client, master_key=MASTER)
    assert response.status_code == 303, response.text
    body = (await _whoami(api.client)).json()
    assert {k: body[k] for k in ("kind", "account_id", "member_id", "role")} == {
        "kind": "master",
        "account_id": None,
        "member_id": None,
        "role": None,
    }


async def test_a_wrong_password_and_an_unknown_e_mail_get_the_same_answer(api: Api) -> None:
    await _member(api)
    answers = []
    for email, password in (("mo@acme.test", "not the password"), ("nobody@acme.test", PASSWORD)):
        response = await _sign_in(api.client, email=email, password=password)
        assert response.status_code == 401
        assert not any(h.startswith("farebox_session=") for h in response.headers.get_list("set-cookie"))
        (message,) = re.findall(r'<p role="alert">(.*?)</p>', response.text)
        answers.append(message)
    assert answers[0] == answers[1] == "That e-mail address or password is not right."
    wrong_key = await _sign_in(api.client, master_key=MASTER + "x")
    assert wrong_key.status_code == 401
    assert_error(await _whoami(api.client), 401, "sign_in_required")


async def test_the_cookie_is_secure_over_https_and_behind_a_trusted_proxy_only(tmp_path: Path) -> None:
    async with open_api(tmp_path) as api, api.browser("https://farebox.test") as browser:
        await _member(api)
        response = await _sign_in(browser, email="mo@acme.test", password=PASSWORD)
        assert "secure" in _attributes(_cookie(response))
        assert (await _whoami(browser)).status_code == 200
        forwarded = await _sign_in(api.client, {"x-forwarded-proto": "https"}, email="mo@acme.test", password=PASSWORD)
        assert "secure" not in _attributes(_cookie(forwarded)), "X-Forwarded-Proto is not trusted by default"
    async with open_api(tmp_path / "proxied", trust_proxy_headers=True) as api:
        await _member(api)
        forwarded = await _sign_in(api.client, {"x-forwarded-proto": "https"}, email="mo@acme.test", password=PASSWORD)
        assert "secure" in _attributes(_cookie(forwarded))


async def test_every_sign_in_makes_a_new_session_and_ends_the_one_it_came_with(api: Api) -> None:
    await _member(api)
    api.client.cookies.set("farebox_session", "fbx_ds_planted-by-someone-else-0123456789", domain="farebox.test")
    first = _cookie(await _sign_in(api.client, email="mo@acme.test", password=PASSWORD))
    assert "planted" not in first
    old = api.client.cookies["farebox_session"]
    second = _cookie(await _sign_in(api.client, email="mo@acme.test", password=PASSWORD))
    assert first != second and old not in second
    async with api.browser() as stale:
        stale.cookies.set("farebox_session", old, domain="farebox.test")
        assert_error(await _whoami(stale), 401, "sign_in_required")
    assert (await _whoami(api.client)).status_code == 200


async def test_a_session_lasts_twelve_hours_at_most_and_two_idle(api: Api) -> None:
    await _member(api)
    await _sign_in(api.client, email="mo@acme.test", password=PASSWORD)
    async with api.browser() as idle:
        await _sign_in(idle, email="mo@acme.test", password=PASSWORD)
        for _ in range(6):  # 11 h 54 min of work, a page every 1 h 59 min
            api.clock.at += timedelta(hours=1, minutes=59)
            assert (await _whoami(api.client)).status_code == 200
        assert_error(await _whoami(idle), 401, "sign_in_required")
    api.clock.at += timedelta(minutes=6)
    page = await api.client.get("/dashboard/session?x=1", headers=HTML)
    assert page.status_code == 303
    assert page.headers["location"] == "/dashboard/sign-in?next=%2Fdashboard%2Fsession%3Fx%3D1"


async def test_without_a_session_a_browser_is_sent_to_sign_in_and_a_script_gets_401(api: Api) -> None:
    page = await api.client.get("/dashboard/session", headers=HTML)
    assert (page.status_code, page.headers["location"]) == (303, "/dashboard/sign-in?next=%2Fdashboard%2Fsession")
    assert_error(await api.client.get("/dashboard/session", headers=JSON), 401, "sign_in_required")
    assert_error(await api.client.get("/dashboard/session"), 401, "sign_in_required")


async def test_sign_in_goes_to_a_next_path_on_this_site_only(api: Api) -> None:
    await _member(api)
    token = await _form_token(api.client, "?next=/dashboard/keys%3Fid%3D1")
    response = await api.client.post(
        "/dashboard/sign-in",
        data={"csrf_token": token, "email": "mo@acme.test", "password": PASSWORD, "next": "/dashboard/keys?id=1"},
    )
    assert response.headers["location"] == "/dashboard/keys?id=1"
    for elsewhere in ("//evil.test/x", "https://evil.test/", "/\\evil.test", "javascript:alert(1)", "/a\nb"):
        token = await _form_token(api.client)
        data = {"csrf_token": token, "email": "mo@acme.test", "password": PASSWORD, "next": elsewhere}
        response = await api.client.post("/dashboard/sign-in", data=data)
        assert (response.status_code, response.headers["location"]) == (303, "/dashboard/usage"), elsewhere


async def test_the_sign_in_form_needs_the_token_of_its_own_page(api: Api) -> None:
    await _member(api)
    fields = {"email": "mo@acme.test", "password": PASSWORD}
    forged = await api.client.post("/dashboard/sign-in", data={"csrf_token": "0" * 64, **fields})
    assert forged.status_code == 403 and "expired" in forged.text
    token = await _form_token(api.client)
    async with api.browser() as other:  # another site's form: the page's token without the page's cookie
        assert (await other.post("/dashboard/sign-in", data={"csrf_token": token, **fields})).status_code == 403
    assert (await api.client.post("/dashboard/sign-in", data={"csrf_token": token, **fields})).status_code == 303
    not_a_form = await api.client.post("/dashboard/sign-in", json={"csrf_token": token, **fields})
    assert_error(not_a_form, 415)


async def test_sign_out_needs_the_csrf_token_and_ends_the_session(api: Api) -> None:
    await _member(api)
    await _sign_in(api.client, email="mo@acme.test", password=PASSWORD)
    token = (await _whoami(api.client)).json()["csrf_token"]
    old = api.client.cookies["farebox_session"]

    assert_error(await api.client.post("/dashboard/sign-out", headers=JSON), 403, "csrf_failed")
    wrong = await api.client.post("/dashboard/sign-out", data={"csrf_token": "f" * 64}, headers=JSON)
    assert_error(wrong, 403, "csrf_failed")
    assert (await _whoami(api.client)).status_code == 200

    out = await api.client.post("/dashboard/sign-out", data={"csrf_token": token})
    assert (out.status_code, out.headers["location"]) == (303, "/dashboard/sign-in")
    assert "Max-Age=0" in _cookie(out) or "expires=" in _cookie(out).lower()
    async with api.browser() as replay:
        replay.cookies.set("farebox_session", old, domain="farebox.test")
        assert_error(await _whoami(replay), 401, "sign_in_required")
        again = await replay.post("/dashboard/sign-out", data={"csrf_token": token}, headers=HTML)
        assert (again.status_code, again.headers["location"]) == (303, "/dashboard/sign-in")

    await _sign_in(api.client, master_key=MASTER)
    token = (await _whoami(api.client)).json()["csrf_token"]
    out = await api.client.post("/dashboard/sign-out", headers={"x-csrf-token": token})
    assert out.status_code == 303
    assert_error(await _whoami(api.client), 401, "sign_in_required")


async def test_failed_sign_ins_are_slowed_down_per_e_mail(api: Api) -> None:
    await _member(api)
    for _ in range(5):
        assert (await _sign_in(api.client, email="mo@acme.test", password="not the password")).status_code == 401
    locked = await _sign_in(api.client, email="mo@acme.test", password=PASSWORD)
    assert locked.status_code == 429
    assert int(locked.headers["retry-after"]) == 900
    assert "Try again in 15 minutes" in locked.text
    unknown = await _sign_in(api.client, email="nobody@acme.test", password="not the password")
    assert unknown.status_code == 401, "another e-mail address is not held back"

    api.clock.at += timedelta(minutes=10)
    assert int((await _sign_in(api.client, email="mo@acme.test", password=PASSWORD)).headers["retry-after"]) == 300
    api.clock.at += timedelta(minutes=5)
    assert (await _sign_in(api.client, email="mo@acme.test", password=PASSWORD)).status_code == 303


async def test_failed_sign_ins_are_slowed_down_per_client_address(tmp_path: Path) -> None:
    async with open_api(tmp_path, trust_proxy_headers=True, dashboard_sign_in_max_failures_per_address=3) as api:
        await _member(api)
        one, two = {"x-forwarded-for": "198.51.100.7"}, {"x-forwarded-for": "203.0.113.9, 198.51.100.8"}
        for n in range(3):
            response = await _sign_in(api.client, one, email=f"guess{n}@acme.test", password="not the password")
            assert response.status_code == 401
        assert (await _sign_in(api.client, one, email="mo@acme.test", password=PASSWORD)).status_code == 429
        assert (await _sign_in(api.client, one, master_key=MASTER)).status_code == 429
        assert (await _sign_in(api.client, two, email="mo@acme.test", password=PASSWORD)).status_code == 303


async def test_setting_or_removing_the_password_or_removing_the_member_signs_it_out(api: Api) -> None:
    member = await _member(api)
    path = f"/accounts/{member['account_id']}/members/{member['id']}"
    assert (await _sign_in(api.client, email="mo@acme.test", password=PASSWORD)).status_code == 303
    assert (await api.call("PUT", path + "/password", {"password": "a new passphrase"})).status_code == 204
    assert_error(await _whoami(api.client), 401, "sign_in_required")

    assert (await _sign_in(api.client, email="mo@acme.test", password="a new passphrase")).status_code == 303
    assert (await api.call("DELETE", path + "/password")).status_code == 204
    assert_error(await _whoami(api.client), 401, "sign_in_required")

    assert (await api.call("PUT", path + "/password", {"password": PASSWORD})).status_code == 204
    assert (await _sign_in(api.client, email="mo@acme.test", password=PASSWORD)).status_code == 303
    assert (await api.call("DELETE", path)).status_code == 204
    assert_error(await _whoami(api.client), 401, "sign_in_required")


async def test_the_session_follows_the_member_s_role(api: Api) -> None:
    member = await _member(api)
    await _sign_in(api.client, email="mo@acme.test", password=PASSWORD)
    await api.ok("PATCH", f"/accounts/{member['account_id']}/members/{member['id']}", {"role": "billing"})
    assert (await _whoami(api.client)).json()["role"] == "billing"


async def test_a_new_master_key_ends_the_operator_s_sessions(tmp_path: Path, api: Api) -> None:
    await _sign_in(api.client, master_key=MASTER)
    cookie = api.client.cookies["farebox_session"]
    config = Settings(database_url=f"sqlite:///{tmp_path / 'l.db'}")
    rotated = create_app(
        config, ledger=api.ledger, master_key=MASTER + "-rotated", clock=api.clock, password_hashes=CHEAP_HASHES
    )
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=rotated), base_url="http://farebox.test") as client:
        client.cookies.set("farebox_session", cookie, domain="farebox.test")
        assert_error(await _whoami(client), 401, "sign_in_required")
    assert_error(await _whoami(api.client), 401, "sign_in_required")


async def test_the_pages_call_the_api_with_the_session_and_its_csrf_token(api: Api) -> None:
    member = await _member(api, role="billing")
    await _sign_in(api.client, email="mo@acme.test", password=PASSWORD)
    token = (await _whoami(api.client)).json()["csrf_token"]
    account_id = member["account_id"]

    listed = await api.client.get("/api/admin/virtual-keys", params={"account_id": account_id}, headers=JSON)
    assert listed.status_code == 200, listed.text
    other = await api.account("Elsewhere")
    assert_error(await api.client.get(f"/api/admin/accounts/{other['id']}", headers=JSON), 404, "account_not_found")

    body = {"account_id": account_id, "name": "from-the-page"}
    assert_error(await api.client.post("/api/admin/virtual-keys", json=body), 403, "csrf_failed")
    wrong = {"x-csrf-token": "0" * 64}
    assert_error(await api.client.post("/api/admin/virtual-keys", json=body, headers=wrong), 403, "csrf_failed")
    refused = await api.client.post("/api/admin/virtual-keys", json=body, headers={"x-csrf-token": token})
    assert_error(refused, 403, "not_admin")  # through CSRF: then the billing role's own limits

    as_key = await api.client.get("/api/admin/accounts", headers={"authorization": "Bearer fbx_sk_wrong"})
    assert_error(as_key, 401, "invalid_api_key")  # a key header is the credential, whatever cookie comes with it
    await api.client.post("/dashboard/sign-out", data={"csrf_token": token})
    api.client.cookies.set("farebox_session", "ended", domain="farebox.test")
    assert_error(await api.client.get("/api/admin/accounts", headers=JSON), 401, "session_ended")


async def test_the_dashboard_s_sign_in_routes_are_not_in_the_api_document(api: Api) -> None:
    paths = (await api.client.get("/openapi.json")).json()["paths"]
    assert not [path for path in paths if path.startswith("/dashboard")]
