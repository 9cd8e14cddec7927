"""Refuse notification URLs that reach inside the network farebox runs in (SSRF).

A webhook or Slack URL is an address an account admin chooses and farebox's server calls. Unless the
`allow_private_webhook_urls` setting is on, a URL is refused when its host is, or resolves to, a private,
loopback, link-local, multicast, reserved or unspecified address. The check runs when the URL is
registered (a clear 422) and again on every delivery: the sender's `PublicOnlyResolver` resolves names for
the HTTP client and drops such addresses, so a name that later resolves inward (DNS rebinding) is refused too.
"""

from __future__ import annotations

import asyncio
import ipaddress
import re
import socket
from urllib.parse import urlsplit

from farebox.core.alerts import DESTINATION_URL_PATTERN
from farebox.core.owners import invalid

__all__ = ["UnsafeDestination", "check_url", "checked_url", "is_public", "parse_url"]

_URL = re.compile(DESTINATION_URL_PATTERN)


class UnsafeDestination(ValueError):
    """A URL farebox will not call: not http(s), no host, or an address inside the network."""


def is_public(address: str) -> bool:
    """Whether an IP address is globally routable (not private, loopback, link-local, reserved...)."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


def parse_url(url: str) -> tuple[str, int]:
    """The host and port of an http(s) URL.

    Raises:
        UnsafeDestination: not an http(s) URL with a host.
    """
    try:
        parts = urlsplit(url)
    except ValueError:  # an unbalanced or invalid [IPv6] host
        raise UnsafeDestination("must be an http:// or https:// URL with a host") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise UnsafeDestination("must be an http:// or https:// URL with a host")
    try:
        port = parts.port or (443 if parts.scheme == "https" else 80)
    except ValueError:
        raise UnsafeDestination("has an invalid port") from None
    return parts.hostname, port


async def check_url(url: str, *, allow_private: bool) -> None:
    """Refuse a URL that is malformed or, unless `allow_private`, reaches a non-public address.

    Raises:
        UnsafeDestination: the reason, in words an admin can act on.
    """
    host, port = parse_url(url)
    if allow_private:
        return
    try:
        infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror:
        raise UnsafeDestination(f"host {host!r} does not resolve") from None
    for *_, address in infos:
        if not is_public(str(address[0])):
            raise UnsafeDestination(
                f"host {host!r} resolves to {address[0]}, a private, loopback or link-local address "
                "(set FAREBOX_ALLOW_PRIVATE_WEBHOOK_URLS=true, for development only, to allow it)"
            )


async def checked_url(url: str, *, allow_private: bool, field: str = "url") -> str:
    """The URL, if farebox may call it.

    Raises:
        ValidationFailed: malformed, or reaching a private address while `allow_private` is off (422).
    """
    if not _URL.match(url):
        raise invalid(field, "must be an http:// or https:// URL with a host, without blanks")
    try:
        await check_url(url, allow_private=allow_private)
    except UnsafeDestination as exc:
        raise invalid(field, str(exc)) from None
    return url
