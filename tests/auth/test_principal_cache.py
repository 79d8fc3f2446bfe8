"""The per-process principal cache never outlives a change: each credential
is used (and so cached) first, the change goes through the API, and the very
next request sees it."""

from __future__ import annotations

import zlib
from typing import Any

import httpx
from redis.asyncio import Redis

from backend.auth.epochs import epoch_key
from backend.main import create_app
from backend.settings import Settings
from tests.factories import PASSWORD, auth, login, make_api_key, make_role, make_tenant, make_user

ME = "/api/v1/auth/me"
USERS = "/api/v1/users"


async def _warm(client: httpx.AsyncClient, url: str, headers: dict[str, str]) -> None:
    for _ in range(3):  # the first call fills the cache, the others use it
        assert (await client.get(url, headers=headers)).status_code == 200


async def _owner_and_member(
    client: httpx.AsyncClient, app: Any
) -> tuple[Any, dict[str, str], dict[str, str]]:
    """A tenant, and its owner's and member's signed-in headers."""
    tenant = await make_tenant(app, roles=("owner", "member"))
    owner = auth(await login(client, tenant.owner.email))
    member = auth(await login(client, tenant.users["member"].email))
    return tenant, owner, member


async def test_deactivated_user_is_refused_at_once(client: httpx.AsyncClient, app: Any) -> None:
    tenant, owner, member = await _owner_and_member(client, app)
    await _warm(client, ME, member)

    member_id = tenant.users["member"].id
    answer = await client.patch(f"{USERS}/{member_id}", json={"is_active": False}, headers=owner)
    assert answer.status_code == 200
    assert (await client.get(ME, headers=member)).status_code == 401


async def test_deleted_user_is_refused_at_once(client: httpx.AsyncClient, app: Any) -> None:
    tenant, owner, member = await _owner_and_member(client, app)
    await _warm(client, USERS, member)

    member_id = tenant.users["member"].id
    assert (await client.delete(f"{USERS}/{member_id}", headers=owner)).status_code == 204
    assert (await client.get(USERS, headers=member)).status_code == 401
    restored = await client.post(f"{USERS}/{member_id}/restore", headers=owner)
    assert restored.status_code == 200
    # Deleting ended the session for good; a new sign-in works again.
    assert (await client.get(USERS, headers=member)).status_code == 401
    again = auth(await login(client, tenant.users["member"].email))
    assert (await client.get(USERS, headers=again)).status_code == 200


