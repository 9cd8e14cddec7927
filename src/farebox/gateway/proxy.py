"""One proxied request, start to finish: authorize -> forward -> measure -> price and record -> release.

`ProxyEndpoint` is a plain ASGI app (no framework machinery on the hot path), one instance per route.
Requests that fail before they are forwarded (no or bad key, unknown or forbidden model, bad body) are
answered in the client's wire format and not recorded: nothing was used. Every forwarded request leaves
exactly one usage event, whatever happens next: an upstream error status (passed through unchanged), a
timeout (504), an unreachable upstream (502), a stream cut short by either side (estimated).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import anyio
from starlette.types import Message, Receive, Scope, Send
from uuid_utils import uuid7

from farebox.budgets import Caps, Reservation
from farebox.core.events import Status, UsageEvent
from farebox.core.keys import secret_from_headers
from farebox.core.money import format_usd
from farebox.core.pricing import Usage
from farebox.errors import FareboxError, NotFound, PermissionDenied
from farebox.gateway.auth import CachedKey, split_key_param
from farebox.gateway.exchange import (
    Gateway,
    attribution_from,
    error_message,
    headers_of,
    read_body,
    upstream_error_type,
)
from farebox.gateway.formats import FORMATS
from farebox.gateway.model_routes import ModelRoute
from farebox.gateway.operations import Operation, ParsedRequest, parse_request, upstream_body
from farebox.gateway.providers.openai import UsageChunkFilter
from farebox.gateway.streaming import StreamEnd, relay
from farebox.gateway.upstream import (
    UpstreamError,
    UpstreamResponse,
    UpstreamTimeout,
    UpstreamUnreachable,
    target,
)
from farebox.gateway.usage import collector_for, estimate, measure_body
from farebox.gateway.worst_case import worst_case_usage
from farebox.metering import Attribution, Outcome

__all__ = ["ProxyEndpoint"]

log = logging.getLogger(__name__)

_EMPTY = Usage()


@dataclass(frozen=True, slots=True)
class _Call:
    """One forwarded request: what the recording steps need."""

    operation: Operation
    parsed: ParsedRequest
    route: ModelRoute
    entry: CachedKey
    attribution: Attribution
    request_id: str
    at: datetime
    started: float
    caps: Caps
    reservation: Reservation | None


class ProxyEndpoint:
    """The ASGI app of one proxy route (`operation`)."""

    def __init__(self, operation: Operation, gateway: Gateway) -> None:
        self.operation = operation
        self.gateway = gateway
        self.format = FORMATS[operation.wire]

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        at = datetime.now(UTC)
        request_id = uuid7().hex
        wire = self.operation.wire
        headers = headers_of(scope)
        query_key, query = split_key_param(scope["query_string"]) if self.format.query_passthrough else (None, "")
        try:
            entry = await self.gateway.keys.authenticate(secret_from_headers(headers, query_key=query_key))
            body = await read_body(receive)
            parsed = parse_request(
                self.operation,
                body,
                content_type=headers.get("content-type", ""),
                path_model=scope.get("path_params", {}).get("model"),
            )
            route = self._route(parsed.model, entry)
            assert entry.key is not None
            attribution = attribution_from(entry.key, headers)
            outgoing = upstream_body(self.operation, parsed, route)
            caps, reservation = await self._reserve(entry, parsed, route, at)
        except FareboxError as exc:
            await self.gateway.send_error(send, wire, exc.status, exc.message, code=exc.code, request_id=request_id)
            return
        call = _Call(self.operation, parsed, route, entry, attribution, request_id, at, started, caps, reservation)
        try:
            with self.gateway.in_flight.track():
                await self._forward(call, scope, receive, send, outgoing, query)
        except anyio.get_cancelled_exc_class():
            # Cancelled (a shutdown past its grace period) while the upstream may already be working on it:
            # record it, estimated from the request. A stream that had finished recording is a duplicate.
            with anyio.CancelScope(shield=True):
                await self._record(call, await self._cancelled(call))
            raise
        finally:
            self.gateway.budgets.release(reservation)

    async def _reserve(
        self, entry: CachedKey, parsed: ParsedRequest, route: ModelRoute, at: datetime
    ) -> tuple[Caps, Reservation | None]:
        """Hold the request's worst-case cost against its caps (none: nothing to hold, nothing estimated).

        Raises:
            BudgetExceeded: a cap cannot take the worst case (402); nothing is forwarded.
        """
        assert entry.key is not None
        budgets = self.gateway.budgets
        caps = await budgets.caps_for(entry.key)
        if not caps.caps:
            return caps, None
        usage = worst_case_usage(self.operation, parsed, default_output_tokens=self.gateway.default_output_tokens)
        worst = self.gateway.meter.cost_nano(
            self.gateway.price_target(route), operation=self.operation.operation, usage=usage, at=at
        )
        return caps, await budgets.reserve(caps, worst, at=at)

    async def _forward(
        self, call: _Call, scope: Scope, receive: Receive, send: Send, outgoing: bytes, query: str
    ) -> None:
        wire = self.operation.wire
        upstream = target(
            call.route,
            wire=wire,
            path=self.operation.upstream_path,
            client_headers=scope["headers"],
            credential=self.gateway.credentials.get(call.route.name),
            mock_base_url=self.gateway.mock_base_url,
            query=query,
        )
        try:
            response = await self.gateway.upstream.send("POST", upstream, body=outgoing)
        except UpstreamError as exc:
            await self._fail_upstream(call, send, exc)
            return
        try:
            if call.parsed.stream and response.status < 300 and response.content_type.startswith("text/event-stream"):
                await self._stream(call, response, receive, send)
            else:
                await self._complete(call, response, send)
        finally:
            response.close()

    def _route(self, model: str, entry: CachedKey) -> ModelRoute:
        route = self.gateway.routes.get(model)
        providers = self.format.providers
        if route is None:
            raise NotFound(
                f"The model `{model}` does not exist or is not served by this gateway", code="model_not_found"
            )
        if providers is not None and route.provider not in providers:
            raise NotFound(
                f"The model `{model}` is not served in the {self.format.name} API format by this gateway",
                code="model_not_found",
            )
        assert entry.key is not None
        if not entry.key.allows_model(model):
            raise PermissionDenied(f"this API key may not use the model `{model}`", code="model_not_allowed")
        return route

    def _outcome(
        self,
        call: _Call,
        *,
        usage: Usage,
        http_status: int,
        estimated: bool = False,
        status: Status = Status.OK,
        error_type: str | None = None,
        ttft_ms: int | None = None,
        streamed: bool = False,
    ) -> Outcome:
        return Outcome(
            provider=call.route.provider.value,
            model=call.parsed.model,
            price_as=self.gateway.price_target(call.route),
            operation=call.operation.operation,
            axis=call.operation.axis,
            usage=usage,
            estimated=estimated,
            status=status,
            http_status=http_status,
            error_type=error_type,
            latency_ms=round((time.perf_counter() - call.started) * 1000),
            ttft_ms=ttft_ms,
            streamed=streamed,
        )

    async def _record(self, call: _Call, outcome: Outcome) -> UsageEvent | None:
        """Commit the event; None (logged) when the ledger failed, and the response must then fail too."""
        try:
            event = await self.gateway.meter.record(
                call.request_id, at=call.at, attribution=call.attribution, outcome=outcome
            )
        except Exception:  # the request boundary: a failed write fails the response (STYLE R15)
            log.exception("recording usage event %s failed", call.request_id)
            return None
        finally:
            # Committed (its cost is in the budgets' spend now) or failed (nothing was charged): let go.
            self.gateway.budgets.release(call.reservation)
        return event

    async def _cancelled(self, call: _Call) -> Outcome:
        usage = await estimate(call.operation, call.parsed, text="", partial=None, tokenizer=self.gateway.tokenizer)
        return self._outcome(
            call,
            usage=usage,
            estimated=True,
            status=Status.ERROR,
            http_status=499,
            error_type="cancelled",
            streamed=call.parsed.stream,
        )

    def _our_headers(self, call: _Call) -> list[tuple[bytes, bytes]]:
        remaining = self.gateway.budgets.remaining(call.caps, at=datetime.now(UTC))
        credits = "unlimited" if remaining is None else format_usd(remaining)
        return [(b"x-farebox-request-id", call.request_id.encode()), (b"x-credits-remaining", credits.encode())]

    async def _fail(self, call: _Call, send: Send, status: int, error_type: str, message: str) -> None:
        outcome = self._outcome(
            call,
            usage=_EMPTY,
            status=Status.ERROR,
            http_status=status,
            error_type=error_type,
            streamed=call.parsed.stream,
        )
        if await self._record(call, outcome) is None:
            status, error_type, message = 503, "ledger_unavailable", error_message(503)
        await self.gateway.send_error(
            send, call.operation.wire, status, message, code=error_type, request_id=call.request_id
        )

    async def _fail_upstream(self, call: _Call, send: Send, exc: UpstreamError) -> None:
        name = call.route.name
        if isinstance(exc, UpstreamTimeout):
            await self._fail(call, send, 504, exc.error_type, f"the upstream for {name!r} did not answer in time")
        elif isinstance(exc, UpstreamUnreachable):
            await self._fail(call, send, 502, exc.error_type, f"the upstream for {name!r} is unreachable")
        else:
            await self._fail(call, send, 502, exc.error_type, f"the upstream for {name!r} dropped the connection")

    async def _complete(self, call: _Call, response: UpstreamResponse, send: Send) -> None:
        try:
            content = await response.read()
        except UpstreamError as exc:
            await self._fail_upstream(call, send, exc)
            return
        status = response.status
        if status >= 400:
            outcome = self._outcome(
                call,
                usage=_EMPTY,
                status=Status.ERROR,
                http_status=status,
                error_type=upstream_error_type(content, status),
                streamed=call.parsed.stream,
            )
        else:
            measured = await measure_body(call.operation, call.parsed, content, tokenizer=self.gateway.tokenizer)
            outcome = self._outcome(call, usage=measured.usage, estimated=measured.estimated, http_status=status)
        event = await self._record(call, outcome)
        if event is None:
            await self.gateway.send_error(
                send,
                call.operation.wire,
                503,
                error_message(503),
                code="ledger_unavailable",
                request_id=call.request_id,
            )
            return
        headers = response.headers + self._our_headers(call)
        headers.append((b"x-farebox-cost-usd", format_usd(event.cost_nano).encode()))
        headers.append((b"content-length", str(len(content)).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": content, "more_body": False})

    async def _stream(self, call: _Call, response: UpstreamResponse, receive: Receive, send: Send) -> None:
        collector = collector_for(call.operation)
        chunk_filter = None
        if call.operation.wire == "openai" and not call.parsed.client_wants_usage:
            chunk_filter = UsageChunkFilter()
        start: Message = {
            "type": "http.response.start",
            "status": response.status,
            "headers": response.headers + self._our_headers(call),
        }

        async def finish(end: StreamEnd) -> bool:
            usage = collector.usage
            complete = collector.complete and not end.client_gone
            if complete and usage is not None:
                outcome = self._outcome(call, usage=usage, http_status=200, ttft_ms=end.ttft_ms, streamed=True)
            else:
                counted = await estimate(
                    call.operation,
                    call.parsed,
                    text=collector.text,
                    partial=usage,
                    tokenizer=self.gateway.tokenizer,
                )
                error_type = None if complete else ("client_disconnected" if end.client_gone else end.upstream_error)
                outcome = self._outcome(
                    call,
                    usage=counted,
                    estimated=True,
                    status=Status.OK if complete else Status.ERROR,
                    http_status=200,
                    error_type=error_type,
                    ttft_ms=end.ttft_ms,
                    streamed=True,
                )
            return await self._record(call, outcome) is not None

        await relay(
            response,
            start=start,
            receive=receive,
            send=send,
            collector=collector,
            chunk_filter=chunk_filter,
            started=call.started,
            finish=finish,
        )
