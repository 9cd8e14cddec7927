"""One proxied request's wire work: parse, forward, relay, measure, and errors in the client's format.

Authorizing, reserving, pricing, recording and releasing are the meter's (`farebox.metering`): the endpoint
asks it for a key, opens a ticket for the request, and records the outcome on it.
`ProxyEndpoint` is a plain ASGI app (no framework machinery on the hot path), one instance per route.
Requests that fail before they are forwarded (no or bad key, unknown or forbidden model, bad body, a body
over its bounds) are answered in the client's wire format and not recorded: nothing was used. Every
forwarded request leaves exactly one usage event, whatever happens next: an upstream error status (passed
through unchanged), a timeout (504), an unreachable upstream (502), a stream cut short by either side
(estimated).
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from starlette.types import Message, Receive, Scope, Send
from uuid_utils import uuid7

from farebox.core.events import Status, UsageEvent
from farebox.core.keys import secret_from_headers
from farebox.core.money import format_usd
from farebox.core.owners import VirtualKey
from farebox.core.pricing import Usage
from farebox.errors import FareboxError, NotFound, PermissionDenied
from farebox.gateway.attribution import attribution_from
from farebox.gateway.formats import FORMATS
from farebox.gateway.model_routes import ModelRoute
from farebox.gateway.operations import Operation, ParsedRequest, parse_request, upstream_body
from farebox.gateway.prompt_prefix import PROMPTED_OPERATIONS
from farebox.gateway.providers.openai import UsageChunkFilter
from farebox.gateway.streaming import StreamEnd, relay
from farebox.gateway.upstream import (
    UpstreamError,
    UpstreamResponse,
    UpstreamTimeout,
    UpstreamUnreachable,
    target,
)
from farebox.gateway.usage import collector_for, estimate, measure_answer
from farebox.gateway.wire import (
    error_message,
    error_type_of,
    headers_of,
    read_body,
    send_error,
    split_key_param,
    upstream_error_type,
)
from farebox.gateway.wiring import Gateway
from farebox.gateway.worst_case import worst_case_usage
from farebox.logs import REQUEST_ID
from farebox.metering import Attribution, Call, Outcome, Ticket

__all__ = ["ProxyEndpoint"]

log = logging.getLogger(__name__)

_EMPTY = Usage()
_PIECE_BYTES = 256 * 1024
"""About the most of a complete answer handed to the server at once."""


@dataclass(slots=True)  # not frozen: one per request, built in half the time
class _Forward:
    """One request being forwarded: what the wire steps need beside its ticket. Never changed."""

    ticket: Ticket
    parsed: ParsedRequest
    route: ModelRoute
    started: float
    prompt_prefix: str | None


class ProxyEndpoint:
    """The ASGI app of one proxy route (`operation`)."""

    def __init__(self, operation: Operation, gateway: Gateway) -> None:
        self.operation = operation
        self.gateway = gateway
        self.meter = gateway.meter
        self.format = FORMATS[operation.wire]
        prefixes = gateway.prompt_prefixes
        self.prompt_prefixes = prefixes if prefixes is not None and operation.operation in PROMPTED_OPERATIONS else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        at = datetime.now(UTC)
        request_id = uuid7().hex
        REQUEST_ID.set(request_id)
        wire = self.operation.wire
        headers = headers_of(scope)
        query_key, query = split_key_param(scope["query_string"]) if self.format.query_passthrough else (None, "")
        try:
            key = await self.meter.authorize(secret_from_headers(headers, query_key=query_key))
            body = await read_body(receive)
            parsed = parse_request(
                self.operation,
                body,
                content_type=headers.get("content-type", ""),
                path_model=scope.get("path_params", {}).get("model"),
            )
            route = self._route(parsed.model, key)
            if self.operation.operation == "embeddings":
                await self.gateway.embeddings.check(
                    parsed.document, model=route.upstream, tokenizer=self.gateway.tokenizer
                )
            outgoing = upstream_body(self.operation, parsed, route)
            prefixes = self.prompt_prefixes
            prefix = None if prefixes is None else prefixes.of(self.operation.operation, parsed.document)
            call = self._call(request_id, at, key, attribution_from(key, headers), parsed, route, prefix)
            ticket = await self.meter.open(call)
        except FareboxError as exc:  # refused before anything was forwarded (a cap's refusal included)
            await send_error(send, wire, exc.status, exc.message, code=exc.code, request_id=request_id)
            return
        async with ticket:
            forward = _Forward(ticket, parsed, route, started, prefix)
            await self._forward(forward, scope, receive, send, outgoing, query)

    def _call(
        self,
        request_id: str,
        at: datetime,
        key: VirtualKey,
        attribution: Attribution,
        parsed: ParsedRequest,
        route: ModelRoute,
        prompt_prefix: str | None,
    ) -> Call:
        operation = self.operation

        def worst_case() -> Usage:
            return worst_case_usage(operation, parsed, default_output_tokens=self.gateway.default_output_tokens)

        async def abandoned() -> Outcome:
            usage = await estimate(operation, parsed, text="", partial=None, tokenizer=self.gateway.tokenizer)
            return self._outcome(
                parsed,
                route,
                started=time.perf_counter(),
                usage=usage,
                estimated=True,
                status=Status.ERROR,
                http_status=499,
                error_type="cancelled",
                streamed=parsed.stream,
                prompt_prefix=prompt_prefix,
            )

        price_as = self.gateway.price_target(route)
        return Call(request_id, at, key, attribution, price_as, operation.operation, worst_case, abandoned)

    async def _forward(
        self, forward: _Forward, scope: Scope, receive: Receive, send: Send, outgoing: bytes, query: str
    ) -> None:
        gateway = self.gateway
        upstream = target(
            forward.route,
            wire=self.operation.wire,
            path=self.operation.upstream_path,
            client_headers=scope["headers"],
            credential=gateway.credentials.get(forward.route.name),
            mock_base_url=gateway.mock_base_url,
            mock_key=gateway.mock_key,
            query=query,
        )
        try:
            response = await gateway.upstream.send("POST", upstream, body=outgoing)
        except UpstreamError as exc:
            await self._fail_upstream(forward, send, exc)
            return
        try:
            if (
                forward.parsed.stream
                and response.status < 300
                and response.content_type.startswith("text/event-stream")
            ):
                await self._stream(forward, response, receive, send)
            else:
                await self._complete(forward, response, send)
        finally:
            response.close()

    def _route(self, model: str, key: VirtualKey) -> ModelRoute:
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
        if not key.allows_model(model):
            raise PermissionDenied(f"this API key may not use the model `{model}`", code="model_not_allowed")
        return route

    def _outcome(
        self,
        parsed: ParsedRequest,
        route: ModelRoute,
        *,
        started: float,
        usage: Usage,
        http_status: int,
        estimated: bool = False,
        status: Status = Status.OK,
        error_type: str | None = None,
        ttft_ms: int | None = None,
        streamed: bool = False,
        prompt_prefix: str | None = None,
    ) -> Outcome:
        return Outcome(
            provider=route.provider.value,
            model=parsed.model,
            price_as=self.gateway.price_target(route),
            operation=self.operation.operation,
            axis=self.operation.axis,
            usage=usage,
            estimated=estimated,
            status=status,
            http_status=http_status,
            error_type=error_type,
            latency_ms=round((time.perf_counter() - started) * 1000),
            ttft_ms=ttft_ms,
            streamed=streamed,
            prompt_prefix=prompt_prefix,
        )

    def _forward_outcome(self, forward: _Forward, **fields: Any) -> Outcome:
        return self._outcome(
            forward.parsed, forward.route, started=forward.started, prompt_prefix=forward.prompt_prefix, **fields
        )

    async def _record(self, forward: _Forward, outcome: Outcome) -> UsageEvent | None:
        """Commit the event; None (logged) when the ledger failed, and the response must then fail too."""
        try:
            return await forward.ticket.record(outcome)
        except Exception:  # the request boundary: a failed write fails the response, never the process
            log.exception("recording usage event %s failed", forward.ticket.call.request_id)
            return None

    async def _our_headers(self, forward: _Forward) -> list[tuple[bytes, bytes]]:
        ticket = forward.ticket
        remaining = await ticket.remaining(at=datetime.now(UTC))
        if remaining is None:
            credits = "unlimited"
        elif ticket.prepaid:  # an account holding credits reads what is left in credits, as it tops up
            credits = self.gateway.credit_rate.format(remaining)
        else:
            credits = format_usd(remaining)
        request_id = ticket.call.request_id
        return [(b"x-farebox-request-id", request_id.encode()), (b"x-credits-remaining", credits.encode())]

    async def _fail(self, forward: _Forward, send: Send, status: int, error_type: str, message: str) -> None:
        outcome = self._forward_outcome(
            forward,
            usage=_EMPTY,
            status=Status.ERROR,
            http_status=status,
            error_type=error_type,
            streamed=forward.parsed.stream,
        )
        if await self._record(forward, outcome) is None:
            status, error_type, message = 503, "ledger_unavailable", error_message(503)
        request_id = forward.ticket.call.request_id
        await send_error(send, self.operation.wire, status, message, code=error_type, request_id=request_id)

    async def _fail_upstream(self, forward: _Forward, send: Send, exc: UpstreamError) -> None:
        name = forward.route.name
        if isinstance(exc, UpstreamTimeout):
            await self._fail(forward, send, 504, exc.error_type, f"the upstream for {name!r} did not answer in time")
        elif isinstance(exc, UpstreamUnreachable):
            await self._fail(forward, send, 502, exc.error_type, f"the upstream for {name!r} is unreachable")
        else:
            await self._fail(forward, send, 502, exc.error_type, f"the upstream for {name!r} dropped the connection")

    async def _complete(self, forward: _Forward, response: UpstreamResponse, send: Send) -> None:
        try:
            chunks = await response.read_chunks()
        except UpstreamError as exc:
            await self._fail_upstream(forward, send, exc)
            return
        status = response.status
        if status >= 400:
            outcome = self._forward_outcome(
                forward,
                usage=_EMPTY,
                status=Status.ERROR,
                http_status=status,
                error_type=upstream_error_type(b"".join(chunks), status),
                streamed=forward.parsed.stream,
            )
        else:
            measured = await measure_answer(self.operation, forward.parsed, chunks, tokenizer=self.gateway.tokenizer)
            outcome = self._forward_outcome(
                forward, usage=measured.usage, estimated=measured.estimated, http_status=status
            )
        event = await self._record(forward, outcome)
        if event is None:
            request_id = forward.ticket.call.request_id
            await send_error(
                send, self.operation.wire, 503, error_message(503), code="ledger_unavailable", request_id=request_id
            )
            return
        headers = response.headers + await self._our_headers(forward)
        headers.append((b"x-farebox-cost-usd", format_usd(event.cost_nano).encode()))
        headers.append((b"content-length", str(sum(map(len, chunks))).encode()))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        # In pieces of at most a few chunks: the server then waits for the client between them (its flow control),
        # where one 68 MB piece would be copied into its write buffer at once, and moved down on every socket write.
        piece: list[bytes] = []
        size = 0
        for chunk in chunks:
            piece.append(chunk)
            size += len(chunk)
            if size >= _PIECE_BYTES:
                await send({"type": "http.response.body", "body": b"".join(piece), "more_body": True})
                piece, size = [], 0
        await send({"type": "http.response.body", "body": b"".join(piece), "more_body": False})

    async def _stream(self, forward: _Forward, response: UpstreamResponse, receive: Receive, send: Send) -> None:
        collector = collector_for(self.operation)
        chunk_filter = None
        if self.operation.asks_stream_usage and not forward.parsed.client_wants_usage:
            chunk_filter = UsageChunkFilter()
        start: Message = {
            "type": "http.response.start",
            "status": response.status,
            "headers": response.headers + await self._our_headers(forward),
        }

        async def finish(end: StreamEnd) -> bool:
            usage = collector.usage
            complete = collector.complete and not end.client_gone
            # A stream the provider ended itself, but on an error (the Responses API's `response.failed`).
            failed = (error_type_of(collector.error) or "stream_error") if complete and collector.error else None
            status = Status.ERROR if failed or not complete else Status.OK
            if complete and usage is not None:
                outcome = self._forward_outcome(
                    forward,
                    usage=usage,
                    status=status,
                    http_status=200,
                    error_type=failed,
                    ttft_ms=end.ttft_ms,
                    streamed=True,
                )
            else:
                counted = await estimate(
                    self.operation,
                    forward.parsed,
                    text=collector.text,
                    partial=usage,
                    tokenizer=self.gateway.tokenizer,
                )
                error_type = failed if complete else ("client_disconnected" if end.client_gone else end.upstream_error)
                outcome = self._forward_outcome(
                    forward,
                    usage=counted,
                    estimated=True,
                    status=status,
                    http_status=200,
                    error_type=error_type,
                    ttft_ms=end.ttft_ms,
                    streamed=True,
                )
            return await self._record(forward, outcome) is not None

        await relay(
            response,
            start=start,
            receive=receive,
            send=send,
            collector=collector,
            chunk_filter=chunk_filter,
            started=forward.started,
            finish=finish,
        )