async def test_new_roles_apply_on_the_next_request(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner", "viewer"))
    owner = auth(await login(client, tenant.owner.email))
    viewer = auth(await login(client, tenant.users["viewer"].email))
    await _warm(client, ME, viewer)
    assert (await client.get("/api/v1/audit-events", headers=viewer)).status_code == 403

    viewer_id = tenant.users["viewer"].id
    answer = await client.put(
        f"{USERS}/{viewer_id}/roles", json={"roles": ["admin"]}, headers=owner
    )
    assert answer.status_code == 200
    assert (await client.get("/api/v1/audit-events", headers=viewer)).status_code == 200
    me = (await client.get(ME, headers=viewer)).json()
    assert me["roles"] == ["admin"]
    assert "audit:read" in me["permissions"]

    # Removing roles only (no assignment added) is seen too.
    answer = await client.put(f"{USERS}/{viewer_id}/roles", json={"roles": []}, headers=owner)
    assert answer.status_code == 200
    assert (await client.get(ME, headers=viewer)).json()["permissions"] == []
    assert (await client.get(USERS, headers=viewer)).status_code == 403


async def test_role_permission_edit_applies_to_holders(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner",))
    role = await make_role(app, tenant.id, "auditor", ["audit:read", "users:read"])
    user = await make_user(app, tenant.id, roles=("auditor",))
    owner = auth(await login(client, tenant.owner.email))
    auditor = auth(await login(client, user.email))
    await _warm(client, "/api/v1/audit-events", auditor)

    answer = await client.patch(
        f"/api/v1/roles/{role.id}", json={"permissions": ["users:read"]}, headers=owner
    )
    assert answer.status_code == 200
    assert (await client.get("/api/v1/audit-events", headers=auditor)).status_code == 403
    assert (await client.get(USERS, headers=auditor)).status_code == 200


async def test_profile_changes_show_in_me(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner",))
    owner = auth(await login(client, tenant.owner.email))
    await _warm(client, ME, owner)

    answer = await client.patch(
        f"{USERS}/{tenant.owner.id}", json={"full_name": "Grace Renamed"}, headers=owner
    )
    assert answer.status_code == 200
    renamed = await client.patch("/api/v1/tenant", json={"name": "Renamed Org"}, headers=owner)
    assert renamed.status_code == 200
    me = (await client.get(ME, headers=owner)).json()
    assert me["full_name"] == "Grace Renamed"
    assert me["tenant"]["name"] == "Renamed Org"


async def test_revoked_api_key_is_refused_at_once(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner",))
    key = await make_api_key(app, tenant.id, ["users:read"])
    owner = auth(await login(client, tenant.owner.email))
    await _warm(client, USERS, key.headers)

    assert (await client.delete(f"/api/v1/api-keys/{key.id}", headers=owner)).status_code == 204
    assert (await client.get(USERS, headers=key.headers)).status_code == 401


async def test_wrong_secret_of_a_cached_key_is_refused(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner",))
    key = await make_api_key(app, tenant.id, ["users:read"])
    await _warm(client, USERS, key.headers)

    # Same prefix, another secret, a valid checksum: only the hash can tell.
    body = f"{key.key[:-8].rsplit('_', 1)[0]}_{'A' * 43}"
    forged = body + f"{zlib.crc32(body.encode()) & 0xFFFFFFFF:08x}"
    assert (await client.get(USERS, headers={"X-API-Key": forged})).status_code == 401
    assert (await client.get(USERS, headers=key.headers)).status_code == 200


async def test_suspended_tenant_is_refused_at_once(client: httpx.AsyncClient, app: Any) -> None:
    platform = await make_tenant(app, "Platform", superadmin=True)
    root = auth(await login(client, platform.owner.email))
    tenant = await make_tenant(app, roles=("owner",))
    key = await make_api_key(app, tenant.id, ["users:read"])
    owner = auth(await login(client, tenant.owner.email))
    await _warm(client, USERS, owner)
    await _warm(client, USERS, key.headers)

    url = f"/api/v1/admin/tenants/{tenant.id}"
    assert (await client.patch(url, json={"status": "suspended"}, headers=root)).status_code == 200
    assert (await client.get(USERS, headers=owner)).status_code == 401
    assert (await client.get(USERS, headers=key.headers)).status_code == 401

    assert (await client.patch(url, json={"status": "active"}, headers=root)).status_code == 200
    assert (await client.get(USERS, headers=owner)).status_code == 200
    assert (await client.get(USERS, headers=key.headers)).status_code == 200


async def test_password_change_ends_other_cached_sessions(
    client: httpx.AsyncClient, app: Any
) -> None:
    tenant = await make_tenant(app, roles=("owner",))
    mine = auth(await login(client, tenant.owner.email))
    other = auth(await login(client, tenant.owner.email))
    await _warm(client, ME, other)

    changed = await client.post(
        "/api/v1/auth/password",
        json={"current_password": PASSWORD, "new_password": "a new passphrase 42"},
        headers=mine,
    )
    assert changed.status_code == 200, changed.text
    assert (await client.get(ME, headers=other)).status_code == 401


async def test_sign_ins_leave_cached_principals_good(
    client: httpx.AsyncClient, app: Any, redis: Redis
) -> None:
    """A login stamps `last_login_at` only: no new epoch, so one user's
    sign-in does not empty the tenant's cache; a real change does."""
    tenant = await make_tenant(app, roles=("owner", "member"))
    owner = auth(await login(client, tenant.owner.email))
    await _warm(client, ME, owner)
    key = epoch_key(app.state.settings.redis_key_prefix, tenant.id)
    before = await redis.get(key)
    await login(client, tenant.users["member"].email)
    assert await redis.get(key) == before
    member_id = tenant.users["member"].id
    renamed = await client.patch(f"{USERS}/{member_id}", json={"full_name": "New"}, headers=owner)
    assert renamed.status_code == 200
    assert await redis.get(key) != before


async def test_a_change_in_one_process_voids_the_cache_of_another(
    client: httpx.AsyncClient, app: Any, settings: Settings
) -> None:
    tenant, owner, member = await _owner_and_member(client, app)
    other = create_app(settings)
    async with other.router.lifespan_context(other):
        transport = httpx.ASGITransport(app=other, client=("127.0.0.1", 50001))
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as second:
            await _warm(second, ME, member)
            member_id = tenant.users["member"].id
            answer = await client.patch(
                f"{USERS}/{member_id}", json={"is_active": False}, headers=owner
            )
            assert answer.status_code == 200
            assert (await second.get(ME, headers=member)).status_code == 401
