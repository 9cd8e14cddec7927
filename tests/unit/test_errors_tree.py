"""errors: each class of the tree answers with its HTTP status, OpenAI error type and default code, and renders
the one error envelope."""

from __future__ import annotations

import pytest

import farebox.errors as errors_module
from farebox.errors import (
    AuthenticationFailed,
    BudgetExceeded,
    Conflict,
    FareboxError,
    InvalidRequest,
    LedgerUnavailable,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    ValidationFailed,
)

# The tree drawn in the module docstring, row by row.
_TREE: list[tuple[type[FareboxError], type[FareboxError] | None, int, str, str]] = [
    (FareboxError, None, 500, "api_error", "internal_error"),
    (InvalidRequest, FareboxError, 400, "invalid_request_error", "invalid_request"),
    (ValidationFailed, InvalidRequest, 422, "invalid_request_error", "validation_failed"),
    (AuthenticationFailed, FareboxError, 401, "authentication_error", "invalid_api_key"),
    (BudgetExceeded, FareboxError, 402, "insufficient_quota", "budget_exceeded"),
    (PermissionDenied, FareboxError, 403, "permission_error", "forbidden"),
    (NotFound, FareboxError, 404, "not_found_error", "not_found"),
    (Conflict, FareboxError, 409, "invalid_request_error", "conflict"),
    (PayloadTooLarge, FareboxError, 413, "invalid_request_error", "payload_too_large"),
    (LedgerUnavailable, FareboxError, 503, "api_error", "ledger_unavailable"),
]


def test_the_table_covers_every_exported_error() -> None:
    assert sorted(cls.__name__ for cls, *_ in _TREE) == sorted(errors_module.__all__)


@pytest.mark.parametrize(
    ("cls", "parent", "status", "openai_type", "code"), _TREE, ids=[cls.__name__ for cls, *_ in _TREE]
)
def test_each_error_knows_its_status_type_and_code(
    cls: type[FareboxError], parent: type[FareboxError] | None, status: int, openai_type: str, code: str
) -> None:
    if parent is not None:
        assert cls.__bases__ == (parent,)
    error = cls("it went wrong")
    assert (error.status, error.openai_type, error.code) == (status, openai_type, code)
    assert isinstance(error, FareboxError) and isinstance(error, Exception)
    assert error.message == str(error) == "it went wrong"
    assert error.details is None
    assert error.body() == {"error": {"type": openai_type, "code": code, "message": "it went wrong"}}


@pytest.mark.parametrize("cls", [cls for cls, *_ in _TREE], ids=[cls.__name__ for cls, *_ in _TREE])
def test_a_given_code_replaces_the_default_and_details_are_rendered(cls: type[FareboxError]) -> None:
    details = [{"loc": "name", "message": "must not be empty"}]
    error = cls("bad", code="custom_code", details=details)
    assert error.code == "custom_code"
    assert error.body() == {
        "error": {"type": cls.openai_type, "code": "custom_code", "message": "bad", "details": details}
    }


def test_an_empty_details_list_is_still_rendered() -> None:
    """Only None leaves `details` out: an empty list is an answer ("no items failed"), not a missing one."""
    assert ValidationFailed("x", details=[]).body()["error"]["details"] == []


def test_an_empty_code_falls_back_to_the_default() -> None:
    assert NotFound("gone", code="").code == "not_found"


def test_class_attributes_are_not_shared_by_instances() -> None:
    first = Conflict("a", code="dup_email")
    second = Conflict("b")
    assert (first.code, second.code) == ("dup_email", "conflict")
    assert Conflict.default_code == "conflict"


def test_validation_failed_is_caught_as_an_invalid_request() -> None:
    with pytest.raises(InvalidRequest) as caught:
        raise ValidationFailed("name: must not be empty")
    assert caught.value.status == 422
