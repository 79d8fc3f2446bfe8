"""Issue 4: document upload and download throughput against the disk, and
`GET /documents?limit=20` over 1,000,000 documents in 100 tenants (page 1
and a keyset page 10,000 rows deep)."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any

import asyncpg

from backend.kit.pagination import SortSpec, encode_cursor
from bench import transfer
from bench.context import BenchContext
from bench.registry import CustomScenario, HttpScenario, Measurement, Request, RunOptions, register

MB = 1024 * 1024
FILE_MB = 100
# Best of this many transfers, on both sides of each ratio: with 3, runs of
# the same code on the shared 2-CPU machine ranged from 0.19x to 0.46x.
ROUNDS = 8
DOCUMENTS = 1_000_000
TENANTS = 100


def _payload() -> bytes:
    block = os.urandom(MB)
    return b"%PDF-1.7\n" + (block * FILE_MB)[9:]


async def _unlimited_storage(context: BenchContext) -> None:
    tenant = await context.tenant()
    connection = await asyncpg.connect(context.dsn)
    try:
        await connection.execute(
            "UPDATE tenants SET limits = limits"
            " || jsonb_build_object('storage_bytes', 1000000000000::bigint) WHERE id = $1",
            tenant.id,
        )
    finally:
        await connection.close()


def _disk_write(path: str, data: bytes) -> None:
    digest = hashlib.sha256()
    with open(path, "wb") as handle:
        for start in range(0, len(data), MB):
            chunk = data[start : start + MB]
            digest.update(chunk)
            handle.write(chunk)
        handle.flush()
        os.fsync(handle.fileno())


async def disk_write(context: BenchContext, options: RunOptions) -> Measurement:
    data = context.state.setdefault("documents.payload", _payload())
    path = str(context.work_dir / "disk-baseline.bin")
    best = 0.0
    for _ in range(ROUNDS):
        started = time.perf_counter()
        await asyncio.to_thread(_disk_write, path, data)
        best = max(best, FILE_MB / (time.perf_counter() - started))
    return Measurement(throughput=best, unit="MB/s", count=ROUNDS, details={"file_mb": FILE_MB})


def _disk_read(path: str) -> None:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while chunk := handle.read(MB):
            digest.update(chunk)


async def disk_read(context: BenchContext, options: RunOptions) -> Measurement:
    path = str(context.work_dir / "disk-baseline.bin")
    if not os.path.exists(path):
        await asyncio.to_thread(
            _disk_write, path, context.state.setdefault("documents.payload", _payload())
        )
    best = 0.0
    for _ in range(ROUNDS):
        started = time.perf_counter()
        await asyncio.to_thread(_disk_read, path)
        best = max(best, FILE_MB / (time.perf_counter() - started))
    return Measurement(throughput=best, unit="MB/s", count=ROUNDS)


def _server_cpu(context: BenchContext) -> float | None:
    """CPU seconds (user + system, all threads) the app server has used so far."""
    if context.app_pid is None:
        return None
    fields = Path(f"/proc/{context.app_pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _cpu_per_transfer(context: BenchContext, before: float | None) -> dict[str, float]:
    """`server_cpu_s`: the app's CPU seconds per transfer since `before`."""
    after = _server_cpu(context)
    if before is None or after is None:
        return {}
    return {"server_cpu_s": (after - before) / ROUNDS}


async def api_upload(context: BenchContext, options: RunOptions) -> Measurement:
    data = context.state.setdefault("documents.payload", _payload())
    headers = await context.owner_headers()
    best = 0.0
    cpu = _server_cpu(context)
    for _ in range(ROUNDS):
        started = time.perf_counter()
        answer = await asyncio.to_thread(
            transfer.upload,
            context.app_url,
            "/api/v1/documents?allow_duplicate=true",
            headers,
            field="file",
            filename="bench.pdf",
            content_type="application/pdf",
            data=data,
        )
        elapsed = time.perf_counter() - started
        if answer.status != 201:
            raise RuntimeError(f"upload answered {answer.status}: {answer.body[:300]!r}")
        context.state["documents.uploaded"] = json.loads(answer.body)["id"]
        best = max(best, FILE_MB / elapsed)
    return Measurement(
        throughput=best,
        unit="MB/s",
        count=ROUNDS,
        details={"file_mb": FILE_MB, **_cpu_per_transfer(context, cpu)},
    )


async def api_download(context: BenchContext, options: RunOptions) -> Measurement:
    if "documents.uploaded" not in context.state:
        await _unlimited_storage(context)
        await api_upload(context, RunOptions(duration=options.duration, connections=1))
    path = f"/api/v1/documents/{context.state['documents.uploaded']}/content"
    headers = await context.owner_headers()
    best = 0.0
    cpu = _server_cpu(context)
    for _ in range(ROUNDS):
        started = time.perf_counter()
        answer = await asyncio.to_thread(transfer.download, context.app_url, path, headers)
        elapsed = time.perf_counter() - started
        if answer.status != 200 or answer.size != FILE_MB * MB:
            raise RuntimeError(f"download answered {answer.status} with {answer.size} bytes")
        best = max(best, FILE_MB / elapsed)
    return Measurement(
        throughput=best, unit="MB/s", count=ROUNDS, details=_cpu_per_transfer(context, cpu)
    )


