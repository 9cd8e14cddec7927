"""Prepaid credits over the admin API: top-ups in USD or credits, exact both ways, recorded with who made them;
the balance as billing reads it; every bad body a 422 naming its field (an unknown account's 404 is in
test_admin_api's table of unknown ids)."""

from __future__ import annotations

import pytest
from admin_client import Api, assert_error

pytestmark = pytest.mark.anyio

CREDITS_FIELDS = {
    "account_id",
    "prepaid",
    "credits_per_usd",
    "balance",
    "balance_credits",
    "reserved",
    "reserved_credits",
    "topped_up",
    "topped_up_credits",
    "used",
    "used_credits",
    "top_ups",
}
TOP_UP_FIELDS = {"id", "account_id", "amount", "credits", "note", "added_by", "added_by_member_id", "created_at"}


async def test_an_account_is_topped_up_by_its_admin_and_read_by_billing(api: Api) -> None:
    account = (await api.account())["id"]
    admin = await api.member(account, "lea@acme.test", "admin")
    billing = await api.token(account, (await api.member(account, "bo@acme.test", "billing"))["id"])
    path = f"/accounts/{account}/credits"

    before = await api.ok("GET", path, token=billing)
    assert set(before) == CREDITS_FIELDS
    assert (before["prepaid"], before["balance"], before["balance_credits"], before["top_ups"]) == (
        False,
        None,
        None,
        [],
    )

    by_admin = await api.ok(
        "POST", path, {"credits": 12.5, "note": " grant "}, token=await api.token(account, admin["id"]), status=201
    )
    assert set(by_admin) == TOP_UP_FIELDS | {"balance", "balance_credits"}
    assert (by_admin["amount"], by_admin["credits"], by_admin["note"]) == ("0.000625", "12.5", "grant")
    assert (by_admin["added_by"], by_admin["added_by_member_id"]) == ("member", admin["id"])
    by_master = await api.ok("POST", path, {"amount_usd": "10.00"}, status=201)
    assert (by_master["added_by"], by_master["balance"], by_master["balance_credits"]) == (
        "master",
        "10.000625",
        "200012.5",
    )

    after = await api.ok("GET", path, token=billing)
    assert (after["prepaid"], after["credits_per_usd"], after["topped_up"], after["used"]) == (
        True,
        20000,
        "10.000625",
        "0.00",
    )
    assert [row["id"] for row in after["top_ups"]] == [by_master["id"], by_admin["id"]]
    assert_error(await api.call("POST", path, {"amount_usd": "1"}, token=billing), 403, "not_admin")


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({}, ""),
        ({"amount_usd": "1.00", "credits": "20000"}, ""),
        ({"amount_usd": "-1.00"}, "amount_usd"),
        ({"amount_usd": "0.0000000001"}, "amount_usd"),
        ({"amount_usd": "0"}, "amount"),
        ({"credits": "0.00001"}, "credits"),
        ({"credits": "lots"}, "credits"),
        ({"credits": True}, "credits"),
        ({"amount_usd": "1", "note": "x" * 501}, "note"),
        ({"amount_usd": "1", "currency": "EUR"}, "currency"),
    ],
)
async def test_a_bad_top_up_is_a_422_naming_its_field(api: Api, body: dict[str, object], loc: str) -> None:
    account = (await api.account())["id"]
    error = assert_error(await api.call("POST", f"/accounts/{account}/credits", body), 422, "validation_failed")
    assert error["details"][0]["loc"] == loc
    assert (await api.ok("GET", f"/accounts/{account}/credits"))["top_ups"] == []


async def test_json_numbers_are_read_exactly(api: Api) -> None:
    account = (await api.account())["id"]
    path = f"/accounts/{account}/credits"
    raw = b'{"amount_usd": 0.1, "note": null}'
    response = await api.call("POST", path, raw=raw)
    assert response.status_code == 201, response.text
    assert (response.json()["amount"], response.json()["credits"]) == ("0.10", "2000")
    added = await api.ok("POST", path, {"credits": 0.3}, status=201)
    assert added["balance"] == "0.100015" and added["balance_credits"] == "2000.3"
