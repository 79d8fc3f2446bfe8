"""Direct uploads with the S3 backend: presigned part URLs, parts sent
straight to the bucket (moto's server on loopback), checks of every part and
of the assembled object's sha256 before the document exists."""

from __future__ import annotations

import hashlib
import struct
from collections.abc import AsyncIterator
from typing import Any

import httpx
import numpy as np
import pytest

from backend.kit.storage import S3Storage, get_storage
from tests.factories import bearer_headers, make_tenant
from tests.support.s3 import moto_endpoint

__all__ = ["moto_endpoint"]

PART = 5 * 1024 * 1024


@pytest.fixture
async def s3_app(app: Any, moto_endpoint: str) -> AsyncIterator[Any]:
    """The app on an S3 bucket of the moto server, with the smallest parts."""
    original = app.state.settings
    app.state.settings = original.model_copy(
        update={
            "storage_backend": "s3",
            "s3_endpoint_url": moto_endpoint,
            "s3_bucket": f"direct-{original.redis_key_prefix[-8:].lower()}",
            "s3_region": "us-east-1",
            "s3_access_key_id": "testing",
            "s3_secret_access_key": original.signing_secret.__class__("testing"),
            "upload_part_size": PART,
        }
    )
    storage = get_storage(app.state.settings)
    assert isinstance(storage, S3Storage)
    await storage.ensure_bucket()
    yield app
    app.state.settings = original
    await storage.close()  # no keep-alive connection holds the server's shutdown


def binary_stl(triangles: int, seed: int = 0) -> bytes:
    """A binary STL of random triangles: 84 + 50 * triangles bytes."""
    records = np.zeros(triangles, dtype=[("n", "<f4", 3), ("v", "<f4", 9), ("a", "<u2")])
    records["v"] = np.random.default_rng(seed).random((triangles, 9), dtype=np.float32)
    return b"direct upload test".ljust(80, b" ") + struct.pack("<I", triangles) + records.tobytes()


async def _initiate(
    client: httpx.AsyncClient, headers: dict[str, str], data: bytes, **extra: Any
) -> dict[str, Any]:
    body = {"filename": "scan.stl", "size": len(data), **extra}
    answer = await client.post("/api/v1/uploads", headers=headers, json=body)
    assert answer.status_code == 201, answer.text
    return answer.json()


async def _send(urls: list[str], chunks: list[bytes]) -> None:
    async with httpx.AsyncClient() as bucket:  # straight to storage, no credentials
        for url, chunk in zip(urls, chunks, strict=True):
            answer = await bucket.put(url, content=chunk)
            assert answer.status_code == 200, answer.text


def _chunks(data: bytes) -> list[bytes]:
    return [data[i : i + PART] for i in range(0, len(data), PART)]


async def test_parts_go_straight_to_storage_and_complete_checks_them(
    client: httpx.AsyncClient, s3_app: Any
) -> None:
    app = s3_app
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    data = binary_stl(120_000)  # 6 MB: two parts
    created = await _initiate(
        client, headers, data, sha256=hashlib.sha256(data).hexdigest(), content_type="model/stl"
    )
    assert created["part_count"] == 2
    urls = created["part_urls"]
    assert len(urls) == 2
    assert all("Signature=" in url and "partNumber=" in url for url in urls)
    chunks = _chunks(data)
    await _send(urls[1:], chunks[1:])
    url = f"/api/v1/uploads/{created['id']}"
    assert (await client.get(url, headers=headers)).json()["received_parts"] == [2]
    incomplete = await client.post(f"{url}/complete", headers=headers)
    assert incomplete.status_code == 422
    assert incomplete.json()["missing_parts"] == [1]
    await _send(urls[:1], chunks[:1])
    assert (await client.get(url, headers=headers)).json()["received_parts"] == [1, 2]
    done = await client.post(f"{url}/complete", headers=headers)
    assert done.status_code == 201, done.text
    document = done.json()
    assert document["mime_type"] == "model/stl"
    assert document["size"] == len(data)
    assert document["sha256"] == hashlib.sha256(data).hexdigest()
    content = await client.get(f"/api/v1/documents/{document['id']}/content", headers=headers)
    assert content.content == data
    assert (await client.get(url, headers=headers)).json()["status"] == "completed"


async def test_a_wrong_sha256_or_part_size_makes_no_document(
    client: httpx.AsyncClient, s3_app: Any
) -> None:
    app = s3_app
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    storage = get_storage(app.state.settings)
    data = binary_stl(110_000, seed=1)
    wrong = await _initiate(client, headers, data, sha256="0" * 64)
    await _send(wrong["part_urls"], _chunks(data))
    refused = await client.post(f"/api/v1/uploads/{wrong['id']}/complete", headers=headers)
    assert refused.status_code == 422
    assert refused.json()["code"] == "checksum_mismatch"
    key = f"tenants/{tenant.id}/uploads/{wrong['id']}/object"
    assert await storage.size(key) is None  # the assembled object is gone
    listed = await client.get("/api/v1/documents", headers=headers)
    assert listed.json()["total"] == 0

    short = await _initiate(client, headers, data)
    chunks = _chunks(data)
    await _send(short["part_urls"], [chunks[0][:-10], chunks[1]])
    refused = await client.post(f"/api/v1/uploads/{short['id']}/complete", headers=headers)
    assert refused.status_code == 422
    assert refused.json()["code"] == "checksum_mismatch"


async def test_direct_uploads_are_typed_by_content(client: httpx.AsyncClient, s3_app: Any) -> None:
    app = s3_app
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    data = binary_stl(110_000, seed=2) + b"trailing"  # not 84 + 50n bytes: no STL
    created = await _initiate(client, headers, data)
    await _send(created["part_urls"], _chunks(data))
    refused = await client.post(f"/api/v1/uploads/{created['id']}/complete", headers=headers)
    assert refused.status_code == 415
    storage = get_storage(app.state.settings)
    assert await storage.size(f"tenants/{tenant.id}/uploads/{created['id']}/object") is None


async def test_abort_drops_the_parts_in_the_bucket(client: httpx.AsyncClient, s3_app: Any) -> None:
    app = s3_app
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    data = binary_stl(110_000, seed=3)
    created = await _initiate(client, headers, data)
    await _send(created["part_urls"][:1], _chunks(data)[:1])
    storage = get_storage(app.state.settings)
    assert isinstance(storage, S3Storage)
    key = f"tenants/{tenant.id}/uploads/{created['id']}/object"
    assert await storage.find_direct(key) is not None
    assert (
        await client.delete(f"/api/v1/uploads/{created['id']}", headers=headers)
    ).status_code == 204
    assert await storage.find_direct(key) is None
