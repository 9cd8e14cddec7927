"""api.exact_json: routes of the admin API read request JSON numbers with a fraction as exact `Decimal`s, so an
amount typed as `50.25` (or with more digits than a float holds) reaches the endpoint as written."""

from __future__ import annotations

from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import httpx
import pytest
from fastapi import APIRouter, FastAPI, Request
from pydantic import BaseModel

from farebox.api.exact_json import DecimalJSONRequest, DecimalJSONRoute

pytestmark = pytest.mark.anyio

MANY_DIGITS = "1.000000000000000000001"  # a float reads this as 1.0


class Cap(BaseModel):
    amount: Decimal
    count: int


def _describe(value: Any) -> Any:
    """Every leaf as `[type name, text]`, so the answer shows what the endpoint was handed."""
    if isinstance(value, dict):
        return {key: _describe(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_describe(item) for item in value]
    return [type(value).__name__, str(value)]


def _app() -> FastAPI:
    exact = APIRouter(prefix="/exact", route_class=DecimalJSONRoute)
    plain = APIRouter(prefix="/plain")

    @exact.post("/raw")
    async def exact_raw(request: Request) -> Any:
        first = await request.json()
        second = await request.json()
        return {
            "request": type(request).__name__,
            "same_object": first is second,
            "body": _describe(first),
        }

    @exact.post("/model")
    async def exact_model(cap: Cap) -> dict[str, str]:
        return {"amount": str(cap.amount), "count": str(cap.count)}

    @plain.post("/raw")
    async def plain_raw(request: Request) -> Any:
        return {"request": type(request).__name__, "body": _describe(await request.json())}

    app = FastAPI()
    app.include_router(exact)
    app.include_router(plain)
    return app


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=_app())
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as http:
        yield http


def _post(client: httpx.AsyncClient, path: str, text: str) -> Any:
    return client.post(path, content=text.encode(), headers={"content-type": "application/json"})


async def test_fractions_reach_the_endpoint_as_decimals_written_digit_for_digit(client: httpx.AsyncClient) -> None:
    answer = await _post(client, "/exact/raw", f'{{"cap": 50.25, "long": {MANY_DIGITS}, "exp": 1.5e-9, "n": 7}}')
    assert answer.status_code == 200
    assert answer.json() == {
        "request": "DecimalJSONRequest",
        "same_object": True,  # read once, then kept
        "body": {
            "cap": ["Decimal", "50.25"],
            "long": ["Decimal", MANY_DIGITS],
            "exp": ["Decimal", "1.5E-9"],
            "n": ["int", "7"],  # integers stay integers
        },
    }


async def test_nested_numbers_are_exact_too(client: httpx.AsyncClient) -> None:
    answer = await _post(client, "/exact/raw", '{"rules": [{"fraction": 0.80}, {"fraction": 0.95}], "ok": true}')
    assert answer.json()["body"] == {
        "rules": [{"fraction": ["Decimal", "0.80"]}, {"fraction": ["Decimal", "0.95"]}],
        "ok": ["bool", "True"],
    }


async def test_a_body_model_gets_the_exact_amount(client: httpx.AsyncClient) -> None:
    answer = await _post(client, "/exact/model", f'{{"amount": {MANY_DIGITS}, "count": 3}}')
    assert answer.status_code == 200
    assert answer.json() == {"amount": MANY_DIGITS, "count": "3"}


async def test_without_the_route_class_the_same_body_loses_digits(client: httpx.AsyncClient) -> None:
    """The control: a plain route reads floats, which is why the admin routes use `DecimalJSONRoute`."""
    answer = await _post(client, "/plain/raw", f'{{"long": {MANY_DIGITS}}}')
    assert answer.json() == {"request": "Request", "body": {"long": ["float", "1.0"]}}


async def test_malformed_json_is_still_a_422_not_a_crash(client: httpx.AsyncClient) -> None:
    answer = await _post(client, "/exact/model", '{"amount": 1.5,')
    assert answer.status_code == 422


def test_the_request_class_is_a_starlette_request() -> None:
    assert issubclass(DecimalJSONRequest, Request)
    assert issubclass(DecimalJSONRoute, APIRouter().route_class)
