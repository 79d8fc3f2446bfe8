"""Requests the scans tests share: a case, a mesh upload and its analysis,
a segmentation awaited, the tenant's recent events, the blobs in storage."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import httpx

from backend.kit.storage import get_storage
from tests.jobs.helpers import running_worker, wait_for_job
from tests.scans.meshes import EXTENSION, MIME


async def make_case(client: httpx.AsyncClient, headers: dict[str, str]) -> str:
    answer = await client.post("/api/v1/cases", headers=headers, json={"title": "Scan case"})
    assert answer.status_code == 201, answer.text
    return str(answer.json()["id"])


async def upload_mesh(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    data: bytes,
    encoding: str,
    case_id: str,
    claimed: str | None = None,
) -> dict[str, Any]:
    files = {"file": (f"scan.{EXTENSION[encoding]}", data, claimed or MIME[encoding])}
    answer = await client.post(
        "/api/v1/documents",
        headers=headers,
        files=files,
        data={"case_id": case_id},
        params={"allow_duplicate": "true"},
    )
    assert answer.status_code == 201, answer.text
    return dict(answer.json())


async def analysis_job(client: httpx.AsyncClient, headers: dict[str, str], document_id: str) -> str:
    jobs = await client.get("/api/v1/jobs", headers=headers, params={"document_id": document_id})
    (job,) = jobs.json()["items"]
    assert job["type"] == "scan.analyze"
    return str(job["id"])


async def events_of(redis: Any, app: Any, tenant_id: Any, kind: str) -> list[dict[str, Any]]:
    """The data of the tenant's recent events of type `kind` (its event log)."""
    prefix = app.state.settings.redis_key_prefix
    entries = await redis.xrange(f"{prefix}:event-log:{tenant_id}")
    events = [json.loads(fields["event"]) for _, fields in entries]
    return [event["data"] for event in events if event["type"] == kind]


async def wait_segmentation(
    client: httpx.AsyncClient, headers: dict[str, str], segmentation_id: str
) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while True:
        answer = await client.get(f"/api/v1/segmentations/{segmentation_id}", headers=headers)
        body: dict[str, Any] = answer.json()
        if body["status"] not in ("queued", "running"):
            return body
        assert time.monotonic() < deadline, body
        await asyncio.sleep(0.1)


async def analysed_mesh(
    client: httpx.AsyncClient, app: Any, headers: dict[str, str], data: bytes, encoding: str
) -> tuple[str, str]:
    case_id = await make_case(client, headers)
    document = await upload_mesh(client, headers, data, encoding, case_id)
    async with running_worker(app):
        job = await wait_for_job(
            client, headers, await analysis_job(client, headers, document["id"]), timeout=60
        )
    assert job["status"] == "succeeded", job
    return case_id, str(document["id"])


async def segment_blobs(app: Any, tenant_id: Any) -> list[str]:
    """The tenant's segment files in (local) storage."""
    root = get_storage(app.state.settings).root / "tenants" / str(tenant_id) / "segments"
    return sorted(str(path) for path in root.rglob("*") if path.is_file()) if root.exists() else []


async def staged_blobs(app: Any) -> set[str]:
    """Writes in (local) storage's staging area: not yet committed nor discarded."""
    staging = get_storage(app.state.settings).staging
    return {entry.name for entry in staging.iterdir()} if staging.exists() else set()
