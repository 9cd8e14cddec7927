"""The OpenAPI document is true: schemathesis sends what `/openapi.json` describes and checks every answer.

Every check schemathesis has runs: no server error; status codes, content types, headers and bodies as
documented; requests the schema refuses are refused and those it allows are accepted; a deleted resource is
gone and a created one is there; a route that declares a credential refuses requests without one; a method a
path does not serve answers 405 with an `Allow` naming those it does. Each operation gets the examples,
coverage and fuzzing phases (`test_each_operation`), then scenarios follow the links between operations
(`test_scenarios`). Both run once with the master key and once with an owner's API token. The seed is fixed and
the examples bounded, so every run sends the same requests and takes a couple of minutes.

Left out, on purpose: the proxy routes (`/v1/...`, `/v1beta/...`) and the mock provider (`/mock/...`). They
speak OpenAI's, Anthropic's and Gemini's wire formats, which those providers' own API references describe, and
are not in farebox's document; the official SDKs test them (`test_gateway_*.py`).

Configured, each with its reason:
- The server allows private webhook URLs: the fuzzer's URLs name random hosts, which would not resolve. The
  document says such a URL is refused with 422; `test_notifications.py` and the guard's unit tests check it.
- `BEYOND_SCHEMA`: a few rules JSON Schema cannot state (a time in the future, one field within another, a
  record that must exist). The document's 422 description of each of those operations names them; a request
  valid by the schema may be refused for them, and for them only.
- `DELETE /api/admin/virtual-keys/{key_id}` revokes the key and keeps it, for its usage history, as the
  document says: reading it afterwards is not a use after free.
- `/api/admin/virtual-keys/compare` (POST, seed 004's path) is also a `{key_id}` of the key routes: a GET, PATCH
  or DELETE there looks up a key of that id (404), so its `Allow` names those methods too, where OpenAPI would
  give the concrete path precedence and expect POST alone.
"""

from __future__ import annotations

import re
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import schemathesis
from hypothesis import settings
from schemathesis import Case, CheckContext, Response
from schemathesis.specs.openapi.checks import negative_data_rejection

from farebox.app import create_app
from farebox.settings import Settings

MASTER = "fbx_master_openapi-e2e-0123456789"
SEED = 20_261_205
EXAMPLES = 12
"""Fuzzed requests per operation (the examples and coverage phases add their own)."""
SCENARIOS = 50
"""Stateful scenarios per credential, each of up to `STEPS` calls."""
STEPS = 6

