"""No database connection waits on a client: 40 clients trickling part
uploads at 1 KiB/s do not stop another tenant's requests from answering
within their normal latency; the application role's sessions end idle
transactions (`idle_in_transaction_session_timeout`)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import statistics
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
from sqlalchemy import text

from tests.factories import bearer_headers, make_tenant

CLIENTS = 40
PART = 6 * 1024  # sent at 1 KiB/s: six seconds per client


async def _latency(client: httpx.AsyncClient, headers: dict[str, str], count: int) -> list[float]:
    took = []
    for _ in range(count):
        started = time.monotonic()
        answer = await client.get("/api/v1/cases", headers=headers)
        took.append(time.monotonic() - started)
        assert answer.status_code == 200, answer.text
        await asyncio.sleep(0.05)
    return took


async def test_trickling_part_uploads_hold_no_connection(
    client: httpx.AsyncClient, app: Any
) -> None:
    # Four tenants, ten open uploads each (MAX_OPEN_UPLOADS is per tenant).
    uploaders = []
    for _ in range(CLIENTS // 10):
        tenant = await make_tenant(app)
        uploaders.append(bearer_headers(app, tenant.owner))
    other = await make_tenant(app, "Other")
    other_headers = bearer_headers(app, other.owner)
    baseline = await _latency(client, other_headers, 10)

    uploads = []
    for index in range(CLIENTS):
        headers = uploaders[index % len(uploaders)]
        data = b"%PDF-1.7\n" + os.urandom(PART - 9)
        answer = await client.post(
            "/api/v1/uploads",
            headers=headers,
            json={"filename": "t.pdf", "size": PART, "sha256": hashlib.sha256(data).hexdigest()},
        )
        assert answer.status_code == 201, answer.text
        uploads.append((headers, answer.json()["id"], data))

    async def trickle(data: bytes) -> AsyncIterator[bytes]:
        for offset in range(0, len(data), 1024):
            yield data[offset : offset + 1024]
            await asyncio.sleep(1)

    async def send(headers: dict[str, str], upload_id: str, data: bytes) -> int:
        answer = await client.put(
            f"/api/v1/uploads/{upload_id}/parts/1", headers=headers, content=trickle(data)
        )
        return answer.status_code

    senders = [asyncio.create_task(send(*upload)) for upload in uploads]
    await asyncio.sleep(0.5)  # every client is mid-body now
    during = await _latency(client, other_headers, 10)
    statuses = await asyncio.gather(*senders)
    assert statuses == [200] * CLIENTS

    normal = statistics.median(baseline)
    print(
        f"\n/api/v1/cases latency: median {normal * 1000:.0f} ms before, "
        f"max {max(during) * 1000:.0f} ms / median {statistics.median(during) * 1000:.0f} ms "
        f"with {CLIENTS} trickling part uploads (pool {app.state.settings.db_pool_size}"
        f"+{app.state.settings.db_max_overflow})"
    )
    # Holding connections, the pool (25) would make a request wait for a
    # trickling client to finish (about six seconds).
    assert max(during) < max(2.5, 10 * normal)


async def test_the_app_role_ends_idle_transactions(app: Any) -> None:
    async with app.state.db.transaction() as session:
        setting = await session.scalar(text("SHOW idle_in_transaction_session_timeout"))
        role = await session.scalar(text("SELECT current_user"))
    assert role == app.state.settings.db_app_role
    assert setting == "1min"
