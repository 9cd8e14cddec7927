"""Query strings of the admin and ingestion routes: each parameter a route takes, once.

The OpenAPI document gives every query parameter one value. Starlette keeps all the values of a repeated one and
FastAPI reads the last, so `?account_id=a&account_id=b` would be answered for `b` as if `a` were never sent; it
is refused instead (422), as the document says. Parameters a route does not take are ignored, repeated or not.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator

from fastapi.dependencies.models import Dependant
from fastapi.routing import APIRoute
from starlette.requests import Request

from farebox.errors import ValidationFailed

__all__ = ["single_values"]


async def single_values(request: Request) -> None:
    """FastAPI dependency: refuse (422) a query string that gives a parameter of the route more than once."""
    route = request.scope.get("route")
    if not isinstance(route, APIRoute):
        return
    taken = set(_query_names(route.dependant))
    counts = Counter(name for name, _value in request.query_params.multi_items() if name in taken)
    repeated = sorted(name for name, count in counts.items() if count > 1)
    if repeated:
        details = [{"loc": name, "message": "given more than once; give one value"} for name in repeated]
        raise ValidationFailed(f"{repeated[0]}: given more than once; give one value", details=details)


def _query_names(dependant: Dependant) -> Iterator[str]:
    yield from (parameter.alias for parameter in dependant.query_params)
    for sub in dependant.dependencies:
        yield from _query_names(sub)
