"""Helpers of the jobs tests: an in-process worker, waiting for job states."""

from __future__ import annotations

import asyncio
import io
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import UUID

import httpx
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from backend.settings import Settings
from backend.worker.runner import Worker

FAST = {
    "job_lease_seconds": 2.0,
    "job_poll_interval_seconds": 0.2,
    "job_retry_base_seconds": 0.1,
    "job_retry_max_seconds": 0.4,
    "job_shutdown_timeout_seconds": 5.0,
}


def fast_settings(settings: Settings, **overrides: Any) -> Settings:
    return settings.model_copy(update={**FAST, **overrides})


@asynccontextmanager
async def running_worker(app: Any, concurrency: int = 2, **overrides: Any) -> AsyncIterator[Worker]:
    worker = Worker(
        fast_settings(app.state.settings, **overrides),
        concurrency=concurrency,
        database=app.state.db,
    )
    task = asyncio.create_task(worker.run())
    try:
        yield worker
    finally:
        worker.stop()
        await asyncio.wait_for(task, 30)


async def wait_for_job(
    client: httpx.AsyncClient,
    headers: dict[str, str],
    job_id: UUID | str,
    statuses: tuple[str, ...] = ("succeeded", "failed", "cancelled"),
    timeout: float = 30,  # noqa: ASYNC109
) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        answer = await client.get(f"/api/v1/jobs/{job_id}", headers=headers)
        assert answer.status_code == 200, answer.text
        job: dict[str, Any] = answer.json()
        if job["status"] in statuses:
            return job
        if time.monotonic() > deadline:
            raise AssertionError(f"job stayed {job['status']}: {job}")
        await asyncio.sleep(0.05)


async def raise_job_cap(engine: AsyncEngine, tenant_id: UUID, cap: int = 100) -> None:
    async with engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE tenants SET limits = limits || "
                "jsonb_build_object('max_running_jobs', CAST(:cap AS integer)) WHERE id = :id"
            ),
            {"cap": cap, "id": tenant_id},
        )


async def make_document(
    app: Any,
    tenant_id: UUID,
    content: bytes,
    *,
    filename: str = "file.txt",
    mime_type: str = "text/plain",
    case_id: UUID | None = None,
) -> UUID:
    """A document row and its blob, as an upload would leave them."""
    import hashlib
    import uuid

    from backend.kit.db import tenant_scope
    from backend.kit.storage import get_storage, key_for

    storage = get_storage(app.state.settings)
    document_id = uuid.uuid4()
    key = key_for("tenants", tenant_id, "documents", document_id)
    staged = await storage.put_bytes(key, content, content_type=mime_type)
    await storage.commit(staged)
    with tenant_scope(tenant_id):
        async with app.state.db.transaction() as session:
            await session.execute(
                text(
                    "INSERT INTO documents (id, tenant_id, title, filename, mime_type, size, "
                    "sha256,"
                    " storage_key, case_id) VALUES (:id, :t, :title, :f, :m, :s, :h, :k, :c)"
                ),
                {
                    "id": document_id,
                    "t": tenant_id,
                    "title": filename,
                    "f": filename,
                    "m": mime_type,
                    "s": len(content),
                    "h": hashlib.sha256(content).hexdigest(),
                    "k": key,
                    "c": case_id,
                },
            )
    return document_id


async def make_case(app: Any, tenant_id: UUID, title: str = "A case") -> UUID:
    import uuid

    from backend.kit.db import tenant_scope

    case_id = uuid.uuid4()
    with tenant_scope(tenant_id):
        async with app.state.db.transaction() as session:
            await session.execute(
                text(
                    "INSERT INTO cases (id, tenant_id, reference, title, tags) "
                    "VALUES (:id, :t, :r, :title, '{}')"
                ),
                {"id": case_id, "t": tenant_id, "r": f"CASE-{case_id.hex[:6]}", "title": title},
            )
    return case_id


def pdf_with_pages(*pages: str) -> bytes:
    """A minimal valid PDF, one Helvetica text line per page."""
    objects: list[bytes] = []
    kids = " ".join(f"{3 + 2 * i} 0 R" for i in range(len(pages)))
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    objects.append(f"<< /Type /Pages /Kids [{kids}] /Count {len(pages)} >>".encode())
    font_id = 3 + 2 * len(pages)
    for index, line in enumerate(pages):
        content_id = 4 + 2 * index
        objects.append(
            f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents {content_id} 0 R "
            f"/Resources << /Font << /F1 {font_id} 0 R >> >> >>".encode()
        )
        stream = f"BT /F1 18 Tf 72 700 Td ({line}) Tj ET".encode()
        objects.append(b"<< /Length %d >>\nstream\n" % len(stream) + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(b"%d 0 obj\n" % number + body + b"\nendobj\n")
    xref = out.tell()
    out.write(b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1))
    for offset in offsets:
        out.write(b"%010d 00000 n \n" % offset)
    out.write(
        b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    )
    return out.getvalue()
