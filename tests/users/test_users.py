"""The users routes: lists, create, get, patch, delete and restore, role
assignment, and the rules against escalation and losing the last owner."""

from __future__ import annotations

from typing import Any

import httpx

from backend.kit.pagination import CursorPage, Page
from backend.roles.permissions import catalogue
from backend.users.schemas import UserOut
from tests.factories import (
    PASSWORD,
    bearer_headers,
    login,
    make_role,
    make_tenant,
    make_user,
    run_sql,
    unique_email,
)

ROLES = ("owner", "admin", "member", "viewer")


async def _actions(app: Any, resource_id: Any) -> list[str]:
    rows = await run_sql(
        app,
        "SELECT action FROM audit_events WHERE resource_id = :id ORDER BY created_at, id",
        id=str(resource_id),
    )
    return [row[0] for row in rows]


async def test_list_filters_sorts_and_pages(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=ROLES)
    inactive = await make_user(
        app, tenant.id, ("viewer",), email="zed-inactive@example.test", is_active=False
    )
    await make_tenant(app, roles=("owner", "member"))  # never visible here
    headers = bearer_headers(app, tenant.users["viewer"])

    everyone = await client.get("/api/v1/users", headers=headers)
    assert everyone.status_code == 200
    body = everyone.json()
    assert body["total"] == 5
    assert body["page"] == 1
    assert body["pages"] == 1
    by_id = {item["id"]: item for item in body["items"]}
    assert by_id[str(tenant.owner.id)]["roles"] == ["owner"]
    assert set(by_id[str(tenant.owner.id)]) >= {
        "id",
        "email",
        "full_name",
        "is_active",
        "roles",
        "created_at",
        "updated_at",
    }
    assert "password_hash" not in by_id[str(tenant.owner.id)]

    viewers = (await client.get("/api/v1/users?role=viewer", headers=headers)).json()
    assert {item["id"] for item in viewers["items"]} == {
        str(tenant.users["viewer"].id),
        str(inactive.id),
    }
    inactive_only = (await client.get("/api/v1/users?active=false", headers=headers)).json()
    assert [item["id"] for item in inactive_only["items"]] == [str(inactive.id)]
    contains = (await client.get("/api/v1/users?email=ZED-INACT", headers=headers)).json()
    assert [item["id"] for item in contains["items"]] == [str(inactive.id)]
    wildcard = (await client.get("/api/v1/users?email=%25", headers=headers)).json()
    assert wildcard["items"] == []  # `%` is matched literally

    emails = (await client.get("/api/v1/users?sort=-email", headers=headers)).json()
    listed = [item["email"] for item in emails["items"]]
    assert listed == sorted(listed, reverse=True)

    first = (await client.get("/api/v1/users?limit=2&sort=email", headers=headers)).json()
    assert len(first["items"]) == 2
    assert first["next_cursor"]
    seen = [item["email"] for item in first["items"]]
    cursor = first["next_cursor"]
    while cursor:
        page = (
            await client.get(
                "/api/v1/users",
                params={"limit": 2, "sort": "email", "cursor": cursor},
                headers=headers,
            )
        ).json()
        seen += [item["email"] for item in page["items"]]
        cursor = page["next_cursor"]
    assert seen == sorted(item["email"] for item in body["items"])

    paged = (await client.get("/api/v1/users?page=2&page_size=2", headers=headers)).json()
    assert (paged["total"], paged["page"], paged["pages"], len(paged["items"])) == (5, 2, 3, 2)

    for bad in ("page_size=101", "limit=0", "sort=password_hash", "cursor=garbage", "active=maybe"):
        response = await client.get(f"/api/v1/users?{bad}", headers=headers)
        assert response.status_code == 422, bad
        assert response.json()["code"] == "validation_error"


