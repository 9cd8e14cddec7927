"""`farebox webhooks ...`, `farebox alerts ...` and `farebox keys disable|enable`.

The same checks and JSON shapes as the admin API (`/api/admin/webhooks`, `/api/admin/accounts/{id}/alerts`).
Deliveries go out from a running gateway; these commands only change what it will send, and read its log.
The webhook commands need the gateway's server secret (`secret_key`), which seals the signing secrets.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Annotated, Literal

import typer
from pydantic import ValidationError

from farebox.alerts.config import AlertConfig
from farebox.alerts.store import AlertStore
from farebox.api.admin_schemas import KeyOut, present_all
from farebox.api.alert_schemas import FiredOut, check_rules
from farebox.api.webhook_schemas import (
    DeliveryOut,
    SecretOut,
    WebhookCreated,
    WebhookOut,
    checked_url,
    present_delivery,
    present_endpoint,
)
from farebox.cli.output import Json, command_group, show_one, show_table
from farebox.cli.runtime import console, fail, load_or_exit, print_json, webhook_secrets_box, with_ledger
from farebox.ledger.base import Ledger
from farebox.ledger.directory import Directory
from farebox.ledger.webhooks import EVENT_TYPES, WebhookEndpoints
from farebox.webhooks.signing import new_secret

__all__ = ["alerts_app", "disable_key", "enable_key", "webhooks_app"]

webhooks_app = command_group(help="Webhook endpoints and their delivery logs.")
alerts_app = command_group(help="Alert rules (thresholds, credits-low, anomalies) and the alerts fired.")


@webhooks_app.command("create")
def create_webhook(
    account_id: Annotated[str, typer.Argument(help="Account id.")],
    url: Annotated[str, typer.Argument(help="Where to POST, http(s).")],
    event: Annotated[list[str], typer.Option("--event", "-e", help=f"Event type (repeat): {', '.join(EVENT_TYPES)}.")],
    description: Annotated[str, typer.Option(help="A note for people.")] = "",
    batch_size: Annotated[int, typer.Option(min=1, max=1000, help="Most usage.recorded events a message.")] = 100,
    flush_seconds: Annotated[float, typer.Option(min=0.05, max=3600, help="Longest a batch waits.")] = 5.0,
    as_json: Json = False,
) -> None:
    """Register a webhook endpoint; prints its signing secret, once."""
    unknown = sorted(set(event) - set(EVENT_TYPES))
    if unknown:
        fail(f"unknown event type {unknown[0]!r}: use {', '.join(EVENT_TYPES)}", code="usage_error", exit_code=2)
    settings = load_or_exit()
    box = webhook_secrets_box(settings)

    async def run(ledger: Ledger) -> WebhookCreated:
        secret = new_secret()
        endpoint = await WebhookEndpoints(ledger, box).create(
            account_id,
            url=await checked_url(url, allow_private=settings.allow_private_webhook_urls),
            events=list(dict.fromkeys(event)),
            secret=secret,
            description=description,
            batch_size=batch_size,
            flush_interval_ms=round(flush_seconds * 1000),
        )
        return WebhookCreated(**present_endpoint(endpoint).model_dump(), secret=secret)

    created = with_ledger(run)
    show_one(created, as_json=as_json)
    if not as_json:
        console.print("[bold]Store the secret now:[/] it is not shown again.", highlight=False)


@webhooks_app.command("list")
def list_webhooks(account_id: Annotated[str, typer.Argument(help="Account id.")], as_json: Json = False) -> None:
    """The account's webhook endpoints."""
    endpoints = _endpoints()

    async def run(ledger: Ledger) -> list[WebhookOut]:
        return [present_endpoint(e) for e in await endpoints(ledger).list_endpoints(account_id=account_id)]

    columns = ("id", "url", "events", "enabled", "batch_size", "created_at")
    show_table(with_ledger(run), columns, as_json=as_json, title="Webhook endpoints")


@webhooks_app.command("delete")
def delete_webhook(endpoint_id: Annotated[str, typer.Argument(help="Endpoint id.")], as_json: Json = False) -> None:
    """Delete an endpoint (its pending deliveries fail rather than go out)."""
    make_endpoints = _endpoints()

    async def run(ledger: Ledger) -> WebhookOut:
        endpoints = make_endpoints(ledger)
        deleted = present_endpoint(await endpoints.get(endpoint_id))
        await endpoints.delete(endpoint_id)
        return deleted

    deleted = with_ledger(run)
    if as_json:
        print_json({"deleted": deleted.model_dump(mode="json")})
    else:
        console.print(f"deleted webhook endpoint {deleted.id} ({deleted.url})", highlight=False, soft_wrap=True)


@webhooks_app.command("rotate-secret")
def rotate_secret(endpoint_id: Annotated[str, typer.Argument(help="Endpoint id.")], as_json: Json = False) -> None:
    """Give an endpoint a new signing secret; prints it, once. The old one stops signing at once."""
    endpoints = _endpoints()

    async def run(ledger: Ledger) -> SecretOut:
        secret = new_secret()
        await endpoints(ledger).update(endpoint_id, secret=secret)
        return SecretOut(secret=secret)

    rotated = with_ledger(run)
    show_one(rotated, as_json=as_json)
    if not as_json:
        console.print("[bold]Store the secret now:[/] it is not shown again.", highlight=False)