BEYOND_SCHEMA: dict[str, re.Pattern[str]] = {
    # `expires_at` must lie in the future; `member_id` must be a member of `account_id`.
    "POST /api/admin/virtual-keys": re.compile(r"expires_at|member_id"),
    "POST /api/admin/accounts/{account_id}/members/{member_id}/tokens": re.compile(r"expires_at"),
    # Keys and accounts must exist (and agree); cached + cache-write tokens within input, reasoning within
    # output; counts, cost and timestamp within the `ingest_*` settings.
    # Metadata must fit the ledger's JSON: integers in 64 bits, nesting at most 250 deep.
    "POST /api/events": re.compile(
        r"key_id|account_id|timestamp|cost_usd|input_tokens|output_tokens|cached_input_tokens|cache_write_tokens"
        r"|reasoning_tokens|characters|metadata"
    ),
    # An action needs its destination (e-mail recipients and SMTP, a Slack URL, a PagerDuty routing key); overridden
    # keys must be the account's; a scope's threshold fractions differ; the runaway detector's quiet days fit in
    # its days.
    # Usage ranges: real dates (not 30 February), `to` not before `from`, at most 366 days (hours: 7); the
    # master key names the account of member analytics; a cursor is one the API gave.
    "GET /api/analytics/models": re.compile(r"from|to"),
    "GET /api/analytics/models/over-time": re.compile(r"from|to|grain"),
    "GET /api/analytics/keys/{key_id}": re.compile(r"from|to|grain"),
    "GET /api/analytics/members": re.compile(r"from|to|account_id"),
    "GET /api/analytics/members/{member_id}": re.compile(r"from|to|account_id"),
    "GET /api/analytics/requests": re.compile(r"from|to|cursor|date"),
    "GET /api/analytics/filters": re.compile(r"from|to"),
    # A password has 12 characters after Unicode NFKC normalisation, and is not the member's e-mail.
    "PUT /api/admin/accounts/{account_id}/members/{member_id}/password": re.compile(r"password"),
    # The master key names the account whose usage it reads (a key or a token reads its own).
    "GET /v1/usage": re.compile(r"account_id"),
    "GET /v1/usage/models": re.compile(r"account_id"),
    # The same for `GET /api/usage` (or `admin=1`); and `month` must be a month (01 to 12, years 0001 to 9998).
    "GET /api/usage": re.compile(r"accountId|month"),
    # An admin analytics period is at most 183 days, and a period of hours is cut into hours.
    "GET /api/admin/analytics/usage/trends": re.compile(r"period|granularity"),
    "GET /api/admin/providers/analytics": re.compile(r"period|breakdown"),
    "GET /api/admin/virtual-keys/{key_id}/analytics": re.compile(r"period"),
    "POST /api/admin/virtual-keys/compare": re.compile(r"period"),
    # The same period, and a period of hours of patterns is at most 168 hours.
    "GET /api/admin/analytics/patterns": re.compile(r"period"),
    # A forecast's horizon is 7 to 366 days.
    "GET /api/admin/analytics/budget-forecast": re.compile(r"horizon"),
    "GET /api/admin/analytics/cost-optimization": re.compile(r"period"),
    "GET /api/admin/analytics/performance": re.compile(r"period"),
    # An export takes a period or both dates (not both, not hours, at most 366 days), fields of its granularity,
    # and the master key names the account.
    "POST /api/admin/analytics/export": re.compile(r"period|startDate|endDate|includeFields|account_id"),
    # The export's range is a usage range (above), and the master key names the account.
    "GET /v1/usage/export": re.compile(r"from|to|account_id"),
    # A billing cycle is a month that exists (`2026-13` matches the pattern), and an account's tax rate is read from
    # a decimal the schema cannot bound to six places when sent as a JSON number.
    "POST /api/admin/analytics/billing-export": re.compile(r"billingCycle"),
    # The audit log's instants carry their offset, `until` comes after `since`, a cursor is one the API gave.
    "GET /api/admin/audit": re.compile(r"since|until|cursor"),
    # Each analytics webhook URL appears once; the master key names the account.
    "PUT /api/admin/analytics/webhooks": re.compile(r"endpoints|url|account_id"),
    "GET /api/admin/analytics/webhooks": re.compile(r"account_id"),
    # A report takes a period or both dates (as an export), metrics of its section's kind, and no schedule (the
    # scheduled reports' route takes those).
    "POST /api/admin/analytics/reports": re.compile(r"period|startDate|endDate|metrics|schedule|account_id"),
    # A recalculation's dates are days that exist, the end after the start within 366 days, keys of the account, a
    # reason not blank; the master key names the account.
    "POST /api/admin/analytics/recalculate-costs": re.compile(
        r"startDate|endDate|period|virtualKeys|reason|account_id"
    ),
    # A scheduled report: a zone this machine knows, a day of the week or month only on its schedule, a period of
    # whole days, e-mail addresses and a URL farebox accepts, somewhere to go, SMTP for e-mail, metrics of its
    # section's kind, each name once; the master key names the account.
    "PUT /api/admin/analytics/scheduled-reports": re.compile(r"reports(\[[0-9]+\].*)?|account_id"),
    "GET /api/admin/analytics/scheduled-reports": re.compile(r"account_id"),
    # A top-up is more than zero, whole nano-USD, and keeps what the account was given within 1e9 USD.
    # Exactly one of `amount_usd` and `credits` (the body's own rule: `loc` is the body, '').
    "POST /api/admin/accounts/{account_id}/credits": re.compile(r"amount|credits|"),
    # A sealed PagerDuty routing key must open for its account (one the API answered).
    "PUT /api/admin/accounts/{account_id}/alerts": re.compile(
        r"email_recipients|actions|slack_webhook_url|pagerduty_routing_key|key_overrides(\..*)?"
        r"|(keys|members|account)\.thresholds|anomalies",
        re.DOTALL,  # an overridden key's id may hold any character
    ),
    # The master key names the account of the budget alert settings; their actions need destinations (as the
    # alert rules' do), a percentage or threshold appears once, and `actions` names only thresholds given.
    "GET /api/admin/budgets/alerts": re.compile(r"query\.account_id"),
    "PUT /api/admin/budgets/alerts": re.compile(
        r"query\.account_id|email_recipients|actions|slack_webhook_url|pagerduty_routing_key"
        r"|globalBudgetAlerts\.thresholds|virtualKeyBudgetAlerts"
    ),
}


def _document() -> dict[str, Any]:
    """The document `GET /openapi.json` answers (`test_the_document_is_the_one_served` holds it to that)."""
    with pytest.MonkeyPatch.context() as patch, tempfile.TemporaryDirectory() as directory:
        for name in Settings.model_fields:
            patch.delenv(f"FAREBOX_{name.upper()}", raising=False)
        # The app is built, never started: its ledger file is created, and never opened.
        return create_app(Settings(database_url=f"sqlite:///{directory}/ledger.db"), master_key=MASTER).openapi()


def _config() -> schemathesis.Config:
    beyond = [
        {"include-name": name, "checks": {"positive_data_acceptance": {"enabled": False}}} for name in BEYOND_SCHEMA
    ]
    revoked_keys_stay = {
        "include-path-regex": r"^/api/admin/virtual-keys/\{key_id\}",
        "checks": {"use_after_free": {"enabled": False}},
    }
    compare_is_a_key_id_too = {
        "include-name": "POST /api/admin/virtual-keys/compare",
        "checks": {"allow_header_conformance": {"enabled": False}},
    }
    return schemathesis.Config.from_dict(
        {
            "seed": SEED,
            "generation": {"deterministic": True, "max-examples": EXAMPLES, "database": "none"},
            "checks": {"enabled": True},
            "phases": {"stateful": {"max-steps": STEPS}},
            "operations": [*beyond, revoked_keys_stay, compare_is_a_key_id_too],
        }
    )


