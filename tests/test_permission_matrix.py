"""The permission matrix: every route against every kind of caller.

Identities: the four system roles of one tenant (`owner`, `admin`, `member`,
`viewer`), an API key holding the route's permission (`key_with`), an API key
holding every permission but that one (`key_without`), no credentials
(`anonymous`), the owner of another tenant (`other_tenant`) and a platform
admin (`superadmin`, in its own platform tenant).

Expected answers follow SPEC: 2xx with the permission, 403 without it, 401
without credentials, and 404 for another tenant's resource (item routes; on
collection routes another tenant's owner acts on its own tenant). Admin
routes admit superadmins only — never API keys, whatever their scopes.

Every documented route has a row (`test_every_route_is_in_the_matrix` fails on a
missing one): to cover a new route, append a `Route` to `ROUTES` (`_resource`,
`_deletable` and `_reads` make the rows of the common shapes).
"""

from __future__ import annotations

import hashlib
import re
import struct
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Protocol

import httpx
import pytest
from sqlalchemy import text

from backend.documents.service import document_service
from backend.kit.db import system_scope, tenant_scope
from backend.kit.storage import get_storage, key_for
from backend.plugins import PLUGINS
from backend.roles.permissions import Permission, catalogue
from tests.documents.helpers import unique_pdf
from tests.documents.intelligence.corpus import text_page
from tests.factories import (
    PASSWORD,
    TenantFixture,
    bearer_headers,
    make_api_key,
    make_tenant,
    unique_email,
)

CANDIDATES_READ, CANDIDATES_WRITE = "candidates:read", "candidates:write"
SUPERADMIN = "superadmin"  # `Route.permission` of platform admin routes
PUBLIC = "public"  # `Route.permission` of routes that need no credentials
IDENTITIES = (
    "owner",
    "admin",
    "member",
    "viewer",
    "key_with",
    "key_without",
    "anonymous",
    "other_tenant",
    "superadmin",
)
ALL = [
    *(str(permission) for permission in Permission),
    *(spec.name for plugin in PLUGINS for spec in plugin.permissions),
]


@dataclass
class World:
    app: Any
    tenant: TenantFixture  # the tenant whose resources the routes address
    other: TenantFixture
    platform: TenantFixture  # the superadmin's


Setup = Callable[[World, httpx.AsyncClient], Awaitable[dict[str, str]]]
Body = Callable[[World], Any]


@dataclass
class Route:
    method: str
    path: str  # `{name}` placeholders are filled by `setup`
    permission: str | None  # None: any authenticated caller; SUPERADMIN: platform admins
    status: int = 200
    body: Callable[[World, dict[str, str]], Any] | None = None
    form: Callable[[World, dict[str, str]], Any] | None = None
    files: Callable[[World, dict[str, str]], Any] | None = None
    content: bytes | None = None  # a raw request body
    setup: Setup | None = None  # makes a fresh resource in `world.tenant` per identity
    item: bool = False  # addresses one resource of `world.tenant`: other tenants get 404
    overrides: dict[str, int] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.method} {self.path}"


class Resource(Protocol):
    """A set-up that can also make its resource soft-deleted already."""

    def __call__(
        self, world: World, client: httpx.AsyncClient, *, deleted: bool = False
    ) -> Awaitable[dict[str, str]]: ...


def _reads(permission: str, setup: Setup, *paths: str, status: int = 200) -> list[Route]:
    """GET rows addressing one resource of `world.tenant` that `setup` makes."""
    return [Route("GET", path, permission, status, setup=setup, item=True) for path in paths]


def _deletable(path: str, permission: str, setup: Resource) -> list[Route]:
    """DELETE `path` (on a live resource) and POST `path`/restore (on a deleted one)."""
    return [
        Route("DELETE", path, permission, 204, setup=setup, item=True),
        Route("POST", f"{path}/restore", permission, setup=partial(setup, deleted=True), item=True),
    ]


def _resource(
    path: str,
    read: str,
    write: str,
    setup: Resource,
    *,
    patch: Callable[[World, dict[str, str]], Any] | None = None,
    delete: str | None = None,
) -> list[Route]:
    """The rows of one soft-deletable resource: GET, PATCH (with the body
    `patch`, when it has one), DELETE and restore (these two need `delete`,
    `write` unless given)."""
    rows = _reads(read, setup, path)
    if patch is not None:
        rows.append(Route("PATCH", path, write, setup=setup, item=True, body=patch))
    return rows + _deletable(path, delete or write, setup)


def _permissions_of(identity: str) -> frozenset[str]:
    if identity in catalogue.system_roles():
        return catalogue.system_role(identity)
    return frozenset(ALL) if identity in ("other_tenant", "superadmin") else frozenset()


def expected(route: Route, identity: str) -> int:
    if identity in route.overrides:
        return route.overrides[identity]
    if route.permission == PUBLIC:
        return route.status
    if identity == "anonymous":
        return 401
    if route.permission == SUPERADMIN:
        return route.status if identity == "superadmin" else 403
    if identity == "other_tenant":
        return 404 if route.item else route.status
    if identity == "key_with":
        return route.status
    if identity == "key_without":
        return 403 if route.permission else route.status
    if identity == "superadmin":
        # A superadmin is an owner of its own platform tenant, nothing more here.
        return 404 if route.item else route.status
    held = _permissions_of(identity)
    return route.status if route.permission is None or route.permission in held else 403


async def _headers(world: World, route: Route, identity: str) -> dict[str, str]:
    app, tenant = world.app, world.tenant
    if identity == "anonymous":
        return {}
    if identity == "other_tenant":
        return bearer_headers(app, world.other.owner)
    if identity == SUPERADMIN:
        return bearer_headers(app, world.platform.owner)
    if identity in ("key_with", "key_without"):
        if route.permission == SUPERADMIN:
            key = await make_api_key(app, world.platform.id, ALL)  # every scope, still refused
        elif identity == "key_with":
            key = await make_api_key(app, tenant.id, [route.permission] if route.permission else [])
        else:
            key = await make_api_key(app, tenant.id, [p for p in ALL if p != route.permission])
        return key.headers
    return bearer_headers(app, tenant.users[identity])