@webhooks_app.command("deliveries")
def deliveries(
    endpoint_id: Annotated[str, typer.Argument(help="Endpoint id.")],
    status: Annotated[Literal["pending", "delivered", "failed"] | None, typer.Option(help="Only these.")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: Json = False,
) -> None:
    """The endpoint's delivery log, newest first."""
    endpoints = _endpoints()

    async def run(ledger: Ledger) -> list[DeliveryOut]:
        found = await endpoints(ledger).deliveries(endpoint_id, limit=limit, status=status)
        return [present_delivery(delivery) for delivery in found]

    columns = ("id", "event_type", "status", "attempts", "last_status_code", "last_error", "created_at")
    show_table(with_ledger(run), columns, as_json=as_json, title="Deliveries")


@webhooks_app.command("retry")
def retry_delivery(
    endpoint_id: Annotated[str, typer.Argument(help="Endpoint id.")],
    message_id: Annotated[str, typer.Argument(help="The failed message's id (its webhook-id).")],
    as_json: Json = False,
) -> None:
    """Send a failed delivery once more (a running gateway sends it within a second)."""
    endpoints = _endpoints()
    with_ledger(lambda ledger: endpoints(ledger).retry(endpoint_id, message_id))
    if as_json:
        print_json({"endpoint_id": endpoint_id, "message_id": message_id, "status": "pending"})
    else:
        console.print(f"delivery {message_id} is due again", highlight=False)


def _endpoints() -> Callable[[Ledger], WebhookEndpoints]:
    """The webhook endpoints of a ledger, under the configured server secret (checked before the ledger opens)."""
    box = webhook_secrets_box(load_or_exit())
    return lambda ledger: WebhookEndpoints(ledger, box)


@alerts_app.command("show")
def show_rules(
    account_id: Annotated[str, typer.Argument(help="Account id.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="The rules are JSON anyway (the file `alerts set` reads); errors too.")
    ] = False,
) -> None:
    """The account's alert rules, as JSON (the defaults until some are set)."""
    # The rules print as JSON either way, so `as_json` changes nothing here; the command group reads `--json`
    # from the command line to print a failure as JSON. It is accepted so that every result takes `--json`.

    async def run(ledger: Ledger) -> AlertConfig:
        await Directory(ledger).get_account(account_id)
        return await AlertStore(ledger).get(account_id)

    print_json(with_ledger(run).model_dump(mode="json"))


@alerts_app.command("set")
def set_rules(
    account_id: Annotated[str, typer.Argument(help="Account id.")],
    file: Annotated[Path, typer.Argument(exists=True, dir_okay=False, help="JSON file of rules (as `alerts show`).")],
    as_json: Json = False,
) -> None:
    """Replace the account's alert rules with those in a JSON file."""
    settings = load_or_exit()
    try:
        raw = json.loads(file.read_text(), parse_float=Decimal)
    except ValueError as exc:
        fail(f"{file}: not valid JSON: {exc}", code="invalid_json")
    try:
        config = AlertConfig.model_validate(raw)
    except ValidationError as exc:
        fail(_first_error(file, exc), code="validation_failed")

    box = webhook_secrets_box(settings) if config.pagerduty_routing_key else None

    async def run(ledger: Ledger) -> AlertConfig:
        directory = Directory(ledger)
        await directory.get_account(account_id)
        await check_rules(
            config,
            account_id=account_id,
            directory=directory,
            smtp_configured=settings.smtp_host is not None,
            allow_private=settings.allow_private_webhook_urls,
        )
        return await AlertStore(ledger, box).put(account_id, config, at=directory.now())

    saved = with_ledger(run)
    if as_json:
        print_json(saved.model_dump(mode="json"))
    else:
        console.print(f"alert rules of account {account_id} replaced", highlight=False)


def _first_error(file: Path, exc: ValidationError) -> str:
    error = exc.errors()[0]
    where = ".".join(str(part) for part in error["loc"])
    return f"{file}: {where}: {error['msg']}"


@alerts_app.command("history")
def history(
    account_id: Annotated[str, typer.Argument(help="Account id.")],
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: Json = False,
) -> None:
    """The alerts the account fired, newest first."""

    async def run(ledger: Ledger) -> list[FiredOut]:
        await Directory(ledger).get_account(account_id)
        return [FiredOut(**row) for row in await AlertStore(ledger).history(account_id, limit=limit)]

    show_table(with_ledger(run), ("fired_at", "rule", "scope", "scope_id", "text"), as_json=as_json, title="Alerts")


def disable_key(
    key_id: Annotated[str, typer.Argument(help="Virtual key id.")],
    reason: Annotated[str, typer.Option(help="Shown to the key's callers.")] = "disabled by an admin",
    as_json: Json = False,
) -> None:
    """Stop a key until `keys enable` (a running gateway sees it within a second)."""

    async def run(ledger: Ledger) -> KeyOut:
        directory = Directory(ledger)
        return (await present_all(KeyOut, directory, [await directory.disable_key(key_id, reason=reason)]))[0]

    show_one(with_ledger(run), as_json=as_json)


def enable_key(key_id: Annotated[str, typer.Argument(help="Virtual key id.")], as_json: Json = False) -> None:
    """Let a disabled key work again."""

    async def run(ledger: Ledger) -> KeyOut:
        directory = Directory(ledger)
        return (await present_all(KeyOut, directory, [await directory.enable_key(key_id)]))[0]

    show_one(with_ledger(run), as_json=as_json)
