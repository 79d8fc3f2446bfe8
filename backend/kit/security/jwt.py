"""Access tokens: the one module that encodes and decodes JWTs.

The decoder pins the algorithm and requires `exp`, `iat`, `iss`, `aud`, `jti`
and `sub` (python-jose accepts tokens lacking them unless told), and checks the
`type` claim, so a refresh or other token can never pass as an access token.

A token verified once is remembered (bounded, per process) with what it was
verified against: presented again, only its expiry is checked, not its
signature and claims all over again.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from uuid import UUID

from jose import JWTError, jwt

from backend.settings import Settings

ACCESS = "access"
LEEWAY_SECONDS = 5
VERIFIED_MAX = 10_000

_verified: dict[tuple[str, ...], AccessClaims] = {}


class InvalidToken(Exception):
    """The token is malformed, forged, expired or of the wrong kind."""


@dataclass(frozen=True, slots=True)
class AccessClaims:
    subject: UUID
    tenant_id: UUID
    session_id: UUID
    token_id: str
    issued_at: float  # seconds, sub-second precision (see `issue_access_token`)
    expires_at: int


def issue_access_token(
    settings: Settings,
    *,
    user_id: UUID,
    tenant_id: UUID,
    session_id: UUID,
    issued_at: float | None = None,
    token_id: str | None = None,
) -> tuple[str, AccessClaims]:
    """A signed access token; with `issued_at` and `token_id` given, the
    same token again (a refresh answered twice within its grace period)."""
    # `iat` keeps sub-second precision (a NumericDate may be fractional, RFC
    # 7519 §2), so that "every token issued before now is void" (logout-all,
    # password change: `users.tokens_valid_after`) also voids tokens issued
    # earlier in the same second, and spares the ones issued just after.
    issued = round(time.time() if issued_at is None else issued_at, 6)
    now = int(issued)
    claims = AccessClaims(
        subject=user_id,
        tenant_id=tenant_id,
        session_id=session_id,
        token_id=token_id or uuid.uuid4().hex,
        issued_at=issued,
        expires_at=now + settings.access_token_ttl_seconds,
    )
    payload = {
        "sub": str(user_id),
        "tid": str(tenant_id),
        "sid": str(session_id),
        "jti": claims.token_id,
        "iat": issued,
        "nbf": now,
        "exp": claims.expires_at,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "type": ACCESS,
    }
    token = jwt.encode(
        payload, settings.jwt_secret.get_secret_value(), algorithm=settings.jwt_algorithm
    )
    return token, claims


def decode_access_token(settings: Settings, token: str) -> AccessClaims:
    secret = settings.jwt_secret.get_secret_value()
    key = (token, secret, settings.jwt_algorithm, settings.jwt_audience, settings.jwt_issuer)
    claims = _verified.get(key)
    if claims is None:
        claims = _decode(settings, token, secret)
        if len(_verified) >= VERIFIED_MAX:
            del _verified[next(iter(_verified))]  # the oldest
        _verified[key] = claims
    elif time.time() > claims.expires_at + LEEWAY_SECONDS:
        del _verified[key]
        raise InvalidToken("Signature has expired.")
    return claims


def _decode(settings: Settings, token: str, secret: str) -> AccessClaims:
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[settings.jwt_algorithm],
            audience=settings.jwt_audience,
            issuer=settings.jwt_issuer,
            options={
                "require_exp": True,
                "require_iat": True,
                "require_aud": True,
                "require_iss": True,
                "require_jti": True,
                "require_sub": True,
                "leeway": LEEWAY_SECONDS,
            },
        )
        if payload.get("type") != ACCESS:
            raise InvalidToken("not an access token")
        return AccessClaims(
            subject=UUID(payload["sub"]),
            tenant_id=UUID(payload["tid"]),
            session_id=UUID(payload["sid"]),
            token_id=str(payload["jti"]),
            issued_at=float(payload["iat"]),
            expires_at=int(payload["exp"]),
        )
    except (JWTError, KeyError, ValueError, TypeError) as exc:
        raise InvalidToken(str(exc)) from None
