"""Resumable uploads: parts, idempotent re-sends, checks at completion,
abort and expiry cleanup."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import text, update
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.kit.db import system_scope
from backend.kit.storage import get_storage
from backend.uploads.models import Upload
from backend.worker.maintenance import run_maintenance_round
from tests.documents.helpers import upload as direct_upload
from tests.factories import bearer_headers, make_tenant
from tests.jobs.helpers import running_worker

PART = 5 * 1024 * 1024  # the smallest part size allowed


@pytest.fixture
async def small_parts(app: Any) -> Any:
    """The app with the minimum part size, so that tests send few bytes."""
    assert app.state.settings.upload_part_size >= PART
    original = app.state.settings
    app.state.settings = original.model_copy(update={"upload_part_size": PART})
    yield app
    app.state.settings = original


def _file(size: int) -> bytes:
    return b"%PDF-1.7\n" + os.urandom(size - 9)


async def _initiate(
    client: httpx.AsyncClient, headers: dict[str, str], data: bytes, **extra: Any
) -> dict[str, Any]:
    body = {
        "filename": "big.pdf",
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
        **extra,
    }
    answer = await client.post("/api/v1/uploads", headers=headers, json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


async def _blobs(app: Any, tenant_id: Any) -> list[str]:
    """Committed blobs of one tenant (the blob directory outlives each test)."""
    root = get_storage(app.state.settings).root / "tenants" / str(tenant_id)  # type: ignore[attr-defined]
    return [str(p) for p in root.rglob("*") if p.is_file()] if root.exists() else []


async def test_resumable_upload_round_trip(
    client: httpx.AsyncClient, small_parts: Any, owner_engine: AsyncEngine
) -> None:
    app = small_parts
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    data = _file(2 * PART + 1234)
    created = await _initiate(client, headers, data, title="Big one", tags=["x"])
    assert created["part_size"] == PART
    assert created["part_count"] == 3
    url = f"/api/v1/uploads/{created['id']}"
    chunks = [data[i : i + PART] for i in range(0, len(data), PART)]
    assert (
        await client.put(f"{url}/parts/3", headers=headers, content=chunks[2])
    ).status_code == 200
    assert (
        await client.put(f"{url}/parts/1", headers=headers, content=os.urandom(PART))
    ).status_code == 200
    # re-sending a part replaces it
    assert (
        await client.put(f"{url}/parts/1", headers=headers, content=chunks[0])
    ).status_code == 200
    state = (await client.get(url, headers=headers)).json()
    assert state["received_parts"] == [1, 3]
    assert state["status"] == "pending"
    incomplete = await client.post(f"{url}/complete", headers=headers)
    assert incomplete.status_code == 422
    assert incomplete.json()["missing_parts"] == [2]
    assert (await client.put(f"{url}/parts/0", headers=headers, content=b"x")).status_code == 422
    assert (await client.put(f"{url}/parts/4", headers=headers, content=b"x")).status_code == 422
    short = await client.put(f"{url}/parts/2", headers=headers, content=chunks[1][:-1])
    assert short.status_code == 422
    assert (
        await client.put(f"{url}/parts/2", headers=headers, content=chunks[1])
    ).status_code == 200
    done = await client.post(f"{url}/complete", headers=headers)
    assert done.status_code == 201, done.text
    document = done.json()
    assert document["sha256"] == hashlib.sha256(data).hexdigest()
    assert document["size"] == len(data)
    assert document["title"] == "Big one"
    content = await client.get(f"/api/v1/documents/{document['id']}/content", headers=headers)
    assert content.content == data
    assert (await client.get(url, headers=headers)).json()["status"] == "completed"
    async with owner_engine.connect() as connection:
        parts = (await connection.execute(text("SELECT count(*) FROM upload_parts"))).scalar_one()
    assert parts == 0
    assert len(await _blobs(app, tenant.id)) == 1  # only the document remains
    # the same content again is a duplicate, exactly as a direct upload
    again = await _initiate(client, headers, data)
    for n, chunk in enumerate(chunks, start=1):
        await client.put(f"/api/v1/uploads/{again['id']}/parts/{n}", headers=headers, content=chunk)
    dup = await client.post(f"/api/v1/uploads/{again['id']}/complete", headers=headers)
    assert dup.status_code == 409
    assert dup.json()["existing_id"] == document["id"]


async def test_checksum_and_type_checks_at_completion(
    client: httpx.AsyncClient, small_parts: Any
) -> None:
    app = small_parts
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    data = _file(1000)
    wrong = await _initiate(client, headers, data, sha256="0" * 64)
    await client.put(f"/api/v1/uploads/{wrong['id']}/parts/1", headers=headers, content=data)
    answer = await client.post(f"/api/v1/uploads/{wrong['id']}/complete", headers=headers)
    assert answer.status_code == 422
    assert answer.json()["code"] == "checksum_mismatch"
    exe = b"MZ" + os.urandom(998)
    bad_type = await _initiate(client, headers, exe)
    await client.put(f"/api/v1/uploads/{bad_type['id']}/parts/1", headers=headers, content=exe)
    refused = await client.post(f"/api/v1/uploads/{bad_type['id']}/complete", headers=headers)
    assert refused.status_code == 415
    assert (await client.get("/api/v1/documents", headers=headers)).json()["total"] == 0


async def test_initiate_rules_abort_and_isolation(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app, roles=("owner", "viewer"))
    other = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    too_big = await client.post(
        "/api/v1/uploads",
        headers=headers,
        json={"filename": "a", "size": app.state.settings.max_upload_bytes + 1},
    )
    assert too_big.status_code == 413
    assert (
        await client.post("/api/v1/uploads", headers=headers, json={"filename": "a", "size": 0})
    ).status_code == 422
    viewer = bearer_headers(app, tenant.users["viewer"])
    assert (
        await client.post("/api/v1/uploads", headers=viewer, json={"filename": "a", "size": 5})
    ).status_code == 403
    data = _file(100)
    created = await _initiate(client, headers, data)
    url = f"/api/v1/uploads/{created['id']}"
    assert (await client.get(url, headers=bearer_headers(app, other.owner))).status_code == 404
    await client.put(f"{url}/parts/1", headers=headers, content=data)
    assert len(await _blobs(app, tenant.id)) == 1
    assert (await client.delete(url, headers=headers)).status_code == 204
    assert (await client.get(url, headers=headers)).status_code == 404
    assert await _blobs(app, tenant.id) == []


async def test_expired_uploads_are_cleaned_up(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    data = _file(100)
    created = await _initiate(client, headers, data)
    url = f"/api/v1/uploads/{created['id']}"
    await client.put(f"{url}/parts/1", headers=headers, content=data)
    keep = await _initiate(client, headers, _file(100))
    with system_scope("tests"):
        async with app.state.db.transaction() as session:
            await session.execute(
                update(Upload)
                .where(Upload.id == created["id"])
                .values(expires_at=datetime.now(UTC) - timedelta(seconds=1))
            )
    assert (await client.put(f"{url}/parts/1", headers=headers, content=data)).status_code == 404
    # Every worker runs the round each MAINTENANCE_INTERVAL_SECONDS.
    async with running_worker(app, maintenance_interval_seconds=0.1):
        deadline = time.monotonic() + 20
        while await _blobs(app, tenant.id):
            assert time.monotonic() < deadline, "the worker did not remove the expired upload"
            await asyncio.sleep(0.05)
    assert (await client.get(url, headers=headers)).status_code == 404
    assert (await client.get(f"/api/v1/uploads/{keep['id']}", headers=headers)).status_code == 200


async def test_one_worker_at_a_time_runs_maintenance(owner_engine: AsyncEngine, app: Any) -> None:
    async with owner_engine.begin() as connection:
        await connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": 0x444F5353})
        assert await run_maintenance_round(app.state.db, app.state.settings) is None
    assert await run_maintenance_round(app.state.db, app.state.settings) == 0


async def test_quota_exceeded(client: httpx.AsyncClient, app: Any) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    with system_scope("tests"):
        async with app.state.db.transaction() as session:
            await session.execute(
                text("UPDATE tenants SET limits = '{\"storage_bytes\": 1500}' WHERE id = :id"),
                {"id": tenant.id},
            )
    first = await direct_upload(client, headers, _file(1000))
    assert first.status_code == 201
    over = await direct_upload(client, headers, _file(1000))
    assert over.status_code == 413
    assert over.json()["code"] == "quota_exceeded"
    declared = await client.post(
        "/api/v1/uploads", headers=headers, json={"filename": "a", "size": 1000}
    )
    assert declared.status_code == 413
    assert declared.json()["code"] == "quota_exceeded"
    usage = await client.get("/api/v1/tenant", headers=headers)
    assert usage.json()["usage"]["storage_bytes"] == 1000
    assert len(await _blobs(app, tenant.id)) == 1
