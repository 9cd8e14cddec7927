"""Whose usage a proxied request is: its key's attribution, overridden by the `x-farebox-*` request headers."""

from __future__ import annotations

from collections.abc import Mapping

from farebox.core.owners import VirtualKey
from farebox.errors import InvalidRequest
from farebox.gateway.providers.payload import load_object
from farebox.metering import Attribution

__all__ = ["attribution_from"]

_MAX_METADATA_BYTES = 4096


def attribution_from(key: VirtualKey, headers: Mapping[str, str]) -> Attribution:
    """Attribution from the key, overridden by `x-farebox-agent`, `-app`, `-tags` (comma list) and `-metadata`.

    Raises:
        InvalidRequest: `x-farebox-metadata` is not a JSON object (or longer than 4 KiB).
    """
    tags = key.tags
    if "x-farebox-tags" in headers:
        tags = tuple(tag.strip() for tag in headers["x-farebox-tags"].split(",") if tag.strip())
    metadata: Mapping[str, object] = {}
    raw = headers.get("x-farebox-metadata")
    if raw is not None:
        parsed = load_object(raw) if len(raw) <= _MAX_METADATA_BYTES else None
        if parsed is None:
            raise InvalidRequest("x-farebox-metadata must be a JSON object of at most 4 KiB", code="invalid_metadata")
        metadata = parsed
    return Attribution(
        account_id=key.account_id,
        key_id=key.id,
        member_id=key.member_id,
        agent_id=headers.get("x-farebox-agent") or key.agent_id,
        app=headers.get("x-farebox-app") or key.app,
        tags=tags,
        metadata=metadata,
    )
