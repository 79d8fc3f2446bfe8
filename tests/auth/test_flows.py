"""Signup, login, me, refresh rotation, logout, logout-all and password change,
end to end over HTTP."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from tests.factories import PASSWORD, auth, login, make_api_key, make_tenant, run_sql, unique_email

NEW_PASSWORD = "a much better passphrase 42"


async def _signup(client: httpx.AsyncClient, **overrides: Any) -> httpx.Response:
    body = {
        "tenant_name": "Acme Archives",
        "email": unique_email("founder"),
        "password": PASSWORD,
        "full_name": "Ada Founder",
        **overrides,
    }
    return await client.post("/api/v1/auth/signup", json=body)


async def _audit_actions(app: Any, tenant_id: Any = None) -> list[str]:
    if tenant_id is None:
        rows = await run_sql(app, "SELECT action FROM audit_events ORDER BY created_at, id")
    else:
        rows = await run_sql(
            app,
            "SELECT action FROM audit_events WHERE tenant_id = :t ORDER BY created_at, id",
            t=tenant_id,
        )
    return [row[0] for row in rows]


async def test_signup_creates_tenant_owner_and_session(client: httpx.AsyncClient, app: Any) -> None:
    response = await _signup(client, email="Founder.MIXED@Example.test", tenant_slug="acme")
    assert response.status_code == 201, response.text
    assert response.headers["location"] == "/api/v1/tenant"
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == app.state.settings.access_token_ttl_seconds
    assert body["refresh_token"]
    assert body["tenant"]["slug"] == "acme"
    assert body["tenant"]["status"] == "active"
    assert body["tenant"]["plan"] == "free"
    assert body["user"]["email"] == "founder.mixed@example.test"
    assert body["user"]["roles"] == ["owner"]
    assert body["user"]["full_name"] == "Ada Founder"

    me = await client.get("/api/v1/auth/me", headers=auth(body))
    assert me.status_code == 200, me.text
    profile = me.json()
    assert profile["id"] == body["user"]["id"]
    assert profile["tenant"] == body["tenant"]
    assert profile["roles"] == ["owner"]
    assert "tenant:manage" in profile["permissions"]
    assert profile["is_superadmin"] is False

    roles = await client.get("/api/v1/roles", headers=auth(body))
    assert sorted(role["name"] for role in roles.json()["items"]) == [
        "admin",
        "member",
        "owner",
        "viewer",
    ]
    actions = await _audit_actions(app, body["tenant"]["id"])
    assert actions[:2] == ["tenant.created", "user.created"]


async def test_signup_conflicts_and_password_policy(client: httpx.AsyncClient) -> None:
    first = await _signup(client, tenant_slug="taken")
    assert first.status_code == 201
    email = first.json()["user"]["email"]

    same_email = await _signup(client, email=email.upper())
    assert same_email.status_code == 409
    assert same_email.json()["code"] == "conflict"
    same_slug = await _signup(client, tenant_slug="taken")
    assert same_slug.status_code == 409

    short = await _signup(client, password="too short")
    assert short.status_code == 422
    assert short.json()["errors"][0]["loc"] == ["body", "password"]
    as_email = unique_email("same")
    equal = await _signup(client, email=as_email, password=as_email.upper())
    assert equal.status_code == 422
    too_long = await _signup(client, password="x" * 257)
    assert too_long.status_code == 422
    bad_slug = await _signup(client, tenant_slug="Not A Slug")
    assert bad_slug.status_code == 422
    # The refused signups left nothing behind: the email is still free.
    retry = await _signup(client, email=as_email)
    assert retry.status_code == 201


async def test_signup_can_be_turned_off(settings: Any) -> None:
    from backend.main import create_app

    application = create_app(settings.model_copy(update={"signup_enabled": False}))
    async with application.router.lifespan_context(application):
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            response = await _signup(http)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


async def test_login_and_failed_logins(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner",))
    owner = tenant.owner

    tokens = await login(client, owner.email.upper())  # emails are case-insensitive
    assert set(tokens) == {"access_token", "refresh_token", "token_type", "expires_in"}
    me = await client.get("/api/v1/auth/me", headers=auth(tokens))
    assert me.json()["email"] == owner.email

    wrong = await client.post(
        "/api/v1/auth/token", data={"username": owner.email, "password": "wrong password!"}
    )
    assert wrong.status_code == 401
    assert wrong.headers["www-authenticate"].startswith("Bearer")
    assert wrong.json()["code"] == "unauthenticated"
    unknown = await client.post(
        "/api/v1/auth/token", data={"username": "nobody@example.test", "password": PASSWORD}
    )
    assert unknown.status_code == 401
    assert unknown.json()["detail"] == wrong.json()["detail"]
    missing = await client.post("/api/v1/auth/token", data={"username": owner.email})
    assert missing.status_code == 422

    rows = await run_sql(
        app,
        "SELECT tenant_id, resource_id, changes->>'reason' FROM audit_events "
        "WHERE action = 'auth.login_failed' ORDER BY created_at",
    )
    assert [(row[0], row[1], row[2]) for row in rows] == [
        (tenant.id, str(owner.id), "bad_credentials"),
        (None, None, "bad_credentials"),
    ]
    assert "auth.login" in await _audit_actions(app, tenant.id)


async def test_inactive_and_deleted_users(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner", "member", "viewer"))
    member, viewer = tenant.users["member"], tenant.users["viewer"]
    member_tokens = await login(client, member.email)
    viewer_tokens = await login(client, viewer.email)

    await run_sql(app, "UPDATE users SET is_active = false WHERE id = :id", id=member.id)
    await run_sql(app, "UPDATE users SET deleted_at = now() WHERE id = :id", id=viewer.id)
    for user, tokens in ((member, member_tokens), (viewer, viewer_tokens)):
        refused = await client.post(
            "/api/v1/auth/token", data={"username": user.email, "password": PASSWORD}
        )
        assert refused.status_code == 401
        assert refused.json()["detail"] == "Incorrect email or password"
        me = await client.get("/api/v1/auth/me", headers=auth(tokens))
        assert me.status_code == 401
        refreshed = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.status_code == 401


async def test_suspended_and_deleted_tenants(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner",))
    tokens = await login(client, tenant.owner.email)
    key = await make_api_key(app, tenant.id, ["users:read"])

    await run_sql(app, "UPDATE tenants SET status = 'suspended' WHERE id = :id", id=tenant.id)
    refused = await client.post(
        "/api/v1/auth/token", data={"username": tenant.owner.email, "password": PASSWORD}
    )
    assert refused.status_code == 403
    assert refused.json()["code"] == "tenant_suspended"
    # A wrong password says nothing about the tenant.
    wrong = await client.post(
        "/api/v1/auth/token", data={"username": tenant.owner.email, "password": "not it at all"}
    )
    assert wrong.status_code == 401
    assert (await client.get("/api/v1/auth/me", headers=auth(tokens))).status_code == 401
    assert (await client.get("/api/v1/users", headers=key.headers)).status_code == 401
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refreshed.status_code == 401

    await run_sql(
        app,
        "UPDATE tenants SET status = 'active', deleted_at = now() WHERE id = :id",
        id=tenant.id,
    )
    deleted = await client.post(
        "/api/v1/auth/token", data={"username": tenant.owner.email, "password": PASSWORD}
    )
    assert deleted.status_code == 401


async def test_refresh_rotates(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner",))
    first = await login(client, tenant.owner.email)
    second = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert second.status_code == 200, second.text
    pair = second.json()
    assert pair["refresh_token"] != first["refresh_token"]
    assert pair["access_token"] != first["access_token"]
    assert (await client.get("/api/v1/auth/me", headers=auth(pair))).status_code == 200
    third = await client.post("/api/v1/auth/refresh", json={"refresh_token": pair["refresh_token"]})
    assert third.status_code == 200
    rows = await run_sql(
        app,
        "SELECT count(DISTINCT family_id), count(*), count(used_at) FROM refresh_tokens "
        "WHERE user_id = :id",
        id=tenant.owner.id,
    )
    assert tuple(rows[0]) == (1, 3, 2)

    for junk in ("not-a-token", first["access_token"]):
        refused = await client.post("/api/v1/auth/refresh", json={"refresh_token": junk})
        assert refused.status_code == 401
    malformed = await client.post("/api/v1/auth/refresh", json={})
    assert malformed.status_code == 422


async def test_reused_refresh_token_revokes_the_family(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner",))
    other_session = await login(client, tenant.owner.email)
    first = await login(client, tenant.owner.email)
    second = (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    ).json()
    third = (
        await client.post("/api/v1/auth/refresh", json={"refresh_token": second["refresh_token"]})
    ).json()

    # `first` was spent and so was its successor: a replay (a thief, say).
    replay = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert replay.status_code == 401
    # The whole family is revoked, including the newest token made from it.
    newest = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": third["refresh_token"]}
    )
    assert newest.status_code == 401
    # Another session of the same user is untouched.
    other = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": other_session["refresh_token"]}
    )
    assert other.status_code == 200
    assert "auth.session_revoked" in await _audit_actions(app, tenant.id)


async def test_refresh_grace_window_for_the_immediate_predecessor(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app, roles=("owner",))
    first = await login(client, tenant.owner.email)
    # Two tabs refresh with the same token, one after the other and then at
    # once: each gets the same new pair as the first use (idempotent), never
    # a second, independent session.
    body = {"refresh_token": first["refresh_token"]}
    tab_one = await client.post("/api/v1/auth/refresh", json=body)
    tab_two = await client.post("/api/v1/auth/refresh", json=body)
    racing = await asyncio.gather(
        *(client.post("/api/v1/auth/refresh", json=body) for _ in range(3))
    )
    assert tab_one.status_code == 200
    for answer in (tab_two, *racing):
        assert answer.status_code == 200
        assert answer.json() == tab_one.json()
    links = await run_sql(app, "SELECT count(*) FROM refresh_tokens")
    assert links[0][0] == 2  # the login's token and its one successor
    me = await client.get("/api/v1/auth/me", headers=auth(tab_one.json()))
    assert me.status_code == 200

    # Once the grace window has passed, the same replay revokes the family.
    await run_sql(
        app,
        "UPDATE refresh_tokens SET used_at = used_at - interval '1 hour' WHERE used_at IS NOT NULL",
    )
    late = await client.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert late.status_code == 401
    for tab in (tab_one, tab_two):
        dead = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": tab.json()["refresh_token"]}
        )
        assert dead.status_code == 401


async def test_expired_refresh_token(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner",))
    tokens = await login(client, tenant.owner.email)
    await run_sql(app, "UPDATE refresh_tokens SET expires_at = now() - interval '1 second'")
    refused = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
    )
    assert refused.status_code == 401


async def test_logout_ends_this_session_only(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner",))
    mine = await login(client, tenant.owner.email)
    other = await login(client, tenant.owner.email)

    response = await client.post("/api/v1/auth/logout", headers=auth(mine))
    assert response.status_code == 204
    after = await client.get("/api/v1/auth/me", headers=auth(mine))
    assert after.status_code == 401
    assert after.json()["code"] == "unauthenticated"
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": mine["refresh_token"]}
    )
    assert refreshed.status_code == 401
    assert (await client.get("/api/v1/auth/me", headers=auth(other))).status_code == 200
    assert (await client.post("/api/v1/auth/logout")).status_code == 401
    assert "auth.logout" in await _audit_actions(app, tenant.id)


async def test_logout_all_ends_every_session(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner", "member"))
    one = await login(client, tenant.owner.email)
    two = await login(client, tenant.owner.email)
    colleague = await login(client, tenant.users["member"].email)

    response = await client.post("/api/v1/auth/logout-all", headers=auth(one))
    assert response.status_code == 204
    for tokens in (one, two):
        assert (await client.get("/api/v1/auth/me", headers=auth(tokens))).status_code == 401
        refreshed = await client.post(
            "/api/v1/auth/refresh", json={"refresh_token": tokens["refresh_token"]}
        )
        assert refreshed.status_code == 401
    assert (await client.get("/api/v1/auth/me", headers=auth(colleague))).status_code == 200
    # Signing in again right away works.
    fresh = await login(client, tenant.owner.email)
    assert (await client.get("/api/v1/auth/me", headers=auth(fresh))).status_code == 200


async def test_password_change_revokes_other_sessions(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner",))
    email = tenant.owner.email
    mine = await login(client, email)
    other = await login(client, email)

    wrong = await client.post(
        "/api/v1/auth/password",
        headers=auth(mine),
        json={"current_password": "not my password", "new_password": NEW_PASSWORD},
    )
    assert wrong.status_code == 403
    weak = await client.post(
        "/api/v1/auth/password",
        headers=auth(mine),
        json={"current_password": PASSWORD, "new_password": "short"},
    )
    assert weak.status_code == 422
    same_as_email = await client.post(
        "/api/v1/auth/password",
        headers=auth(mine),
        json={"current_password": PASSWORD, "new_password": email},
    )
    assert same_as_email.status_code == 422

    changed = await client.post(
        "/api/v1/auth/password",
        headers=auth(mine),
        json={"current_password": PASSWORD, "new_password": NEW_PASSWORD},
    )
    assert changed.status_code == 200, changed.text
    renewed = changed.json()
    # This session continues with the pair returned; its earlier tokens are void...
    assert (await client.get("/api/v1/auth/me", headers=auth(renewed))).status_code == 200
    assert (await client.get("/api/v1/auth/me", headers=auth(mine))).status_code == 401
    stale = await client.post("/api/v1/auth/refresh", json={"refresh_token": mine["refresh_token"]})
    assert stale.status_code == 401
    kept = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": renewed["refresh_token"]}
    )
    assert kept.status_code == 200
    # ...and the other session is over.
    assert (await client.get("/api/v1/auth/me", headers=auth(other))).status_code == 401
    ended = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": other["refresh_token"]}
    )
    assert ended.status_code == 401

    old = await client.post("/api/v1/auth/token", data={"username": email, "password": PASSWORD})
    assert old.status_code == 401
    await login(client, email, NEW_PASSWORD)
    assert "auth.password_changed" in await _audit_actions(app, tenant.id)


@pytest.mark.parametrize(
    "path", ["/api/v1/auth/me", "/api/v1/auth/logout", "/api/v1/auth/logout-all"]
)
async def test_session_routes_refuse_api_keys(
    client: httpx.AsyncClient, app: Any, path: str
) -> None:
    tenant = await make_tenant(app, roles=("owner",))
    key = await make_api_key(app, tenant.id, ["users:read", "users:manage"])
    method = client.get if path.endswith("/me") else client.post
    response = await method(path, headers=key.headers)
    assert response.status_code == 403
    assert response.json()["code"] == "permission_denied"


async def test_swagger_authorize_uses_the_token_route(client: httpx.AsyncClient) -> None:
    schema = (await client.get("/openapi.json")).json()
    flows = schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]["flows"]
    assert flows["password"]["tokenUrl"] == "/api/v1/auth/token"
    token_op = schema["paths"]["/api/v1/auth/token"]["post"]
    assert "application/x-www-form-urlencoded" in token_op["requestBody"]["content"]
    assert token_op["operationId"] == "auth-create-token"
