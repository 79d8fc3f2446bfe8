"""Helpers of the candidates API tests: a tenant with its roles and country,
importing files, and running the worker until a batch is done."""

from __future__ import annotations

import asyncio
import io
import time
import zipfile
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import text

from tests.factories import TenantFixture, bearer_headers, make_tenant
from tests.jobs.helpers import raise_job_cap


@dataclass
class World:
    tenant: TenantFixture
    owner: dict[str, str]
    member: dict[str, str]
    viewer: dict[str, str]


async def make_world(app: Any, owner_engine: Any, country: str | None = "DE") -> World:
    tenant = await make_tenant(app, "CVs", roles=("owner", "member", "viewer"))
    await raise_job_cap(owner_engine, tenant.id)
    if country:
        async with owner_engine.begin() as connection:
            await connection.execute(
                text(
                    "UPDATE tenants SET settings = settings || "
                    "jsonb_build_object('country', CAST(:c AS text)) WHERE id = :id"
                ),
                {"c": country, "id": tenant.id},
            )
    return World(
        tenant=tenant,
        owner=bearer_headers(app, tenant.users["owner"]),
        member=bearer_headers(app, tenant.users["member"]),
        viewer=bearer_headers(app, tenant.users["viewer"]),
    )


def zip_of(entries: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as handle:
        for name, data in entries.items():
            handle.writestr(name, data)
    return buffer.getvalue()


async def import_files(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    files: list[tuple[str, bytes]],
    **data: str,
) -> httpx.Response:
    return await client.post(
        "/api/v1/candidates/import",
        headers=headers,
        files=[("files", (name, content)) for name, content in files],
        data=data,
    )


async def wait_for_batch(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    batch_id: UUID | str,
    timeout: float = 90,  # noqa: ASYNC109
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        answer = await client.get(f"/api/v1/batches/{batch_id}", headers=headers)
        assert answer.status_code == 200, answer.text
        batch: dict[str, Any] = answer.json()
        if batch["done"]:
            return batch
        if time.monotonic() > deadline:
            raise AssertionError(f"batch not done: {batch}")
        await asyncio.sleep(0.1)


async def all_candidates(
    client: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {**params, "limit": 100, **({"cursor": cursor} if cursor else {})}
        answer = await client.get("/api/v1/candidates", headers=headers, params=query)
        assert answer.status_code == 200, answer.text
        body = answer.json()
        items.extend(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return items
