"""Forged, tampered, expired and misused tokens are all refused with 401."""

from __future__ import annotations

import base64
import json
import time
import uuid
from typing import Any

import httpx
import pytest
from jose import jwt

from tests.factories import auth, login, make_tenant


def _claims(app: Any, user: Any, **overrides: Any) -> dict[str, Any]:
    settings = app.state.settings
    now = int(time.time())
    claims = {
        "sub": str(user.id),
        "tid": str(user.tenant_id),
        "sid": str(uuid.uuid4()),
        "jti": uuid.uuid4().hex,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "iss": settings.jwt_issuer,
        "aud": settings.jwt_audience,
        "type": "access",
    }
    claims.update(overrides)
    return {key: value for key, value in claims.items() if value is not None}


def _sign(app: Any, claims: dict[str, Any], key: str | None = None, alg: str = "HS256") -> str:
    secret = key or app.state.settings.jwt_secret.get_secret_value()
    return str(jwt.encode(claims, secret, algorithm=alg))


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).decode().rstrip("=")


async def _me(client: httpx.AsyncClient, token: str) -> httpx.Response:
    return await client.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {token}"})


async def test_a_well_formed_token_is_accepted(client: httpx.AsyncClient, app: Any) -> None:
    """The baseline the attacks below differ from by one thing each."""
    tenant = await make_tenant(app, roles=("owner",))
    response = await _me(client, _sign(app, _claims(app, tenant.owner)))
    assert response.status_code == 200


async def test_a_token_seen_before_still_expires(
    client: httpx.AsyncClient, app: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Tokens verified once are remembered: their expiry is still checked."""
    tenant = await make_tenant(app, roles=("owner",))
    token = _sign(app, _claims(app, tenant.owner, exp=int(time.time()) + 60))
    assert (await _me(client, token)).status_code == 200
    assert (await _me(client, token)).status_code == 200
    later = time.time() + 120
    monkeypatch.setattr(time, "time", lambda: later)
    assert (await _me(client, token)).status_code == 401


async def test_alg_none_is_refused(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner",))
    claims = _claims(app, tenant.owner)
    for alg in ("none", "None", "NONE"):
        token = f"{_b64({'alg': alg, 'typ': 'JWT'})}.{_b64(claims)}."
        response = await _me(client, token)
        assert response.status_code == 401
        assert response.headers["www-authenticate"].startswith("Bearer")


async def test_wrong_key_and_other_algorithms_are_refused(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app, roles=("owner",))
    claims = _claims(app, tenant.owner)
    assert (await _me(client, _sign(app, claims, key="another-secret-entirely"))).status_code == 401
    # The right key under an algorithm the decoder did not pin.
    assert (await _me(client, _sign(app, claims, alg="HS512"))).status_code == 401
    # A tampered payload under the original signature.
    header, _, signature = _sign(app, claims).split(".")
    elevated = _b64({**claims, "sub": str(uuid.uuid4())})
    assert (await _me(client, f"{header}.{elevated}.{signature}")).status_code == 401


@pytest.mark.parametrize(
    ("label", "overrides"),
    [
        ("expired", {"exp": int(time.time()) - 3600, "iat": int(time.time()) - 4000}),
        ("wrong audience", {"aud": "someone-else"}),
        ("wrong issuer", {"iss": "https://evil.example"}),
        ("missing exp", {"exp": None}),
        ("missing aud", {"aud": None}),
        ("missing iss", {"iss": None}),
        ("missing jti", {"jti": None}),
        ("missing iat", {"iat": None}),
        ("not yet valid", {"nbf": int(time.time()) + 3600}),
        ("refresh type", {"type": "refresh"}),
        ("no type", {"type": None}),
        ("bad subject", {"sub": "not-a-uuid"}),
        ("unknown subject", {"sub": str(uuid.uuid4())}),
    ],
)
async def test_bad_claims_are_refused(
    client: httpx.AsyncClient, app: Any, label: str, overrides: dict[str, Any]
) -> None:
    tenant = await make_tenant(app, roles=("owner",))
    response = await _me(client, _sign(app, _claims(app, tenant.owner, **overrides)))
    assert response.status_code == 401, label
    assert response.json()["code"] == "unauthenticated"


async def test_another_tenants_id_in_the_token_is_refused(
    client: httpx.AsyncClient, app: Any
) -> None:
    mine = await make_tenant(app, roles=("owner",))
    other = await make_tenant(app, roles=("owner",))
    forged = _claims(app, mine.owner, tid=str(other.id))
    assert (await _me(client, _sign(app, forged))).status_code == 401


async def test_refresh_token_is_not_an_access_token(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner",))
    tokens = await login(client, tenant.owner.email)
    response = await _me(client, tokens["refresh_token"])
    assert response.status_code == 401


async def test_access_token_is_void_after_logout(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner",))
    tokens = await login(client, tenant.owner.email)
    assert (await client.post("/api/v1/auth/logout", headers=auth(tokens))).status_code == 204
    for _ in range(2):
        assert (await _me(client, tokens["access_token"])).status_code == 401


async def test_used_refresh_token_kills_the_session(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner",))
    stolen = await login(client, tenant.owner.email)
    # The victim keeps refreshing...
    victim = stolen
    for _ in range(2):
        response = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": victim["refresh_token"]}
        )
        victim = response.json()
    # ...then the thief replays the stolen refresh token: the whole session dies.
    replay = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": stolen["refresh_token"]}
    )
    assert replay.status_code == 401
    dead = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": victim["refresh_token"]}
    )
    assert dead.status_code == 401


async def test_bearer_and_api_key_together_are_refused(client: httpx.AsyncClient, app: Any) -> None:
    from tests.factories import make_api_key

    tenant = await make_tenant(app, roles=("owner",))
    tokens = await login(client, tenant.owner.email)
    key = await make_api_key(app, tenant.id, ["users:read"])
    response = await client.get("/api/v1/users", headers={**auth(tokens), **key.headers})
    assert response.status_code == 401
