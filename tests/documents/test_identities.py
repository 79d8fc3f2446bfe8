"""Every document, upload and case route against each identity: owner,
member, viewer, API key with and without the scope, anonymous, another
tenant."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.documents.helpers import unique_pdf, upload
from tests.factories import bearer_headers, make_api_key, make_tenant

IDENTITIES = [
    "owner",
    "member",
    "viewer",
    "key_scoped",
    "key_unscoped",
    "anonymous",
    "other_tenant",
]

# (method, path template, body kind, permission needed)
ROUTES = [
    ("GET", "/api/v1/documents", None, "documents:read"),
    ("GET", "/api/v1/documents/{document}", None, "documents:read"),
    ("GET", "/api/v1/documents/{document}/content", None, "documents:read"),
    ("GET", "/api/v1/documents/{document}/download-url", None, "documents:read"),
    ("PATCH", "/api/v1/documents/{document}", {"title": "x"}, "documents:write"),
    ("POST", "/api/v1/documents", "file", "documents:write"),
    ("DELETE", "/api/v1/documents/{document}", None, "documents:delete"),
    ("POST", "/api/v1/documents/{document}/restore", None, "documents:delete"),
    ("POST", "/api/v1/uploads", {"filename": "a.pdf", "size": 10}, "documents:write"),
    ("GET", "/api/v1/uploads/{upload}", None, "documents:write"),
    ("GET", "/api/v1/cases", None, "cases:read"),
    ("GET", "/api/v1/cases/{case}", None, "cases:read"),
    ("GET", "/api/v1/cases/{case}/timeline", None, "cases:read"),
    ("POST", "/api/v1/cases", {"title": "x"}, "cases:write"),
    ("PATCH", "/api/v1/cases/{case}", {"priority": "high"}, "cases:write"),
    ("DELETE", "/api/v1/cases/{case}", None, "cases:delete"),
]
ROLE_PERMISSIONS = {
    "owner": {
        "documents:read",
        "documents:write",
        "documents:delete",
        "cases:read",
        "cases:write",
        "cases:delete",
    },
    "member": {"documents:read", "documents:write", "cases:read", "cases:write"},
    "viewer": {"documents:read", "cases:read"},
}


@pytest.mark.parametrize("identity", IDENTITIES)
async def test_identity_matrix(client: httpx.AsyncClient, app: Any, identity: str) -> None:
    tenant = await make_tenant(app, roles=("owner", "member", "viewer"))
    owner = bearer_headers(app, tenant.owner)
    for method, template, body, permission in ROUTES:
        document = (await upload(client, owner)).json()
        case = (await client.post("/api/v1/cases", headers=owner, json={"title": "c"})).json()
        created = await client.post(
            "/api/v1/uploads", headers=owner, json={"filename": "a.pdf", "size": 10}
        )
        path = template.format(
            document=document["id"], case=case["id"], upload=created.json()["id"]
        )
        if template.endswith("/restore"):
            await client.delete(f"/api/v1/documents/{document['id']}", headers=owner)

        headers: dict[str, str]
        if identity in ROLE_PERMISSIONS:
            headers = bearer_headers(app, tenant.users[identity])
            allowed = permission in ROLE_PERMISSIONS[identity]
        elif identity == "key_scoped":
            headers = (await make_api_key(app, tenant.id, [permission])).headers
            allowed = True
        elif identity == "key_unscoped":
            other_scope = "jobs:read"
            headers = (await make_api_key(app, tenant.id, [other_scope])).headers
            allowed = False
        elif identity == "anonymous":
            headers, allowed = {}, False
        else:
            stranger = await make_tenant(app)
            headers, allowed = bearer_headers(app, stranger.owner), True

        if body == "file":
            answer = await client.post(
                "/api/v1/documents",
                headers=headers,
                files={"file": ("a.pdf", unique_pdf(), "application/pdf")},
            )
        else:
            answer = await client.request(
                method, path, headers=headers, json=body if isinstance(body, dict) else None
            )
        where = f"{identity} {method} {template}"
        if identity == "anonymous":
            assert answer.status_code == 401, where
            assert "WWW-Authenticate" in answer.headers
        elif not allowed:
            assert answer.status_code == 403, where
            assert answer.json()["code"] == "permission_denied"
        elif identity == "other_tenant" and "{" in template:
            assert answer.status_code == 404, where
        else:
            assert answer.status_code in (200, 201, 204), (where, answer.text)
