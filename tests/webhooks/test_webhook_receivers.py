"""A hostile receiver cannot hold a worker slot: the answer is read with one
overall deadline and a byte cap, raw (never decompressed)."""

from __future__ import annotations

import asyncio
import gzip
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest

from backend.settings import Settings
from tests.factories import bearer_headers, make_tenant
from tests.jobs.helpers import running_worker, wait_for_job


async def _trickle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Answers 200 at once, then its body one byte every 0.2 s, for a minute."""
    await reader.readuntil(b"\r\n\r\n")
    writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n")
    try:
        for _ in range(300):
            writer.write(b"x")
            await writer.drain()
            await asyncio.sleep(0.2)
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


BOMB = gzip.compress(b"\0" * (64 * 1024 * 1024), compresslevel=9)


async def _gzip_bomb(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    await reader.readuntil(b"\r\n\r\n")
    writer.write(
        b"HTTP/1.1 200 OK\r\nContent-Encoding: gzip\r\n"
        + f"Content-Length: {len(BOMB)}\r\n\r\n".encode()
    )
    try:
        writer.write(BOMB)
        await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        writer.close()


@pytest.fixture
async def hostile(app: Any) -> AsyncIterator[Any]:
    original: Settings = app.state.settings
    app.state.settings = original.model_copy(
        update={
            "webhook_allow_private_targets": True,
            "webhook_allow_http": True,
            "webhook_timeout_seconds": 1.0,
        }
    )
    yield app
    app.state.settings = original


@pytest.mark.parametrize("handler", [_trickle, _gzip_bomb], ids=["trickle", "gzip-bomb"])
async def test_a_hostile_receiver_cannot_hold_the_worker(
    client: Any, hostile: Any, handler: Any
) -> None:
    app = hostile
    server = await asyncio.start_server(handler, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        tenant = await make_tenant(app)
        headers = bearer_headers(app, tenant.owner)
        hook = await client.post(
            "/api/v1/webhooks",
            json={"url": f"http://127.0.0.1:{port}/hook", "events": ["job.succeeded"]},
            headers=headers,
        )
        assert hook.status_code == 201, hook.text
        ping = await client.post(f"/api/v1/webhooks/{hook.json()['id']}/ping", headers=headers)
        started = time.monotonic()
        async with running_worker(app, concurrency=1, webhook_timeout_seconds=1.0):
            job = await wait_for_job(client, headers, ping.json()["job_id"], timeout=20)
        elapsed = time.monotonic() - started
    finally:
        server.close()
    assert job["status"] == "succeeded", job
    assert elapsed < 8, f"the delivery held the worker for {elapsed:.1f} s"
