"""Opaque secrets: API keys, refresh tokens, single-use mail tokens, signatures.

Only a keyed HMAC-SHA256 of each secret (under a server-side pepper) is
stored, and stored values are compared in constant time.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
import zlib
from dataclasses import dataclass

API_KEY_PREFIX = "dsr_"
_PUBLIC_ID_BYTES = 6
_SECRET_BYTES = 30


def random_token(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def keyed_hash(pepper: str, value: str) -> str:
    return hmac.new(pepper.encode(), value.encode(), hashlib.sha256).hexdigest()


def hashes_match(expected: str, candidate: str) -> bool:
    return hmac.compare_digest(expected.encode(), candidate.encode())


def _checksum(body: str) -> str:
    return f"{zlib.crc32(body.encode()) & 0xFFFFFFFF:08x}"


@dataclass(frozen=True, slots=True)
class ApiKeyParts:
    prefix: str  # public: stored in clear, shown in lists, used for lookup
    key: str  # the whole key, shown once


def generate_api_key() -> ApiKeyParts:
    """`dsr_<public id>_<secret><crc32>`: recognisable (secret scanners), with a
    checksum that rejects typos without a database round trip."""
    public = base64.b32encode(secrets.token_bytes(_PUBLIC_ID_BYTES)).decode().rstrip("=").lower()
    prefix = f"{API_KEY_PREFIX}{public}"
    body = f"{prefix}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    return ApiKeyParts(prefix=prefix, key=body + _checksum(body))


def parse_api_key(key: str) -> str | None:
    """The key's prefix when it is well formed with a valid checksum, else None."""
    if not key.startswith(API_KEY_PREFIX) or len(key) > 200 or len(key) < 20:
        return None
    body, checksum = key[:-8], key[-8:]
    if not hmac.compare_digest(_checksum(body), checksum):
        return None
    prefix, sep, _ = body.partition("_")[2].partition("_")
    if not sep:
        return None
    return f"{API_KEY_PREFIX}{prefix}"