# --- Set-ups: a fresh resource of `world.tenant` ------------------------------


async def _sql(world: World, statement: str, **params: Any) -> None:
    with tenant_scope(world.tenant.id):
        async with world.app.state.db.transaction() as session:
            await session.execute(text(statement), params)


async def _insert(
    world: World, statement: str, *, deleted: bool = False, **params: Any
) -> uuid.UUID:
    """One row of `world.tenant`: `statement` gets `:id` (a new id unless
    given; returned), `:t` the tenant and `:deleted` (now, or NULL), and the
    other `params`."""
    row_id: uuid.UUID = params.pop("id", None) or uuid.uuid4()
    await _sql(
        world,
        statement,
        id=row_id,
        t=world.tenant.id,
        deleted=datetime.now(UTC) if deleted else None,
        **params,
    )
    return row_id


def _row(statement: str, **values: Callable[[], Any]) -> Resource:
    """A set-up inserting one row of `world.tenant` with `statement` (see
    `_insert`), `values` made afresh for each row: its params are the row's
    `id` and those values."""

    async def setup(
        world: World, client: httpx.AsyncClient, *, deleted: bool = False
    ) -> dict[str, str]:
        params = {name: make() for name, make in values.items()}
        row_id = await _insert(world, statement, deleted=deleted, **params)
        return {"id": str(row_id), **{name: str(value) for name, value in params.items()}}

    return setup


async def _api_key(world: World, client: httpx.AsyncClient) -> dict[str, str]:
    key = await make_api_key(world.app, world.tenant.id, ["documents:read"])
    return {"id": str(key.id)}


_user = _row(
    "INSERT INTO users (id, tenant_id, email, deleted_at) VALUES (:id, :t, :email, :deleted)",
    email=lambda: unique_email("matrix"),
)
_role = _row(
    "INSERT INTO roles (id, tenant_id, name, permissions, deleted_at)"
    " VALUES (:id, :t, :name, '{documents:read}', :deleted)",
    name=lambda: f"custom-{uuid.uuid4().hex[:8]}",
)


