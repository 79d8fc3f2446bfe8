"""Webhook secrets, Standard Webhooks signatures, and the SSRF guard.

* The secret is `whsec_` + base64 of 32 random bytes, shown once; it is kept
  encrypted (AES-GCM under a key derived from `SIGNING_SECRET`), because the
  worker needs it to sign.
* `webhook-signature` is `v1,` + base64(HMAC-SHA256(secret bytes,
  "{webhook-id}.{webhook-timestamp}.{body}")).
* Targets resolving to private, loopback, link-local, multicast, reserved or
  cloud-metadata addresses are refused unless private targets are allowed;
  deliveries resolve once, check every address, then connect to the checked
  address (so a DNS answer that changes in between cannot redirect them).
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import ipaddress
import os
import secrets
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from backend.kit.errors import DossierError
from backend.settings import Settings

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
METADATA_ADDRESSES = {
    ipaddress.ip_address("169.254.169.254"),
    ipaddress.ip_address("169.254.170.2"),
    ipaddress.ip_address("100.100.100.200"),
    ipaddress.ip_address("fd00:ec2::254"),
}

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class UnsafeUrl(DossierError):
    status, code = 422, "unsafe_url"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def _key(settings: Settings) -> bytes:
    material = b"dossier-webhook-secrets:" + settings.signing_secret.get_secret_value().encode()
    return hashlib.sha256(material).digest()


def encrypt_secret(settings: Settings, secret: str) -> str:
    nonce = os.urandom(12)
    sealed = AESGCM(_key(settings)).encrypt(nonce, secret.encode(), b"webhook")
    return base64.b64encode(nonce + sealed).decode()


def decrypt_secret(settings: Settings, ciphertext: str) -> str:
    raw = base64.b64decode(ciphertext)
    return AESGCM(_key(settings)).decrypt(raw[:12], raw[12:], b"webhook").decode()


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    key = base64.b64decode(secret.removeprefix(SECRET_PREFIX))
    signed = f"{message_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


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
        or (
            isinstance(address, ipaddress.IPv4Address)
            and address in ipaddress.ip_network("100.64.0.0/10")
        )
    )


@dataclass(frozen=True, slots=True)
class Target:
    url: str
    scheme: str
    host: str
    port: int
    addresses: tuple[IPAddress, ...]


def check_syntax(settings: Settings, url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("https", "http") or (scheme == "http" and not settings.webhook_allow_http):
        raise UnsafeUrl(
            "The URL must use https" + (" or http" if settings.webhook_allow_http else "")
        )
    if not parts.hostname:
        raise UnsafeUrl("The URL has no host")
    if parts.username or parts.password:
        raise UnsafeUrl("The URL must not carry credentials")
    try:
        port = parts.port or (443 if scheme == "https" else 80)
    except ValueError:
        raise UnsafeUrl("The URL's port is invalid") from None
    return scheme, parts.hostname, port


async def resolve_target(settings: Settings, url: str) -> Target:
    """Resolve `url`'s host and refuse it when any address is not public
    (unless `WEBHOOK_ALLOW_PRIVATE_TARGETS`)."""
    scheme, host, port = check_syntax(settings, url)
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
    if not settings.webhook_allow_private_targets and any(
        is_forbidden_address(a) for a in addresses
    ):
        raise UnsafeUrl("The URL points to a private, loopback, link-local or metadata address")
    return Target(url=url, scheme=scheme, host=host, port=port, addresses=addresses)
