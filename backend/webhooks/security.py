"""Webhook secrets and Standard Webhooks signatures.

* The secret is `whsec_` + base64 of 32 random bytes, shown once; it is kept
  encrypted (AES-GCM under a key derived from `SIGNING_SECRET`), because the
  worker needs it to sign.
* `webhook-signature` is `v1,` + base64(HMAC-SHA256(secret bytes,
  "{webhook-id}.{webhook-timestamp}.{body}")).
* Endpoints pass the SSRF guard of `backend.kit.security.ssrf` at creation,
  update and every delivery.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import secrets

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from backend.settings import Settings

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret


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