async def _refresh_token(world: World, client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post("/api/v1/auth/token", data=_owner_login(world, {}))
    assert response.status_code == 200, response.text
    return {"refresh_token": response.json()["refresh_token"]}


async def _tenant_id(world: World, client: httpx.AsyncClient) -> dict[str, str]:
    return {"id": str(world.tenant.id)}


async def _target_tenant(world: World, client: httpx.AsyncClient) -> dict[str, str]:
    target = await make_tenant(world.app, "Target")
    return {"id": str(target.id)}


async def _deleted_tenant(world: World, client: httpx.AsyncClient) -> dict[str, str]:
    target = await make_tenant(world.app, "Deleted")
    with system_scope("tests.matrix"):
        async with world.app.state.db.transaction() as session:
            await session.execute(
                text("UPDATE tenants SET deleted_at = :now WHERE id = :id"),
                {"now": datetime.now(UTC), "id": target.id},
            )
    return {"id": str(target.id)}


# --- Set-ups of the platform's resources (jobs, webhooks, documents, uploads, cases) ---


async def _owner_post(
    world: World, client: httpx.AsyncClient, path: str, **kwargs: Any
) -> dict[str, Any]:
    answer = await client.post(
        path, headers=bearer_headers(world.app, world.tenant.owner), **kwargs
    )
    assert answer.status_code < 300, answer.text
    return answer.json()  # type: ignore[no-any-return]


async def _job(world: World, client: httpx.AsyncClient) -> dict[str, str]:
    job = await _owner_post(world, client, "/api/v1/jobs", json={"type": "test.noop"})
    return {"id": job["id"]}


async def _job_without_artifact(world: World, client: httpx.AsyncClient) -> dict[str, str]:
    return {**await _job(world, client), "name": "none.zip"}


async def _cancelled_job(world: World, client: httpx.AsyncClient) -> dict[str, str]:
    params = await _job(world, client)
    await _owner_post(world, client, f"/api/v1/jobs/{params['id']}/cancel")
    return params


async def _batch(world: World, client: httpx.AsyncClient) -> dict[str, str]:
    body = {"type": "test.noop", "items": [{"payload": {}}]}
    return {"id": (await _owner_post(world, client, "/api/v1/batches", json=body))["id"]}


async def _webhook(
    world: World, client: httpx.AsyncClient, *, deleted: bool = False
) -> dict[str, str]:
    webhook_id = await _insert(
        world,
        "INSERT INTO webhooks (id, tenant_id, url, events, secret_ciphertext, deleted_at,"
        " created_by) VALUES (:id, :t, 'https://hooks.example.com/in', '{case.created}', 'x',"
        " :deleted, :creator)",
        creator=world.tenant.owner.id,
        deleted=deleted,
    )
    delivery_id = await _insert(
        world,
        "INSERT INTO webhook_deliveries (id, tenant_id, webhook_id, event_id, event_type,"
        " payload, status) VALUES (:id, :t, :w, :e, 'case.created', '{}', 'failed')",
        w=webhook_id,
        e=uuid.uuid4(),
    )
    return {"id": str(webhook_id), "delivery": str(delivery_id)}


def _pdf(world: World, params: dict[str, str]) -> dict[str, Any]:
    return {"file": ("matrix.pdf", unique_pdf(), "application/pdf")}


def _pdfs(world: World, params: dict[str, str]) -> list[tuple[str, Any]]:
    return [("files", ("matrix.pdf", unique_pdf(), "application/pdf"))]


async def _owner_delete(world: World, client: httpx.AsyncClient, path: str) -> None:
    answer = await client.delete(path, headers=bearer_headers(world.app, world.tenant.owner))
    assert answer.status_code == 204, answer.text


async def _document(
    world: World, client: httpx.AsyncClient, *, deleted: bool = False
) -> dict[str, str]:
    document = await _owner_post(world, client, "/api/v1/documents", files=_pdf(world, {}))
    if deleted:
        await _owner_delete(world, client, f"/api/v1/documents/{document['id']}")
    return {"id": document["id"]}


_PROCESSED: dict[uuid.UUID, dict[str, str]] = {}


async def _page_of(world: World, client: httpx.AsyncClient) -> dict[str, str]:
    return {**await _processed_document(world, client), "number": "1"}


async def _processed_document(world: World, client: httpx.AsyncClient) -> dict[str, str]:
    """A PDF of `world.tenant`, its text extracted (through `ensure_text`);
    one per world, since the routes using it only read it."""
    if world.tenant.id in _PROCESSED:
        return _PROCESSED[world.tenant.id]
    content = text_page([f"Matrix document {uuid.uuid4().hex}"])
    document = await _owner_post(
        world, client, "/api/v1/documents", files={"file": ("m.pdf", content, "application/pdf")}
    )
    document_id = uuid.UUID(document["id"])
    with tenant_scope(world.tenant.id):
        async with world.app.state.db.transaction() as session:
            await document_service.ensure_text(session, world.app.state.settings, document_id)
    _PROCESSED[world.tenant.id] = {"id": str(document_id)}
    return _PROCESSED[world.tenant.id]


async def _signed_download(world: World, client: httpx.AsyncClient) -> dict[str, str]:
    params = await _document(world, client)
    headers = bearer_headers(world.app, world.tenant.owner)
    signed = await client.get(f"/api/v1/documents/{params['id']}/download-url", headers=headers)
    return {"query": signed.json()["url"].split("?", 1)[1], **params}


async def _upload(world: World, client: httpx.AsyncClient) -> dict[str, str]:
    upload = await _owner_post(
        world, client, "/api/v1/uploads", json={"filename": "m.txt", "size": 5}
    )
    return {"id": upload["id"], "number": "1"}


async def _upload_with_part(world: World, client: httpx.AsyncClient) -> dict[str, str]:
    params = await _upload(world, client)
    headers = bearer_headers(world.app, world.tenant.owner)
    sent = await client.put(
        f"/api/v1/uploads/{params['id']}/parts/1",
        headers=headers,
        content=uuid.uuid4().hex[:5].encode(),
    )
    assert sent.status_code < 300, sent.text
    return params


async def _case(
    world: World, client: httpx.AsyncClient, *, deleted: bool = False
) -> dict[str, str]:
    case = await _owner_post(world, client, "/api/v1/cases", json={"title": "M"})
    if deleted:
        await _owner_delete(world, client, f"/api/v1/cases/{case['id']}")
    return {"id": case["id"]}


async def _case_with_document(world: World, client: httpx.AsyncClient) -> dict[str, str]:
    case, document = await _case(world, client), await _document(world, client)
    await _owner_post(
        world, client, f"/api/v1/cases/{case['id']}/documents", json={"document_id": document["id"]}
    )
    return {"id": case["id"], "document": document["id"]}


async def _case_and_document(world: World, client: httpx.AsyncClient) -> dict[str, str]:
    case, document = await _case(world, client), await _document(world, client)
    return {"id": case["id"], "document": document["id"]}


async def _candidate(
    world: World, client: httpx.AsyncClient, *, deleted: bool = False
) -> dict[str, str]:
    document_id = uuid.uuid4()
    await _insert(
        world,
        "INSERT INTO documents (id, tenant_id, title, filename, mime_type, size, sha256,"
        " storage_key) VALUES (:id, :t, 'cv', 'cv.txt', 'text/plain', 1, :h, :k)",
        id=document_id,
        h=document_id.hex * 2,
        k=f"matrix/{document_id}",
    )
    candidate_id = await _insert(
        world,
        "INSERT INTO candidates (id, tenant_id, name, document_ids, profile_document_id,"
        " deleted_at) VALUES (:id, :t, 'Matrix Person', ARRAY[CAST(:d AS uuid)], :d, :deleted)",
        d=document_id,
        deleted=deleted,
    )
    return {"id": str(candidate_id)}


async def _two_candidates(world: World, client: httpx.AsyncClient) -> dict[str, str]:
    target, source = await _candidate(world, client), await _candidate(world, client)
    return {"target": target["id"], "source": source["id"]}


_skill = _row(
    "INSERT INTO candidate_skills (id, tenant_id, name, deleted_at)"
    " VALUES (:id, :t, :name, :deleted)",
    name=lambda: f"Skill {uuid.uuid4().hex[:8]}",
)
_requisition = _row(
    "INSERT INTO requisitions (id, tenant_id, title, required_skills, deleted_at)"
    " VALUES (:id, :t, 'Engineer', '{Python}', :deleted)",
)


# --- Bodies -----------------------------------------------------------------------


def _cv_files(world: World, params: dict[str, str]) -> Any:
    content = f"Matrix Person\nmatrix-{uuid.uuid4().hex}@example.com\nSkills\nPython\n"
    return [("files", ("cv.txt", content.encode()))]


def _merge(world: World, params: dict[str, str]) -> dict[str, Any]:
    return {"target_id": params["target"], "source_id": params["source"]}


def _new_skill(world: World, params: dict[str, str]) -> dict[str, Any]:
    return {"name": f"Skill {uuid.uuid4().hex[:8]}", "aliases": []}


def _new_requisition(world: World, params: dict[str, str]) -> dict[str, Any]:
    return {"title": "Engineer", "required_skills": ["Python"]}


async def _scan(world: World, client: httpx.AsyncClient) -> dict[str, str]:
    """A case with an analysed mesh document, a finished segmentation, one
    segment and its STL file (rows and blobs as the scans job leaves them)."""
    tenant_id = world.tenant.id
    case_id = (await _owner_post(world, client, "/api/v1/cases", json={"title": "Scan"}))["id"]
    document_id, segmentation_id, segment_id = (uuid.uuid4() for _ in range(3))
    storage = get_storage(world.app.state.settings)
    blobs = {}
    for name in ("document", "segment"):
        key = key_for("tenants", tenant_id, "matrix", uuid.uuid4())
        await storage.commit(await storage.put_bytes(key, _TETRAHEDRON_STL))
        blobs[name] = key
    digest = hashlib.sha256(_TETRAHEDRON_STL).hexdigest()
    size = len(_TETRAHEDRON_STL)
    common = {
        "t": tenant_id,
        "case": case_id,
        "document": document_id,
        "segmentation": segmentation_id,
        "segment": segment_id,
        "size": size,
    }
    statements = [
        (
            "INSERT INTO documents (id, tenant_id, title, filename, mime_type, size, sha256, "
            "storage_key, case_id, status) VALUES (:document, :t, 'scan', 'scan.stl', "
            "'model/stl', :size, :sha, :key, :case, 'processed')",
            {"sha": uuid.uuid4().hex * 2, "key": blobs["document"]},
        ),
        (
            "INSERT INTO segmentations (id, tenant_id, case_id, document_id, method, params, "
            "request_hash, status, segment_count) VALUES (:segmentation, :t, :case, :document, "
            "'components', '{}', :hash, 'succeeded', 1)",
            {"hash": uuid.uuid4().hex},
        ),
        (
            "INSERT INTO segments (id, tenant_id, segmentation_id, case_id, document_id, number, "
            "edited_fields, faces, vertices, surface_area, watertight, bounds, centroid) VALUES "
            "(:segment, :t, :segmentation, :case, :document, 1, '{}', 4, 4, 1.0, true, "
            "CAST(:bounds AS jsonb), '[0, 0, 0]')",
            {"bounds": '{"min": [0, 0, 0], "max": [1, 1, 1]}'},
        ),
        (
            "INSERT INTO segment_files (id, tenant_id, segment_id, format, content_type, size, "
            "sha256, storage_key) VALUES (:file, :t, :segment, 'stl', 'model/stl', :size, :sha, "
            ":key)",
            {"file": uuid.uuid4(), "sha": digest, "key": blobs["segment"]},
        ),
    ]
    for statement, params in statements:
        await _sql(world, statement, **common, **params)
    return {
        "case": case_id,
        "document": str(document_id),
        "segmentation": str(segmentation_id),
        "segment": str(segment_id),
        "format": "stl",
        "tenant": str(tenant_id),
    }


async def _job_link(world: World, client: httpx.AsyncClient) -> dict[str, str]:
    return {**await _job_without_artifact(world, client), "tenant": str(world.tenant.id)}


# A closed tetrahedron as a binary STL.
_TETRAHEDRON_STL = (
    b"matrix".ljust(80, b" ")
    + struct.pack("<I", 4)
    + b"".join(
        struct.pack("<12fH", 0, 0, 0, *a, *b, *c, 0)
        for a, b, c in (
            ((0, 0, 0), (0, 1, 0), (1, 0, 0)),
            ((0, 0, 0), (1, 0, 0), (0, 0, 1)),
            ((0, 0, 0), (0, 0, 1), (0, 1, 0)),
            ((1, 0, 0), (0, 1, 0), (0, 0, 1)),
        )
    )
)


def _owner_login(world: World, params: dict[str, str]) -> dict[str, str]:
    return {"username": world.tenant.owner.email, "password": PASSWORD}


def _new_tenant(world: World, params: dict[str, str]) -> dict[str, Any]:
    return {"name": "Made", "owner_email": unique_email("made"), "owner_password": PASSWORD}


def _signup(world: World, params: dict[str, str]) -> dict[str, Any]:
    return {"tenant_name": "Signed up", "email": unique_email("signup"), "password": PASSWORD}


def _new_user(world: World, params: dict[str, str]) -> dict[str, Any]:
    return {"email": unique_email("new"), "password": PASSWORD, "roles": []}


def _new_role(world: World, params: dict[str, str]) -> dict[str, Any]:
    return {"name": f"role-{uuid.uuid4().hex[:8]}", "permissions": []}


def _bogus_token(world: World, params: dict[str, str]) -> dict[str, Any]:
    return {"token": "not-a-real-token-" + uuid.uuid4().hex, "new_password": PASSWORD + "!"}


# --- Crawls (workload 4): a finished crawl with one page and a markdown export ---

CRAWLS_READ, CRAWLS_WRITE = "crawls:read", "crawls:write"
PUBLIC_TARGET = "http://93.184.216.34/docs/"  # a public address: passes the SSRF guard


async def _crawl(
    world: World, client: httpx.AsyncClient, *, deleted: bool = False
) -> dict[str, str]:
    crawl_id, page_id = uuid.uuid4(), uuid.uuid4()
    key = f"tenants/{world.tenant.id}/crawls/{crawl_id}/exports/{uuid.uuid4().hex}"
    storage = get_storage(world.app.state.settings)
    staged = await storage.put_bytes(key, b"# Site\n", content_type="text/markdown")
    await storage.commit(staged)
    values = {
        "id": crawl_id,
        "page": page_id,
        "t": world.tenant.id,
        "url": PUBLIC_TARGET,
        "deleted": datetime.now(UTC) if deleted else None,
        "sha": staged.sha256,
        "key": key,
    }
    for statement in (
        "INSERT INTO crawls (id, tenant_id, url, status, options, stats, deleted_at)"
        " VALUES (:id, :t, :url, 'succeeded', '{}', '{}', :deleted)",
        "INSERT INTO crawl_pages (id, tenant_id, crawl_id, url, status, depth, markdown)"
        " VALUES (:page, :t, :id, :url, 'ok', 0, '# Site')",
        "INSERT INTO crawl_exports (id, tenant_id, crawl_id, format, name, content_type, size,"
        " sha256, storage_key) VALUES (gen_random_uuid(), :t, :id, 'markdown', 'site.md',"
        " 'text/markdown', 7, :sha, :key)",
    ):
        used = {k: v for k, v in values.items() if f":{k}" in statement}
        await _sql(world, statement, **used)
    return {"id": str(crawl_id), "page": str(page_id), "format": "markdown"}


USER_ONLY = {"key_with": 403, "key_without": 403}  # sessions and profiles are users'

ROUTES: list[Route] = [
    # --- Auth: public routes need no credentials and ignore any sent ---
    Route("POST", "/api/v1/auth/signup", PUBLIC, 201, body=_signup),
    Route("POST", "/api/v1/auth/token", PUBLIC, form=_owner_login),
    Route(
        "POST",
        "/api/v1/auth/refresh",
        PUBLIC,
        setup=_refresh_token,
        body=lambda world, params: params,
    ),
    Route(
        "POST",
        "/api/v1/auth/password-reset/request",
        PUBLIC,
        202,
        body=lambda world, params: {"email": world.tenant.owner.email},
    ),
    # An unknown token is 422 for everyone: the route is reachable without credentials.
    Route("POST", "/api/v1/auth/password-reset/confirm", PUBLIC, 422, body=_bogus_token),
    Route(
        "POST",
        "/api/v1/auth/invitations/accept",
        PUBLIC,
        422,
        body=lambda world, params: {
            "token": "not-a-real-token-" + uuid.uuid4().hex,
            "password": PASSWORD,
        },
    ),
    # --- Auth: the signed-in user's own session ---
    Route("GET", "/api/v1/auth/me", None, overrides=USER_ONLY),
    Route("POST", "/api/v1/auth/logout", None, 204, overrides=USER_ONLY),
    Route("POST", "/api/v1/auth/logout-all", None, 204, overrides=USER_ONLY),
    Route(
        "POST",
        "/api/v1/auth/password",
        None,
        body=lambda world, params: {
            "current_password": PASSWORD,
            "new_password": PASSWORD + " again",
        },
        overrides=USER_ONLY,
    ),
    # --- Users ---
    Route("GET", "/api/v1/users", Permission.USERS_READ),
    Route("POST", "/api/v1/users", Permission.USERS_MANAGE, 201, body=_new_user),
    Route(
        "POST",
        "/api/v1/users/invitations",
        Permission.USERS_MANAGE,
        201,
        body=lambda world, params: {"email": unique_email("invited"), "roles": []},
    ),
    *_resource(
        "/api/v1/users/{id}",
        Permission.USERS_READ,
        Permission.USERS_MANAGE,
        _user,
        patch=lambda world, params: {"full_name": "Renamed"},
    ),
    Route(
        "PUT",
        "/api/v1/users/{id}/roles",
        Permission.USERS_MANAGE,
        setup=_user,
        item=True,
        body=lambda world, params: {"roles": []},
    ),
    # --- Roles and the permission catalogue ---
    Route("GET", "/api/v1/permissions", Permission.ROLES_READ),
    Route("GET", "/api/v1/roles", Permission.ROLES_READ),
    Route("POST", "/api/v1/roles", Permission.ROLES_MANAGE, 201, body=_new_role),
    *_resource(
        "/api/v1/roles/{id}",
        Permission.ROLES_READ,
        Permission.ROLES_MANAGE,
        _role,
        patch=lambda world, params: {"description": "changed"},
    ),
    # --- API keys (api_keys:manage; keys may list and revoke but never mint keys) ---
    Route("GET", "/api/v1/api-keys", Permission.API_KEYS_MANAGE),
    Route(
        "POST",
        "/api/v1/api-keys",
        Permission.API_KEYS_MANAGE,
        201,
        body=lambda world, params: {"name": "matrix", "scopes": []},
        overrides={"key_with": 403},
    ),
    Route("GET", "/api/v1/api-keys/{id}", Permission.API_KEYS_MANAGE, setup=_api_key, item=True),
    Route(
        "DELETE",
        "/api/v1/api-keys/{id}",
        Permission.API_KEYS_MANAGE,
        204,
        setup=_api_key,
        item=True,
    ),
    # --- Audit log ---
    Route("GET", "/api/v1/audit-events", Permission.AUDIT_READ),
    # --- The caller's tenant ---
    Route("GET", "/api/v1/tenant", Permission.TENANT_READ),
    Route(
        "PATCH",
        "/api/v1/tenant",
        Permission.TENANT_MANAGE,
        body=lambda world, params: {"name": f"Renamed {uuid.uuid4().hex[:4]}"},
    ),
    # --- Platform admin: superadmins only, never API keys ---
    Route("GET", "/api/v1/admin/tenants", SUPERADMIN),
    Route("POST", "/api/v1/admin/tenants", SUPERADMIN, 201, body=_new_tenant),
    Route("GET", "/api/v1/admin/tenants/{id}", SUPERADMIN, setup=_tenant_id),
    Route(
        "PATCH",
        "/api/v1/admin/tenants/{id}",
        SUPERADMIN,
        setup=_tenant_id,
        body=lambda world, params: {"plan": "pro"},
    ),
    Route("DELETE", "/api/v1/admin/tenants/{id}", SUPERADMIN, 204, setup=_target_tenant),
    Route("POST", "/api/v1/admin/tenants/{id}/restore", SUPERADMIN, setup=_deleted_tenant),
    Route("GET", "/api/v1/admin/tenants/{id}/users", SUPERADMIN, setup=_tenant_id),
    Route("GET", "/api/v1/admin/audit-events", SUPERADMIN),
    Route("GET", "/api/v1/admin/stats", SUPERADMIN),
    Route("POST", "/api/v1/admin/purge", SUPERADMIN),
    # --- System routes at the root: public ---
    Route("GET", "/", PUBLIC),
    Route("GET", "/health", PUBLIC),
    Route("GET", "/ready", PUBLIC),
    Route("GET", "/version", PUBLIC),
    Route("GET", "/metrics", PUBLIC),
    # --- Jobs and batches ---
    Route("GET", "/api/v1/job-types", Permission.JOBS_READ),
    Route(
        "POST",
        "/api/v1/jobs",
        Permission.JOBS_WRITE,
        202,
        body=lambda world, params: {"type": "test.noop"},
    ),
    Route("GET", "/api/v1/jobs", Permission.JOBS_READ),
    Route("GET", "/api/v1/jobs/stats", Permission.JOBS_READ),
    *_reads(Permission.JOBS_READ, _job, "/api/v1/jobs/{id}", "/api/v1/jobs/{id}/logs"),
    Route("DELETE", "/api/v1/jobs/{id}", Permission.JOBS_WRITE, 204, setup=_job, item=True),
    Route("POST", "/api/v1/jobs/{id}/cancel", Permission.JOBS_WRITE, setup=_job, item=True),
    Route(
        "POST", "/api/v1/jobs/{id}/retry", Permission.JOBS_WRITE, setup=_cancelled_job, item=True
    ),
    # No such artifact: the permission is checked first, then the 404.
    *_reads(
        Permission.JOBS_READ,
        _job_without_artifact,
        "/api/v1/jobs/{id}/artifacts/{name}",
        "/api/v1/jobs/{id}/artifacts/{name}/download-url",
        status=404,
    ),
    # A forged signature: 403 for everyone, whatever credentials are sent.
    Route(
        "GET",
        "/api/v1/jobs/{id}/artifacts/{name}/download?tenant={tenant}&expires=1&sig=forged",
        PUBLIC,
        403,
        setup=_job_link,
    ),
    Route(
        "POST",
        "/api/v1/batches",
        Permission.JOBS_WRITE,
        202,
        body=lambda world, params: {"type": "test.noop", "items": [{"payload": {}}]},
    ),
    Route("GET", "/api/v1/batches/{id}", Permission.JOBS_READ, setup=_batch, item=True),
    # --- Webhooks (loopback targets are refused: 422 once permitted) ---
    Route(
        "POST",
        "/api/v1/webhooks",
        Permission.WEBHOOKS_MANAGE,
        422,
        body=lambda world, params: {"url": "http://127.0.0.1/hook", "events": ["case.created"]},
    ),
    Route("GET", "/api/v1/webhooks", Permission.WEBHOOKS_MANAGE),
    *_resource(
        "/api/v1/webhooks/{id}",
        Permission.WEBHOOKS_MANAGE,
        Permission.WEBHOOKS_MANAGE,
        _webhook,
        patch=lambda world, params: {"description": "changed"},
    ),
    Route(
        "POST",
        "/api/v1/webhooks/{id}/ping",
        Permission.WEBHOOKS_MANAGE,
        202,
        setup=_webhook,
        item=True,
    ),
    *_reads(Permission.WEBHOOKS_MANAGE, _webhook, "/api/v1/webhooks/{id}/deliveries"),
    Route(
        "POST",
        "/api/v1/webhooks/{id}/deliveries/{delivery}/redeliver",
        Permission.WEBHOOKS_MANAGE,
        202,
        setup=_webhook,
        item=True,
    ),
    # --- Documents ---
    Route("POST", "/api/v1/documents", Permission.DOCUMENTS_WRITE, 201, files=_pdf),
    Route("POST", "/api/v1/documents/bulk", Permission.DOCUMENTS_WRITE, 207, files=_pdfs),
    Route("GET", "/api/v1/documents", Permission.DOCUMENTS_READ),
    *_resource(
        "/api/v1/documents/{id}",
        Permission.DOCUMENTS_READ,
        Permission.DOCUMENTS_WRITE,
        _document,
        patch=lambda world, params: {"title": "Renamed"},
        delete=Permission.DOCUMENTS_DELETE,
    ),
    *_reads(
        Permission.DOCUMENTS_READ,
        _document,
        "/api/v1/documents/{id}/content",
        "/api/v1/documents/{id}/download-url",
    ),
    # The signed link needs no credentials and ignores any sent.
    Route("GET", "/api/v1/documents/{id}/download?{query}", PUBLIC, setup=_signed_download),
    # --- Document intelligence ---
    Route(
        "POST",
        "/api/v1/documents/search",
        Permission.DOCUMENTS_READ,
        body=lambda world, params: {
            "filter": {"field": "document_type", "op": "exists", "value": False}
        },
    ),
    *_reads(
        Permission.DOCUMENTS_READ,
        _processed_document,
        "/api/v1/documents/{id}/text",
        "/api/v1/documents/{id}/pages",
    ),
    *_reads(
        Permission.DOCUMENTS_READ,
        _page_of,
        "/api/v1/documents/{id}/pages/{number}",
        "/api/v1/documents/{id}/pages/{number}/image",
    ),
    # --- Resumable uploads ---
    Route(
        "POST",
        "/api/v1/uploads",
        Permission.DOCUMENTS_WRITE,
        201,
        body=lambda world, params: {"filename": "m.txt", "size": 5},
    ),
    Route("GET", "/api/v1/uploads/{id}", Permission.DOCUMENTS_WRITE, setup=_upload, item=True),
    Route(
        "PUT",
        "/api/v1/uploads/{id}/parts/{number}",
        Permission.DOCUMENTS_WRITE,
        setup=_upload,
        item=True,
        content=b"hello",
    ),
    Route(
        "POST",
        "/api/v1/uploads/{id}/complete",
        Permission.DOCUMENTS_WRITE,
        201,
        setup=_upload_with_part,
        item=True,
    ),
    Route(
        "DELETE", "/api/v1/uploads/{id}", Permission.DOCUMENTS_WRITE, 204, setup=_upload, item=True
    ),
    # --- Cases ---
    Route(
        "POST",
        "/api/v1/cases",
        Permission.CASES_WRITE,
        201,
        body=lambda world, params: {"title": "Matrix"},
    ),
    Route("GET", "/api/v1/cases", Permission.CASES_READ),
    *_resource(
        "/api/v1/cases/{id}",
        Permission.CASES_READ,
        Permission.CASES_WRITE,
        _case,
        patch=lambda world, params: {"priority": "high"},
        delete=Permission.CASES_DELETE,
    ),
    *_reads(Permission.CASES_READ, _case, "/api/v1/cases/{id}/timeline"),
    Route(
        "GET",
        "/api/v1/cases/{id}/documents",
        Permission.CASES_READ,
        setup=_case,
        item=True,
        overrides={"key_with": 403},  # also needs documents:read
    ),
    Route(
        "POST",
        "/api/v1/cases/{id}/documents",
        Permission.CASES_WRITE,
        setup=_case_and_document,
        item=True,
        body=lambda world, params: {"document_id": params["document"]},
        overrides={"key_with": 403, "viewer": 403},  # also needs documents:write
    ),
    Route(
        "DELETE",
        "/api/v1/cases/{id}/documents/{document}",
        Permission.CASES_WRITE,
        204,
        setup=_case_with_document,
        item=True,
        overrides={"key_with": 403, "viewer": 403},
    ),
    # --- Candidates and requisitions (issue 11) ---
    Route("GET", "/api/v1/candidates", CANDIDATES_READ),
    Route("POST", "/api/v1/candidates/import", CANDIDATES_WRITE, 202, files=_cv_files),
    Route("GET", "/api/v1/candidates/skills", CANDIDATES_READ),
    Route("POST", "/api/v1/candidates/skills", CANDIDATES_WRITE, 201, body=_new_skill),
    *_deletable("/api/v1/candidates/skills/{name}", CANDIDATES_WRITE, _skill),
    Route(
        "POST",
        "/api/v1/candidates/merge",
        CANDIDATES_WRITE,
        body=_merge,
        setup=_two_candidates,
        item=True,
    ),
    *_resource(
        "/api/v1/candidates/{id}",
        CANDIDATES_READ,
        CANDIDATES_WRITE,
        _candidate,
        patch=lambda world, params: {"status": "screening"},
    ),
    Route(
        "POST",
        "/api/v1/candidates/{id}/reparse",
        CANDIDATES_WRITE,
        202,
        setup=_candidate,
        item=True,
    ),
    Route("GET", "/api/v1/requisitions", CANDIDATES_READ),
    Route("POST", "/api/v1/requisitions", CANDIDATES_WRITE, 201, body=_new_requisition),
    *_resource(
        "/api/v1/requisitions/{id}",
        CANDIDATES_READ,
        CANDIDATES_WRITE,
        _requisition,
        patch=lambda world, params: {"title": "Senior engineer"},
    ),
    *_reads(CANDIDATES_READ, _requisition, "/api/v1/requisitions/{id}/matches"),
    # --- 3-D scans (scans:read / scans:write) ---
    Route(
        "POST",
        "/api/v1/cases/{case}/segmentations",
        "scans:write",
        202,
        setup=_scan,
        item=True,
        body=lambda world, params: {"document_id": params["document"]},
    ),
    *_reads(
        "scans:read",
        _scan,
        "/api/v1/cases/{case}/segmentations",
        "/api/v1/segmentations/{segmentation}",
        "/api/v1/cases/{case}/segments",
        "/api/v1/cases/{case}/segments/summary",
        "/api/v1/segments/{segment}",
    ),
    Route(
        "PATCH",
        "/api/v1/segments/{segment}",
        "scans:write",
        setup=_scan,
        item=True,
        body=lambda world, params: {"label": "molar", "tooth_number": 36},
    ),
    *_reads(
        "scans:read",
        _scan,
        "/api/v1/segments/{segment}/download/{format}",
        "/api/v1/segments/{segment}/download-url",
    ),
    Route(
        "GET",
        "/api/v1/segments/{segment}/download/{format}/signed?tenant={tenant}&expires=1&sig=forged",
        PUBLIC,
        403,
        setup=_scan,
    ),
    # --- Crawls ---
    Route("GET", "/api/v1/crawls", CRAWLS_READ),
    Route("POST", "/api/v1/crawls", CRAWLS_WRITE, 202, body=lambda w, p: {"url": PUBLIC_TARGET}),
    # Validation answers as data (no network needed for a refused scheme).
    Route("POST", "/api/v1/crawls/validate", CRAWLS_WRITE, body=lambda w, p: {"url": "ftp://x/"}),
    Route(
        "POST",
        "/api/v1/crawls/estimate",
        CRAWLS_WRITE,
        422,
        body=lambda w, p: {"url": "ftp://x/"},
    ),
    *_resource("/api/v1/crawls/{id}", CRAWLS_READ, CRAWLS_WRITE, _crawl),
    # A finished crawl can be neither cancelled nor retried: 409 past the permission check.
    Route("POST", "/api/v1/crawls/{id}/cancel", CRAWLS_WRITE, 409, setup=_crawl, item=True),
    Route("POST", "/api/v1/crawls/{id}/retry", CRAWLS_WRITE, 409, setup=_crawl, item=True),
    *_reads(
        CRAWLS_READ,
        _crawl,
        "/api/v1/crawls/{id}/pages",
        "/api/v1/crawls/{id}/pages/{page}",
        "/api/v1/crawls/{id}/exports",
    ),
    Route(
        "POST",
        "/api/v1/crawls/{id}/exports",
        CRAWLS_WRITE,
        202,
        setup=_crawl,
        item=True,
        body=lambda w, p: {"format": "json"},
    ),
    Route("GET", "/api/v1/crawls/{id}/exports/{format}", CRAWLS_READ, setup=_crawl, item=True),
    Route(
        "DELETE", "/api/v1/crawls/{id}/exports/{format}", CRAWLS_WRITE, 204, setup=_crawl, item=True
    ),
]


# --- Marking (WORKLOADS.md section 2) ---------------------------------------------

_MARKING_QUESTIONS = (
    '[{"id": "1", "type": "mcq", "max_marks": 1, "options": ["A", "B"], "answer": "A"}]'
)


_marking_guide = _row(
    "INSERT INTO marking_guides (id, tenant_id, title, pass_percentage, student_id_digits,"
    " questions, total_marks, question_count, warnings, deleted_at) VALUES (:id, :t,"
    " 'Quiz', 50, 4, CAST(:q AS jsonb), 1, 1, '[]', :deleted)",
    q=lambda: _MARKING_QUESTIONS,
)


async def _marking_document(world: World) -> uuid.UUID:
    document_id = uuid.uuid4()
    return await _insert(
        world,
        "INSERT INTO documents (id, tenant_id, title, filename, mime_type, size, sha256,"
        " storage_key) VALUES (:id, :t, 'a', 'a.txt', 'text/plain', 5, :h, :k)",
        id=document_id,
        h=uuid.uuid4().hex * 2,
        k=f"tenants/{world.tenant.id}/documents/{document_id}",
    )


async def _marking_sheet(
    world: World, client: httpx.AsyncClient, *, deleted: bool = False
) -> dict[str, str]:
    guide = await _marking_guide(world, client)
    document_id = await _marking_document(world)
    batch_id = await _insert(
        world,
        "INSERT INTO marking_batches (id, tenant_id, guide_id, total) VALUES (:id, :t, :g, 1)",
        g=guide["id"],
    )
    sheet_id = await _insert(
        world,
        "INSERT INTO marking_sheets (id, tenant_id, guide_id, document_id, batch_id,"
        " student_id_given, status, priority, score, questions, qa, requires_review, marked_at,"
        " deleted_at) VALUES (:id, :t, :g, :d, :b, false, 'marked', 0,"
        ' \'{"awarded": 1, "max": 1, "percentage": 100, "passed": true}\','
        ' \'[{"id": "1", "type": "mcq", "answer": "A", "awarded": 1, "max_marks": 1,'
        ' "correct": true, "feedback": "Correct.", "flags": [], "confidence": 1,'
        ' "overridden": false}]\','
        ' \'{"blank": 0, "multiple_marks": 0, "ambiguous": 0, "low_confidence": 0}\','
        " false, now(), :deleted)",
        g=guide["id"],
        d=document_id,
        b=batch_id,
        deleted=deleted,
    )
    return {
        "id": str(sheet_id),
        "guide_id": guide["id"],
        "batch_id": str(batch_id),
        "question": "1",
    }


async def _marking_inputs(world: World, client: httpx.AsyncClient) -> dict[str, str]:
    guide = await _marking_guide(world, client)
    return {"guide_id": guide["id"], "document_id": str(await _marking_document(world))}


def _new_marking_guide(world: World, params: dict[str, str]) -> dict[str, Any]:
    return {
        "title": "Quiz",
        "questions": [{"id": "1", "type": "true_false", "max_marks": 1, "answer": True}],
    }


def _marking_guide_file(world: World, params: dict[str, str]) -> dict[str, Any]:
    return {"file": ("guide.txt", b"# Title: Quiz\n1 [1] mcq A-D: B\n", "text/plain")}


def _new_marking_sheet(world: World, params: dict[str, str]) -> dict[str, Any]:
    return {"guide_id": params["guide_id"], "document_id": params["document_id"]}


def _new_marking_batch(world: World, params: dict[str, str]) -> dict[str, Any]:
    return {"guide_id": params["guide_id"], "document_ids": [params["document_id"]]}


# Another tenant's owner names this tenant's guide and document: not found in its own.
_FOREIGN_INPUTS = {"other_tenant": 422, "superadmin": 422}

MARKING_ROUTES: list[Route] = [
    Route("GET", "/api/v1/marking/guides", "marking:read"),
    Route("POST", "/api/v1/marking/guides", "marking:write", 201, body=_new_marking_guide),
    Route("POST", "/api/v1/marking/guides/import", "marking:write", 201, files=_marking_guide_file),
    *_resource(
        "/api/v1/marking/guides/{id}",
        "marking:read",
        "marking:write",
        _marking_guide,
        patch=lambda world, params: {"title": "Renamed"},
    ),
    *_reads(
        "marking:read",
        _marking_guide,
        "/api/v1/marking/guides/{id}/sheet.pdf",
        "/api/v1/marking/guides/{id}/sheet.json",
    ),
    Route("GET", "/api/v1/marking/sheets", "marking:read"),
    Route(
        "POST",
        "/api/v1/marking/sheets",
        "marking:write",
        202,
        body=_new_marking_sheet,
        setup=_marking_inputs,
        overrides=_FOREIGN_INPUTS,
    ),
    *_resource("/api/v1/marking/sheets/{id}", "marking:read", "marking:write", _marking_sheet),
    Route(
        "PATCH",
        "/api/v1/marking/sheets/{id}/questions/{question}",
        "marking:write",
        body=lambda world, params: {"awarded": 0.5},
        setup=_marking_sheet,
        item=True,
    ),
    Route(
        "POST",
        "/api/v1/marking/sheets/{id}/review",
        "marking:write",
        setup=_marking_sheet,
        item=True,
    ),
    Route(
        "POST",
        "/api/v1/marking/sheets/{id}/remark",
        "marking:write",
        202,
        setup=_marking_sheet,
        item=True,
    ),
    *_reads("marking:read", _marking_sheet, "/api/v1/marking/sheets/{id}/report"),
    Route("GET", "/api/v1/marking/batches", "marking:read"),
    Route(
        "POST",
        "/api/v1/marking/batches",
        "marking:write",
        202,
        body=_new_marking_batch,
        setup=_marking_inputs,
        overrides=_FOREIGN_INPUTS,
    ),
    *_reads(
        "marking:read",
        _marking_sheet,
        "/api/v1/marking/batches/{batch_id}",
        "/api/v1/marking/batches/{batch_id}/results.csv",
    ),
]
ROUTES += MARKING_ROUTES


@pytest.fixture
async def world(app: Any) -> World:
    return World(
        app=app,
        tenant=await make_tenant(app, "Matrix", roles=("owner", "admin", "member", "viewer")),
        other=await make_tenant(app, "Other"),
        platform=await make_tenant(app, "Platform", superadmin=True),
    )


@pytest.mark.parametrize("route", ROUTES, ids=[route.id for route in ROUTES])
async def test_route_answers_each_identity_as_spec_says(
    route: Route, world: World, client: httpx.AsyncClient
) -> None:
    answers: dict[str, int] = {}
    for identity in IDENTITIES:
        params = await route.setup(world, client) if route.setup else {}
        kwargs: dict[str, Any] = {"headers": await _headers(world, route, identity)}
        if route.body is not None:
            kwargs["json"] = route.body(world, params)
        if route.form is not None:
            kwargs["data"] = route.form(world, params)
        if route.files is not None:
            kwargs["files"] = route.files(world, params)
        if route.content is not None:
            kwargs["content"] = route.content
        response = await client.request(route.method, route.path.format(**params), **kwargs)
        answers[identity] = response.status_code
        if response.status_code >= 400:
            assert response.headers["content-type"].startswith("application/problem+json")
        if response.status_code == 401:
            assert "www-authenticate" in response.headers
    wanted = {identity: expected(route, identity) for identity in IDENTITIES}
    assert answers == wanted


# Routes the matrix cannot call, with the test that checks their identities.
NOT_IN_MATRIX = {
    # An endless Server-Sent Events stream: tests/events/test_events.py.
    ("GET", "/api/v1/events"),
}


def test_every_route_is_in_the_matrix(app: Any) -> None:
    """Every HTTP route the API documents has a row (or a named exemption)."""
    covered = {(route.method, _normalise(route.path.split("?")[0])) for route in ROUTES}
    missing = [
        f"{method.upper()} {path}"
        for path, operations in app.openapi()["paths"].items()
        for method in operations
        if (method.upper(), _normalise(path)) not in covered | NOT_IN_MATRIX
    ]
    assert missing == []


def _normalise(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "{}", path)
