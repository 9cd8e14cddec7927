"""The sender: drains the outbox. Signed webhook POSTs, Slack messages, e-mail and PagerDuty events, retried with
backoff.

Each round it claims the deliveries that are due (leased, so another sender, or this one after a restart,
does not take them while they are in flight), tries them concurrently, and records every attempt. A 2xx
answer delivers a webhook; anything else, a timeout or a refused address is retried after the next delay of
the backoff schedule, until the last attempt fails the delivery for good. Every attempt of a message carries
the same `webhook-id`, so a receiver that saw an attempt whose answer was lost can drop the repeat. A webhook
whose endpoint's signing secret does not open (a server secret other than the one it was sealed under) is
not sent unsigned or wrongly signed: the attempt fails with that reason, and is retried like any other; so is a
PagerDuty event whose account's routing key does not open. A PagerDuty event goes to the one enqueue URL of the
server's settings (`pagerduty_url`), with its routing key added as it is sent (`core.pagerduty`). A message whose
`data` holds an `attachment` (`filename`, `contentType`, base64 `content`) is e-mailed with that file attached, and
without it in the text.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import socket
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from email.message import EmailMessage
from typing import Any, Literal

import aiohttp
import aiosmtplib
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import ThreadedResolver

from farebox.core.clock import utcnow
from farebox.core.events import epoch_us
from farebox.core.pagerduty import EVENTS_URL, with_routing_key
from farebox.core.sealing import SecretBox
from farebox.ledger.base import Ledger
from farebox.ledger.outbox import Attempt, Claimed, Outbox
from farebox.webhooks.guard import UnsafeDestination, check_url, is_public
from farebox.webhooks.signing import signed_headers

__all__ = ["PublicOnlyResolver", "Sender", "SmtpConfig"]

log = logging.getLogger(__name__)

_ERROR_BODY_CHARS = 300
_PRUNE_EVERY_S = 3600.0
_PRUNE_BATCH = 5_000


@dataclass(frozen=True, slots=True)
class SmtpConfig:
    """Where e-mail alerts go out."""

    host: str
    port: int
    sender: str
    username: str | None = None
    password: str | None = None
    security: Literal["none", "starttls", "tls"] = "starttls"


class PublicOnlyResolver(AbstractResolver):
    """Resolves like the default resolver, without the addresses `is_public` refuses."""

    def __init__(self) -> None:
        self._inner = ThreadedResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = [result for result in await self._inner.resolve(host, port, family) if is_public(result["host"])]
        if not results:
            raise OSError(f"{host} resolves only to private, loopback or link-local addresses")
        return results

    async def close(self) -> None:
        await self._inner.close()


class Sender:
    """Delivers the outbox of one ledger until cancelled; `box` opens the endpoints' signing secrets and the
    accounts' PagerDuty routing keys, and `pagerduty_url` is where PagerDuty events go."""

    def __init__(
        self,
        ledger: Ledger,
        box: SecretBox,
        *,
        timeout: float,
        delays_us: Sequence[int],
        allow_private: bool,
        smtp: SmtpConfig | None,
        pagerduty_url: str = EVENTS_URL,
        retention_days: int = 30,
        poll_seconds: float = 0.25,
        batch: int = 32,
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self._outbox = Outbox(ledger, box)
        self._timeout = timeout
        self._delays_us = tuple(delays_us)
        self._allow_private = allow_private
        self._smtp = smtp
        self._pagerduty_url = pagerduty_url
        self._poll = poll_seconds
        self._batch = batch
        self._clock = clock
        self._wake = asyncio.Event()
        self._session: aiohttp.ClientSession | None = None
        self._retention_us = retention_days * 86_400 * 1_000_000
        self._pruned_at = -_PRUNE_EVERY_S

    def poke(self) -> None:
        """Look for due deliveries now rather than at the next poll (call on the event loop)."""
        self._wake.set()

    async def run(self) -> None:
        """Deliver until cancelled; an error in one round is logged and the round tried again."""
        self._wake = asyncio.Event()
        resolver = None if self._allow_private else PublicOnlyResolver()
        connector = aiohttp.TCPConnector(limit=self._batch, resolver=resolver)
        timeout = aiohttp.ClientTimeout(total=self._timeout)
        async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
            self._session = session
            while True:
                self._wake.clear()
                try:
                    # Read first: an idle gateway polls with one read, and claims (a write) only what is due.
                    idle = await self._idle_seconds()
                    if idle == 0 and await self.deliver_due():
                        continue
                    await self._prune_if_due()
                except Exception:
                    log.exception("webhook delivery round failed; retrying")
                    idle = self._poll
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), idle)

    async def _prune_if_due(self) -> None:
        """Once an hour, forget deliveries finished longer ago than the retention (the log keeps the rest)."""
        now = time.monotonic()
        if now - self._pruned_at < _PRUNE_EVERY_S:
            return
        self._pruned_at = now
        before_us = epoch_us(self._clock()) - self._retention_us
        while await self._outbox.prune(before_us=before_us, limit=_PRUNE_BATCH) == _PRUNE_BATCH:
            pass

    async def _idle_seconds(self) -> float:
        """How long to sleep: until a delivery can be claimed (due, and not leased), at most one poll interval."""
        claimable_us = await self._outbox.next_claimable_us()
        if claimable_us is None:
            return self._poll
        return min(self._poll, max(0.0, (claimable_us - epoch_us(self._clock())) / 1_000_000))

    async def deliver_due(self) -> int:
        """Claim and try every delivery due now (one batch); how many were tried."""
        now_us = epoch_us(self._clock())
        lease_us = int((2 * self._timeout + 5) * 1_000_000)  # an attempt round lasts at most about one timeout
        claimed = await self._outbox.claim(now_us=now_us, lease_us=lease_us, limit=self._batch)
        if not claimed:
            return 0
        attempts = await asyncio.gather(*(self._try(item) for item in claimed))
        await self._outbox.finish(attempts, now_us=epoch_us(self._clock()), delays_us=self._delays_us)
        for attempt in attempts:
            if not attempt.ok:
                log.warning("delivery %s (%s) failed: %s", attempt.claimed.id, attempt.claimed.channel, attempt.error)
        return len(claimed)

    async def _try(self, item: Claimed) -> Attempt:
        started = time.monotonic()
        try:
            if item.channel == "email":
                await self._email(item)
                return _outcome(item, started, ok=True)
            if item.secret_error is not None:
                return _outcome(item, started, error=item.secret_error)
            if item.channel == "webhook" and (item.url is None or item.secret is None):
                return _outcome(item, started, error="the endpoint was deleted or disabled", retry=False)
            url = {"webhook": item.url, "pagerduty": self._pagerduty_url}.get(item.channel, item.target)
            assert url is not None
            await check_url(url, allow_private=self._allow_private)
            return await self._post(item, url, started)
        except UnsafeDestination as exc:
            return _outcome(item, started, error=f"refused destination: {exc}")
        except TimeoutError:
            return _outcome(item, started, error=f"timed out after {self._timeout:g}s")
        except (aiohttp.ClientError, aiosmtplib.SMTPException, OSError) as exc:
            return _outcome(item, started, error=f"{type(exc).__name__}: {exc}")
        except _NotConfigured as exc:
            return _outcome(item, started, error=str(exc), retry=False)

    async def _post(self, item: Claimed, url: str, started: float) -> Attempt:
        assert self._session is not None, "the sender is not running"
        headers = {"content-type": "application/json"}
        if item.channel == "webhook":
            assert item.secret is not None
            timestamp = int(self._clock().timestamp())
            headers = signed_headers(item.secret, msg_id=item.id, timestamp=timestamp, body=item.body)
            if item.bearer is not None:
                headers["authorization"] = f"Bearer {item.bearer}"
            body = item.body.encode()
        elif item.channel == "pagerduty":
            assert item.secret is not None
            body = with_routing_key(item.body, item.secret)
        else:
            body = _slack(item.body)
        async with self._session.post(url, data=body, headers=headers, allow_redirects=False) as response:
            if 200 <= response.status < 300:
                return _outcome(item, started, ok=True, status=response.status)
            detail = (await response.text(errors="replace"))[:_ERROR_BODY_CHARS]
            return _outcome(item, started, status=response.status, error=f"HTTP {response.status}: {detail}")

    async def _email(self, item: Claimed) -> None:
        smtp = self._smtp
        if smtp is None:
            raise _NotConfigured("e-mail is not configured: set smtp_host (and smtp_from)")
        payload: dict[str, Any] = json.loads(item.body)
        attachment = payload.get("data", {}).pop("attachment", None)
        message = EmailMessage()
        message["From"] = smtp.sender
        message["To"] = item.target
        message["Subject"] = f"[farebox] {_text(item.body)}"
        message["Message-ID"] = f"<{item.id}@farebox>"
        message.set_content(f"{_text(item.body)}\n\n{json.dumps(payload, indent=2)}\n")
        if attachment is not None:
            maintype, _, subtype = attachment["contentType"].partition(";")[0].partition("/")
            message.add_attachment(
                base64.b64decode(attachment["content"]),
                maintype=maintype,
                subtype=subtype,
                filename=attachment["filename"],
            )
        await aiosmtplib.send(
            message,
            hostname=smtp.host,
            port=smtp.port,
            username=smtp.username,
            password=smtp.password,
            use_tls=smtp.security == "tls",
            start_tls=True if smtp.security == "starttls" else False,
            timeout=self._timeout,
        )


class _NotConfigured(Exception):
    """A channel farebox has no settings for: retrying cannot help."""


def _slack(body: str) -> bytes:
    """A Slack incoming webhook's payload: the alert's text, and the channel it names, if any (Slack's legacy
    webhooks post there; an app's webhook posts to its own channel and ignores it)."""
    payload = {"text": _text(body)}
    channel = json.loads(body).get("data", {}).get("slack_channel")
    if channel:
        payload["channel"] = channel
    return json.dumps(payload).encode()


def _text(body: str) -> str:
    data = json.loads(body).get("data", {})
    return str(data.get("text") or data.get("message") or json.loads(body).get("type"))


def _outcome(
    item: Claimed,
    started: float,
    *,
    ok: bool = False,
    status: int | None = None,
    error: str | None = None,
    retry: bool = True,
) -> Attempt:
    duration_ms = int((time.monotonic() - started) * 1000)
    return Attempt(item, ok=ok, status_code=status, error=error, duration_ms=duration_ms, retry=retry)