SEED_SQL = """
INSERT INTO documents (id, tenant_id, created_at, updated_at, title, filename, mime_type,
                       size, sha256, storage_key, tags)
SELECT gen_random_uuid(), t.ids[1 + (i % $2)], now() - make_interval(secs => i),
       now() - make_interval(secs => i), 'Document ' || i, 'doc-' || i || '.pdf',
       'application/pdf', 1000 + i, md5(i::text) || md5((i + 1)::text),
       'tenants/seed/documents/' || i, ARRAY['bench']
FROM generate_series(1, $1) AS i, (SELECT $3::uuid[] AS ids) AS t
"""


async def seed_documents(context: BenchContext) -> None:
    if "documents.seeded" in context.state:
        return
    tenants = await context.tenants(TENANTS)
    connection = await asyncpg.connect(context.dsn)
    try:
        await connection.execute(SEED_SQL, DOCUMENTS, TENANTS, [t.id for t in tenants])
        await connection.execute("VACUUM (ANALYZE) documents")
        # The cursor of the 10,000th row of each tenant in the default order.
        deep: dict[uuid.UUID, str] = {}
        for tenant in tenants:
            row = await connection.fetchrow(
                "SELECT created_at, id FROM documents WHERE tenant_id = $1 AND deleted_at IS NULL"
                " ORDER BY created_at DESC, id DESC OFFSET 9999 LIMIT 1",
                tenant.id,
            )
            deep[tenant.id] = encode_cursor(
                SortSpec("created_at", True), row["created_at"], row["id"]
            )
    finally:
        await connection.close()
    context.state["documents.seeded"] = True
    context.state["documents.deep"] = deep


async def page_requests(context: BenchContext) -> list[Request]:
    tenants = await context.tenants(TENANTS)
    return [Request("/api/v1/documents?limit=20", headers=context.bearer(t.owner)) for t in tenants]


async def naive_requests(context: BenchContext) -> list[Request]:
    tenants = await context.tenants(TENANTS)
    return [Request("/naive/documents?limit=20", headers=context.bearer(t.owner)) for t in tenants]


async def deep_requests(context: BenchContext) -> list[Request]:
    tenants = await context.tenants(TENANTS)
    deep: dict[Any, str] = context.state["documents.deep"]
    return [
        Request(f"/api/v1/documents?limit=20&cursor={deep[t.id]}", headers=context.bearer(t.owner))
        for t in tenants
    ]


register(
    CustomScenario(
        "disk-write-sha256",
        disk_write,
        description=f"baseline: {FILE_MB} MB written to disk in 1 MB chunks with sha256 and fsync",
    ),
    CustomScenario(
        "documents-upload",
        api_upload,
        baseline="disk-write-sha256",
        setup=_unlimited_storage,
        target_ratio=0.5,
        description=f"POST /api/v1/documents with a {FILE_MB} MB file (best of {ROUNDS})",
        profile=True,
    ),
    CustomScenario(
        "disk-read-sha256",
        disk_read,
        description=f"baseline: {FILE_MB} MB read from disk in 1 MB chunks and hashed",
    ),
    CustomScenario(
        "documents-download",
        api_download,
        baseline="disk-read-sha256",
        target_ratio=0.7,
        description=f"GET /api/v1/documents/{{id}}/content of {FILE_MB} MB (best of {ROUNDS})",
        profile=True,
    ),
    HttpScenario(
        "documents-list",
        requests=page_requests,
        setup=seed_documents,
        baseline="bare-query",
        target_ratio=0.35,
        description=f"GET /documents?limit=20, {DOCUMENTS:,} documents over {TENANTS} tenants",
    ),
    HttpScenario(
        "naive-documents-list",
        requests=naive_requests,
        setup=seed_documents,
        target="baseline",
        description="baseline: the same list the way a typical FastAPI template writes it "
        "(bench/naive_app.py: ORM session, user row per request, response_model validation)",
    ),
    HttpScenario(
        "documents-list-vs-naive",
        requests=page_requests,
        setup=seed_documents,
        baseline="naive-documents-list",
        target_ratio=3.0,
        description="GET /documents?limit=20 as documents-list, against the naive stack",
    ),
    HttpScenario(
        "documents-list-deep",
        requests=deep_requests,
        setup=seed_documents,
        baseline="documents-list",
        target_ratio=1 / 1.5,
        description="the keyset page 10,000 rows deep (target: latency within 1.5x of page 1)",
    ),
)
