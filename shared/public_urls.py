"""URLs a tenant typed (a chatbot's `api_call`, later outbound webhooks): only public addresses are reached.

A URL whose host is, or resolves to, a private, loopback, link-local, multicast or otherwise non-global address
is refused (server-side request forgery: a tenant's flow must not read the platform's own network), unless
OUTBOUND_ALLOWED_HOSTS names the host or a network (CIDR) holding the address: how a business reaches its own
system on a private network, and how the tests reach a local server.

The check resolves the name when it is made; a name that resolves differently a moment later (DNS rebinding)
is not caught here: the caller connects to the address this check returns.
"""

from __future__ import annotations

import ipaddress
import socket
from typing import Iterable
from urllib.parse import urlsplit

from shared.errors import InvalidInputError

SCHEMES = ("http", "https")


class UrlNotAllowedError(InvalidInputError):
    code = "url_not_allowed"


def _allowed(host: str, address: ipaddress.IPv4Address | ipaddress.IPv6Address, allowed: Iterable[str]) -> bool:
    for entry in allowed:
        entry = entry.strip().lower()
        if not entry:
            continue
        if entry == host:
            return True
        try:
            if address in ipaddress.ip_network(entry, strict=False):
                return True
        except ValueError:
            continue
    return False


def _addresses(host: str) -> list[ipaddress.IPv4Address | ipaddress.IPv6Address]:
    try:
        return [ipaddress.ip_address(host)]
    except ValueError:
        pass
    try:
        infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    except (socket.gaierror, UnicodeError) as exc:
        raise UrlNotAllowedError(f"The host {host!r} cannot be resolved", details={"host": host}) from exc
    return [ipaddress.ip_address(info[4][0].split("%", 1)[0]) for info in infos]


def check_public_url(url: str, *, allowed: Iterable[str] = ()) -> str:
    """The address to connect to for `url`; UrlNotAllowedError when it is not an http(s) URL to a public address
    (or one `allowed` names)."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme not in SCHEMES or not host:
        raise UrlNotAllowedError("Only http:// and https:// URLs with a host can be called", details={"url": url})
    allowed = tuple(allowed)
    addresses = _addresses(host)
    for address in addresses:
        if not address.is_global and not _allowed(host, address, allowed):
            raise UrlNotAllowedError(
                f"{host} is a private or internal address; an administrator can allow it with OUTBOUND_ALLOWED_HOSTS",
                details={"host": host, "address": str(address)})
    return str(addresses[0])