DOCUMENT = _document()
schema = schemathesis.openapi.from_dict(DOCUMENT, config=_config())


@schemathesis.check
def refused_only_beyond_schema(ctx: CheckContext, response: Response, case: Case) -> bool | None:
    """On `BEYOND_SCHEMA` operations, a request valid by the schema is refused only for a rule listed there."""
    rule = BEYOND_SCHEMA.get(f"{case.method} {case.path}")
    if rule is None or case.meta is None or not case.meta.generation.mode.is_positive:
        return None
    if response.status_code not in (400, 422):
        return None
    details = response.json()["error"].get("details") or []
    outside = [detail for detail in details if not rule.fullmatch(detail["loc"])]
    assert details and not outside, f"valid by the schema, refused with {response.status_code}: {response.text}"
    return True


@dataclass(frozen=True)
class Caller:
    """Who calls: the headers to send, and for a member token the account it acts in (its requests name it)."""

    headers: dict[str, str]
    account_id: str | None = None

    def pin(self, case: Case) -> None:
        """Make a member's request name its own account, as its client would; other ids stay as generated."""
        if self.account_id is None:
            return
        if "account_id" in (case.path_parameters or {}):
            case.path_parameters["account_id"] = self.account_id


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory, port_factory: Any, server_thread: Any) -> Iterator[str]:
    directory = tmp_path_factory.mktemp("openapi")
    port = port_factory()
    with pytest.MonkeyPatch.context() as patch:
        patch.chdir(directory)
        patch.delenv("FAREBOX_CONFIG", raising=False)
        for name in Settings.model_fields:
            patch.delenv(f"FAREBOX_{name.upper()}", raising=False)
        settings_ = Settings(
            database_url=f"sqlite:///{directory / 'ledger.db'}", port=port, allow_private_webhook_urls=True
        )
        app = create_app(settings_, master_key=MASTER)
    with server_thread(app, port):
        yield f"http://127.0.0.1:{port}"


def _owner(url: str) -> Caller:
    """The owner of a new account, calling with its API token."""
    with httpx.Client(base_url=f"{url}/api/admin", headers={"authorization": f"Bearer {MASTER}"}) as admin:
        account = admin.post("/accounts", json={"name": "Fuzz"})
        assert account.status_code == 201, account.text
        account_id = account.json()["id"]
        owner = {"email": "owner@fuzz.test", "name": "Owner", "role": "owner"}
        member = admin.post(f"/accounts/{account_id}/members", json=owner)
        assert member.status_code == 201, member.text
        token = admin.post(f"/accounts/{account_id}/members/{member.json()['id']}/tokens", json={"name": "fuzz"})
        assert token.status_code == 201, token.text
        return Caller({"Authorization": f"Bearer {token.json()['token']}"}, account_id)


@pytest.fixture(scope="module", params=["master", "owner"])
def caller(request: pytest.FixtureRequest, served: str) -> Caller:
    return Caller({"Authorization": f"Bearer {MASTER}"}) if request.param == "master" else _owner(served)


def test_the_document_is_the_one_served(served: str) -> None:
    assert httpx.get(f"{served}/openapi.json").json() == DOCUMENT


@schema.parametrize()
def test_each_operation(case: Case, served: str, caller: Caller) -> None:
    caller.pin(case)
    case.call_and_validate(base_url=served, headers=caller.headers)


def test_scenarios(served: str, caller: Caller) -> None:
    class Scenarios(schema.as_state_machine()):  # type: ignore[misc]
        def setup(self) -> None:
            # Each of a member's scenarios starts in a new account: one may remove or demote its own member, and
            # Hypothesis replays a scenario's first steps expecting the answers they had (e-mails free, and so on).
            self.caller = caller if caller.account_id is None else _owner(served)

        def before_call(self, case: Case) -> None:
            self.caller.pin(case)

        def get_call_kwargs(self, case: Case) -> dict[str, Any]:
            return {"base_url": served, "headers": self.caller.headers}

        def validate_response(self, response: Response, case: Case, **kwargs: Any) -> None:
            # In a scenario a negative case may serialize to a valid request (an "array" query value of one item
            # is a plain string on the wire; the caller's own Authorization replaces the generated one), and the
            # server rightly accepts it. Negative data is held to rejection by `test_each_operation`, whose
            # cases are fixed; the scenarios check what sequences of calls do.
            case.validate_response(
                response,
                excluded_checks=[negative_data_rejection],
                transport_kwargs=kwargs or None,
                recorder=getattr(self, "recorder", None),  # the stateful checks look up earlier steps in it
            )

    Scenarios.run(settings=settings(Scenarios.TestCase.settings, max_examples=SCENARIOS, derandomize=True))
