"""The farebox error tree. Each class knows its HTTP status and its OpenAI error type.

    FareboxError                      500 api_error
    ├── InvalidRequest                400 invalid_request_error
    │   └── ValidationFailed          422 invalid_request_error   (carries per-item details)
    ├── AuthenticationFailed          401 authentication_error
    ├── BudgetExceeded                402 insufficient_quota      (`core.spend.CapRefused` names the cap;
    │                                                             `core.credits.CreditsExhausted`, code
    │                                                             `credits_exhausted`, an empty balance)
    ├── PermissionDenied              403 permission_error
    ├── NotFound                      404 not_found_error
    ├── Conflict                      409 invalid_request_error
    ├── PayloadTooLarge               413 invalid_request_error
    └── LedgerUnavailable             503 api_error

One handler (`farebox.api.errors`) renders every one of them as
`{"error": {"type", "code", "message", "details"?}}` and never a stack trace.

Outside the tree, on purpose: `farebox.ledger.errors.DatabaseUnusable` (the database could not be used).
Its reason may name the server, so the API answers it with the generic 500; the CLI prints it on one line.
Also `farebox.core.sealing.UnreadableSecret` (a stored secret that does not open): never a client's doing,
it stops start-up or fails a delivery attempt, with its reason in the delivery log.
"""

from __future__ import annotations

from typing import Any, ClassVar

__all__ = [
    "AuthenticationFailed",
    "BudgetExceeded",
    "Conflict",
    "FareboxError",
    "InvalidRequest",
    "LedgerUnavailable",
    "NotFound",
    "PayloadTooLarge",
    "PermissionDenied",
    "ValidationFailed",
]


class FareboxError(Exception):
    """Base of every error farebox answers to a client."""

    status: ClassVar[int] = 500
    openai_type: ClassVar[str] = "api_error"
    default_code: ClassVar[str] = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, details: list[dict[str, Any]] | None = None):
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details

    def body(self) -> dict[str, Any]:
        """The error envelope, OpenAI style."""
        error: dict[str, Any] = {"type": self.openai_type, "code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return {"error": error}


class InvalidRequest(FareboxError):
    status = 400
    openai_type = "invalid_request_error"
    default_code = "invalid_request"


class ValidationFailed(InvalidRequest):
    status = 422
    default_code = "validation_failed"


class AuthenticationFailed(FareboxError):
    status = 401
    openai_type = "authentication_error"
    default_code = "invalid_api_key"


class BudgetExceeded(FareboxError):
    """A request whose worst-case cost does not fit under a spend cap or a prepaid balance: nothing was forwarded."""

    status = 402
    openai_type = "insufficient_quota"
    default_code = "budget_exceeded"


class PermissionDenied(FareboxError):
    status = 403
    openai_type = "permission_error"
    default_code = "forbidden"


class NotFound(FareboxError):
    status = 404
    openai_type = "not_found_error"
    default_code = "not_found"

    @classmethod
    def of(cls, what: str, row_id: str) -> NotFound:
        """No `what` with this id, or none the caller may see: `no virtual key with id 'k'`, `virtual_key_not_found`."""
        return cls(f"no {what} with id {row_id!r}", code=f"{what.replace(' ', '_')}_not_found")


class Conflict(FareboxError):
    status = 409
    openai_type = "invalid_request_error"
    default_code = "conflict"


class PayloadTooLarge(FareboxError):
    status = 413
    openai_type = "invalid_request_error"
    default_code = "payload_too_large"


class LedgerUnavailable(FareboxError):
    status = 503
    openai_type = "api_error"
    default_code = "ledger_unavailable"
