"""The SSRF guard: the one check for every outbound request to a URL a tenant
chose (webhook endpoints, crawled sites).

Targets resolving to private, loopback, link-local, multicast, reserved or
cloud-metadata addresses are refused unless `WEBHOOK_ALLOW_PRIVATE_TARGETS`.
Callers resolve once with `resolve_target`, which checks *every* address the
name resolves to, then connect to a checked address (`pinned_url`), so a DNS
answer that changes in between cannot send the request elsewhere. A caller
that follows redirects checks each hop the same way.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from backend.kit.errors import DossierError
from backend.settings import Settings

METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("169.254.170.2"),
    ipaddress.ip_address("100.100.100.200"),
    ipaddress.ip_address("fd00:ec2::254"),
}
_SHARED_ADDRESS_SPACE = ipaddress.ip_network("100.64.0.0/10")

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrl(DossierError):
    status, code = 422, "unsafe_url"


def is_forbidden_address(address: IPAddress) -> bool:
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return (
        address in METADATA_ADDRESSES
        or address.is_private
        or address.is_loopback
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or (isinstance(address, ipaddress.IPv4Address) and address in _SHARED_ADDRESS_SPACE)
    )


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...]


def check_syntax(
    settings: Settings, url: str, *, allow_http: bool | None = None
) -> tuple[str, str, int]:
    """The scheme, host and port of `url`, or `UnsafeUrl`: only https (and
    http where `allow_http`, by default `WEBHOOK_ALLOW_HTTP`), a host, no
    credentials, a valid port."""
    http_ok = settings.webhook_allow_http if allow_http is None else allow_http
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or (scheme == "http" and not http_ok):
        raise UnsafeUrl("The URL must use https" + (" or http" if http_ok else ""))
    if not parts.hostname:
        raise UnsafeUrl("The URL has no host")
    if parts.username or parts.password:
        raise UnsafeUrl("The URL must not carry credentials")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise UnsafeUrl("The URL's port is invalid") from None
    return scheme, parts.hostname, port


async def resolve_target(settings: Settings, url: str, *, allow_http: bool | None = None) -> Target:
    """Resolve `url`'s host and refuse it when any address is not public
    (unless `WEBHOOK_ALLOW_PRIVATE_TARGETS`)."""
    scheme, host, port = check_syntax(settings, url, allow_http=allow_http)
    try:
        literal: IPAddress | None = ipaddress.ip_address(host)
    except ValueError:
        literal = None
    if literal is not None:
        addresses: tuple[IPAddress, ...] = (literal,)
    else:
        loop = asyncio.get_running_loop()
        try:
            infos = await asyncio.wait_for(
                loop.getaddrinfo(host, port, type=socket.SOCK_STREAM), timeout=5
            )
        except (OSError, TimeoutError):
            raise UnsafeUrl("The URL's host does not resolve") from None
        addresses = tuple(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in infos))
    if not addresses:
        raise UnsafeUrl("The URL's host does not resolve")
    if not settings.webhook_allow_private_targets and any(
        is_forbidden_address(a) for a in addresses
    ):
        raise UnsafeUrl("The URL points to a private, loopback, link-local or metadata address")
    return Target(url=url, scheme=scheme, host=host, port=port, addresses=addresses)


def pinned_url(url: str, address: IPAddress) -> str:
    """`url` with its host replaced by the checked `address` (send the
    original host in `Host` and, for https, as `sni_hostname`)."""
    parts = urlsplit(url)
    host = f"[{address}]" if address.version == 6 else str(address)
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