async def test_include_deleted_needs_users_manage(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner", "viewer"))
    gone = await make_user(app, tenant.id)
    owner = bearer_headers(app, tenant.owner)
    assert (await client.delete(f"/api/v1/users/{gone.id}", headers=owner)).status_code == 204

    listed = (await client.get("/api/v1/users", headers=owner)).json()
    assert str(gone.id) not in {item["id"] for item in listed["items"]}
    with_deleted = (await client.get("/api/v1/users?include_deleted=true", headers=owner)).json()
    deleted = [item for item in with_deleted["items"] if item["id"] == str(gone.id)]
    assert deleted[0]["deleted_at"] is not None
    viewer = bearer_headers(app, tenant.users["viewer"])
    refused = await client.get("/api/v1/users?include_deleted=true", headers=viewer)
    assert refused.status_code == 403


async def test_create_user(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner", "admin"))
    admin = bearer_headers(app, tenant.users["admin"])
    email = unique_email("new")

    response = await client.post(
        "/api/v1/users",
        headers=admin,
        json={
            "email": email.upper(),
            "password": PASSWORD,
            "full_name": "New Person",
            "roles": ["member", "Viewer"],
        },
    )
    assert response.status_code == 201, response.text
    created = response.json()
    assert response.headers["location"] == f"/api/v1/users/{created['id']}"
    assert created["email"] == email
    assert created["roles"] == ["member", "viewer"]
    assert created["is_active"] is True
    await login(client, email)
    assert await _actions(app, created["id"]) == ["user.created"]
    changes = await run_sql(
        app, "SELECT changes FROM audit_events WHERE resource_id = :id", id=created["id"]
    )
    assert "password" not in str(changes[0][0]).lower()

    duplicate = await client.post(
        "/api/v1/users", headers=admin, json={"email": email, "password": PASSWORD}
    )
    assert duplicate.status_code == 409
    # Emails are unique across tenants too.
    elsewhere = await make_tenant(app, roles=("owner",))
    other_tenant = await client.post(
        "/api/v1/users",
        headers=bearer_headers(app, elsewhere.owner),
        json={"email": email, "password": PASSWORD},
    )
    assert other_tenant.status_code == 409

    for body, loc in (
        ({"email": unique_email(), "password": "short"}, "password"),
        ({"email": "not-an-email", "password": PASSWORD}, "email"),
        ({"email": unique_email(), "password": PASSWORD, "roles": ["nope"]}, "roles"),
    ):
        refused = await client.post("/api/v1/users", headers=admin, json=body)
        assert refused.status_code == 422, body
        assert refused.json()["errors"][0]["loc"][:2] == ["body", loc]

    # An admin lacks `tenant:manage`, so cannot make an owner.
    escalation = await client.post(
        "/api/v1/users",
        headers=admin,
        json={"email": unique_email(), "password": PASSWORD, "roles": ["owner"]},
    )
    assert escalation.status_code == 403
    assert escalation.json()["code"] == "permission_denied"


async def test_get_user(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner", "viewer"))
    other = await make_tenant(app, roles=("owner",))
    viewer = bearer_headers(app, tenant.users["viewer"])
    response = await client.get(f"/api/v1/users/{tenant.owner.id}", headers=viewer)
    assert response.status_code == 200
    assert response.json()["roles"] == ["owner"]
    hidden = await client.get(f"/api/v1/users/{other.owner.id}", headers=viewer)
    assert hidden.status_code == 404
    assert hidden.json()["code"] == "not_found"
    bad = await client.get("/api/v1/users/not-a-uuid", headers=viewer)
    assert bad.status_code == 422


async def test_patch_user(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner", "admin", "member"))
    admin = bearer_headers(app, tenant.users["admin"])
    member = tenant.users["member"]
    member_tokens = await login(client, member.email)

    renamed = await client.patch(
        f"/api/v1/users/{member.id}", headers=admin, json={"full_name": "Renamed"}
    )
    assert renamed.status_code == 200
    assert renamed.json()["full_name"] == "Renamed"

    deactivated = await client.patch(
        f"/api/v1/users/{member.id}", headers=admin, json={"is_active": False}
    )
    assert deactivated.json()["is_active"] is False
    me = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {member_tokens['access_token']}"}
    )
    assert me.status_code == 401
    refreshed = await client.post(
        "/api/v1/auth/refresh", json={"refresh_token": member_tokens["refresh_token"]}
    )
    assert refreshed.status_code == 401

    reactivated = await client.patch(
        f"/api/v1/users/{member.id}", headers=admin, json={"is_active": True}
    )
    assert reactivated.json()["is_active"] is True
    await login(client, member.email)

    unknown_field = await client.patch(
        f"/api/v1/users/{member.id}", headers=admin, json={"email": "x@example.test"}
    )
    assert unknown_field.status_code == 422
    # An admin cannot deactivate an owner (who holds more than the admin).
    refused = await client.patch(
        f"/api/v1/users/{tenant.owner.id}", headers=admin, json={"is_active": False}
    )
    assert refused.status_code == 403
    assert await _actions(app, member.id) == ["user.updated"] * 3


async def test_last_owner_cannot_be_removed(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner", "member"))
    owner = tenant.owner
    owner_headers = bearer_headers(app, owner)
    # A custom role with every permission, held by someone who is not an owner.
    await make_role(app, tenant.id, "deputy", catalogue.names())
    deputy = await make_user(app, tenant.id, ("deputy",))
    deputy_headers = bearer_headers(app, deputy)

    demote = await client.put(
        f"/api/v1/users/{owner.id}/roles", headers=owner_headers, json={"roles": ["admin"]}
    )
    assert demote.status_code == 409
    assert demote.json()["code"] == "last_owner"
    deactivate = await client.patch(
        f"/api/v1/users/{owner.id}", headers=deputy_headers, json={"is_active": False}
    )
    assert deactivate.status_code == 409
    assert deactivate.json()["code"] == "last_owner"
    delete = await client.delete(f"/api/v1/users/{owner.id}", headers=deputy_headers)
    assert delete.status_code == 409
    assert delete.json()["code"] == "last_owner"
    strip = await client.put(
        f"/api/v1/users/{owner.id}/roles", headers=deputy_headers, json={"roles": []}
    )
    assert strip.json()["code"] == "last_owner"

    # With a second active owner, the first may step down.
    second = await make_user(app, tenant.id, ("owner",))
    stepped_down = await client.put(
        f"/api/v1/users/{owner.id}/roles", headers=owner_headers, json={"roles": ["admin"]}
    )
    assert stepped_down.status_code == 200
    assert stepped_down.json()["roles"] == ["admin"]
    # ...and now the second is the last one.
    last = await client.delete(f"/api/v1/users/{second.id}", headers=deputy_headers)
    assert last.json()["code"] == "last_owner"


async def test_inactive_owner_does_not_count(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner",))
    await make_user(app, tenant.id, ("owner",), is_active=False)
    response = await client.patch(
        f"/api/v1/users/{tenant.owner.id}",
        headers=bearer_headers(app, tenant.owner),
        json={"is_active": False},
    )
    assert response.status_code == 409
    assert response.json()["code"] == "last_owner"


async def test_delete_and_restore(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner", "admin", "member"))
    admin_user = tenant.users["admin"]
    admin = bearer_headers(app, admin_user)
    member = tenant.users["member"]
    member_tokens = await login(client, member.email)

    assert (await client.delete(f"/api/v1/users/{member.id}", headers=admin)).status_code == 204
    assert (await client.get(f"/api/v1/users/{member.id}", headers=admin)).status_code == 404
    assert (await client.delete(f"/api/v1/users/{member.id}", headers=admin)).status_code == 404
    me = await client.get(
        "/api/v1/auth/me", headers={"Authorization": f"Bearer {member_tokens['access_token']}"}
    )
    assert me.status_code == 401
    refused = await client.post(
        "/api/v1/auth/token", data={"username": member.email, "password": PASSWORD}
    )
    assert refused.status_code == 401

    restored = await client.post(f"/api/v1/users/{member.id}/restore", headers=admin)
    assert restored.status_code == 200
    assert restored.json()["deleted_at"] is None
    assert restored.json()["roles"] == ["member"]
    await login(client, member.email)

    self_delete = await client.delete(f"/api/v1/users/{admin_user.id}", headers=admin)
    assert self_delete.status_code == 409
    owner_delete = await client.delete(f"/api/v1/users/{tenant.owner.id}", headers=admin)
    assert owner_delete.status_code == 403
    assert await _actions(app, member.id) == ["user.deleted", "user.restored"]


async def test_restore_refuses_a_taken_email(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner",))
    owner = bearer_headers(app, tenant.owner)
    email = unique_email("reused")
    gone = await make_user(app, tenant.id, email=email)
    assert (await client.delete(f"/api/v1/users/{gone.id}", headers=owner)).status_code == 204
    replacement = await client.post(
        "/api/v1/users", headers=owner, json={"email": email, "password": PASSWORD}
    )
    assert replacement.status_code == 201
    conflict = await client.post(f"/api/v1/users/{gone.id}/restore", headers=owner)
    assert conflict.status_code == 409


async def test_set_roles(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner", "admin", "member"))
    admin = bearer_headers(app, tenant.users["admin"])
    member = tenant.users["member"]

    promoted = await client.put(
        f"/api/v1/users/{member.id}/roles", headers=admin, json={"roles": ["admin", "viewer"]}
    )
    assert promoted.status_code == 200
    assert promoted.json()["roles"] == ["admin", "viewer"]
    member_headers = bearer_headers(app, member)
    me = (await client.get("/api/v1/auth/me", headers=member_headers)).json()
    assert "users:manage" in me["permissions"]

    unknown = await client.put(
        f"/api/v1/users/{member.id}/roles", headers=admin, json={"roles": ["ghost"]}
    )
    assert unknown.status_code == 422
    to_owner = await client.put(
        f"/api/v1/users/{member.id}/roles", headers=admin, json={"roles": ["owner"]}
    )
    assert to_owner.status_code == 403
    # An admin may not take `owner` away from an owner either.
    demote_owner = await client.put(
        f"/api/v1/users/{tenant.owner.id}/roles", headers=admin, json={"roles": ["member"]}
    )
    assert demote_owner.status_code == 403
    rows = await run_sql(
        app,
        "SELECT changes FROM audit_events "
        "WHERE action = 'user.roles_changed' AND resource_id = :id",
        id=str(member.id),
    )
    assert rows[0][0] == {"roles": {"before": ["member"], "after": ["admin", "viewer"]}}


async def test_member_cannot_grant_itself_admin(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner", "member"))
    member = tenant.users["member"]
    plain = await client.put(
        f"/api/v1/users/{member.id}/roles",
        headers=bearer_headers(app, member),
        json={"roles": ["member", "admin"]},
    )
    assert plain.status_code == 403
    # Even holding `users:manage` (through a custom role), granting `admin`
    # would hand out permissions the member lacks.
    await make_role(app, tenant.id, "people-manager", ["users:read", "users:manage"])
    manager = await make_user(app, tenant.id, ("member", "people-manager"))
    escalate = await client.put(
        f"/api/v1/users/{manager.id}/roles",
        headers=bearer_headers(app, manager),
        json={"roles": ["member", "people-manager", "admin"]},
    )
    assert escalate.status_code == 403
    assert escalate.json()["code"] == "permission_denied"
    me = (await client.get("/api/v1/auth/me", headers=bearer_headers(app, manager))).json()
    assert sorted(me["roles"]) == ["member", "people-manager"]


async def test_keyset_pages_walk_through_null_sort_values(
    client: httpx.AsyncClient, app: Any
) -> None:
    """Users without a `full_name` sort last either way; every user appears
    exactly once however small the pages are."""
    tenant = await make_tenant(app, roles=("owner",))
    headers = bearer_headers(app, tenant.owner)
    for name in ("Ada", None, "Grace", None, "Ada"):
        body = {"email": unique_email("walk"), "password": PASSWORD, "full_name": name}
        assert (await client.post("/api/v1/users", json=body, headers=headers)).status_code == 201
    everyone = {
        user["id"] for user in (await client.get("/api/v1/users", headers=headers)).json()["items"]
    }
    assert len(everyone) == 6
    for sort in ("full_name", "-full_name"):
        seen: list[str] = []
        names: list[str | None] = []
        params: dict[str, Any] = {"limit": 1, "sort": sort}
        while True:
            page = (await client.get("/api/v1/users", params=params, headers=headers)).json()
            seen += [user["id"] for user in page["items"]]
            names += [user["full_name"] for user in page["items"]]
            if not page["next_cursor"]:
                break
            params["cursor"] = page["next_cursor"]
        assert sorted(seen) == sorted(everyone)
        present = [name for name in names if name is not None]
        assert present == sorted(present, reverse=sort.startswith("-"))
        assert names[len(present) :] == [None] * (len(names) - len(present))


async def test_list_bytes_are_what_the_response_model_answers(
    client: httpx.AsyncClient, app: Any
) -> None:
    """The user list is serialised from rows by orjson: each item must be
    what `UserOut` answers for the same user (`GET /users/{id}` goes through
    the model), and the envelopes validate as the route's response model."""
    tenant = await make_tenant(app, roles=ROLES)
    headers = bearer_headers(app, tenant.users["owner"])
    for params in ({"limit": "2"}, {"page_size": "10"}):
        listed = await client.get("/api/v1/users", headers=headers, params=params)
        assert listed.headers["content-type"] == "application/json"
        body = listed.json()
        model = CursorPage[UserOut] if "limit" in params else Page[UserOut]
        assert model.model_validate(body).model_dump(mode="json") == body
        for item in body["items"]:
            single = await client.get(f"/api/v1/users/{item['id']}", headers=headers)
            assert item == single.json()
