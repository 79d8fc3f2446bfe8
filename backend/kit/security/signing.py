"""Signed, expiring download links: one implementation for documents, job
artifacts and workloads' files.

A link carries `tenant`, `expires` (unix seconds) and `sig`, an HMAC-SHA256
under a key derived from `SIGNING_SECRET` over the signed resource's name
(a document id, `artifact:<job id>:<name>`, …), the tenant and the expiry.
Tampered or expired links are 403.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from datetime import UTC, datetime
from urllib.parse import urlencode
from uuid import UUID

from pydantic import BaseModel

from backend.kit.errors import DossierError
from backend.settings import Settings


class LinkInvalid(DossierError):
    status, code = 403, "permission_denied"


class DownloadUrl(BaseModel):
    """A link that downloads a file without credentials until `expires_at`."""

    url: str
    expires_at: datetime


def _signature(settings: Settings, resource: str, tenant_id: UUID, expires: int) -> str:
    key = hashlib.sha256(
        b"dossier.download.v1:" + settings.signing_secret.get_secret_value().encode()
    ).digest()
    message = f"{resource}:{tenant_id}:{expires}".encode()
    digest = hmac.new(key, message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


def sign_link(
    settings: Settings, resource: str, tenant_id: UUID, now: float | None = None
) -> tuple[dict[str, str], datetime]:
    """The query parameters of a link to `resource`, valid for
    `DOWNLOAD_URL_TTL_SECONDS`, and when it expires."""
    expires = int((now or time.time()) + settings.download_url_ttl_seconds)
    signature = _signature(settings, resource, tenant_id, expires)
    params = {"tenant": str(tenant_id), "expires": str(expires), "sig": signature}
    return params, datetime.fromtimestamp(expires, UTC)


def signed_url(
    settings: Settings, base: str, resource: str, tenant_id: UUID, **extra: str
) -> DownloadUrl:
    """`base` (the link's route) with the signature of `resource`; `extra`
    query parameters are passed along (they must be part of `resource`)."""
    params, expires_at = sign_link(settings, resource, tenant_id)
    return DownloadUrl(url=f"{base}?{urlencode({**extra, **params})}", expires_at=expires_at)


def verify_link(settings: Settings, resource: str, tenant: str, expires: str, sig: str) -> UUID:
    """The tenant a valid link to `resource` is for; 403 when tampered or expired."""
    try:
        tenant_id = UUID(tenant)
        expires_at = int(expires)
    except ValueError:
        raise LinkInvalid("The download link is invalid") from None
    expected = _signature(settings, resource, tenant_id, expires_at)
    if not hmac.compare_digest(expected.encode(), sig.encode()):
        raise LinkInvalid("The download link is invalid")
    if expires_at < time.time():
        raise LinkInvalid("The download link has expired")
    return tenant_id
