"""Real-time events across processes: a worker process's events reach
WebSocket and SSE clients of an API server process; tenants are isolated;
bad credentials close with 1008; SSE resumes after Last-Event-ID."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from backend.settings import Settings
from tests.factories import bearer_headers, make_tenant
from tests.support.server import clean_env, serving
from tests.support.workers import start_worker, stop_worker, worker_env


@pytest.fixture
def stack(database_url: str, redis_url: str, settings: Settings) -> Iterator[str]:
    """An API server process and a worker process sharing the test database."""
    env = clean_env(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        REDIS_KEY_PREFIX=settings.redis_key_prefix,
        LOG_LEVEL="WARNING",
        WS_PING_INTERVAL_SECONDS="0.5",
        JOB_MODULES="tests.support.job_types",
    )
    worker = start_worker(worker_env(database_url, redis_url, settings.redis_key_prefix))
    try:
        with serving(env) as (base, _):
            yield base
    finally:
        stop_worker(worker)


def _token(app: Any, user: Any) -> str:
    return bearer_headers(app, user)["Authorization"].removeprefix("Bearer ")


async def _events_until(
    ws: Any,
    done: str,
    job_id: str,
    timeout: float = 30,  # noqa: ASYNC109
) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []
    async with asyncio.timeout(timeout):
        while True:
            message = json.loads(await ws.recv())
            if message.get("type") == "ping":
                continue
            seen.append(message)
            if message["type"] == done and message["data"].get("job_id") == job_id:
                return seen


async def test_worker_events_reach_websocket_clients_of_their_tenant_only(
    app: Any, stack: str
) -> None:
    first = await make_tenant(app, "First")
    second = await make_tenant(app, "Second")
    ws_base = stack.replace("http://", "ws://")
    async with (
        connect(f"{ws_base}/api/v1/events?token={_token(app, first.owner)}") as ws_first,
        connect(
            f"{ws_base}/api/v1/events", subprotocols=["bearer", _token(app, second.owner)]
        ) as ws_second,
        httpx.AsyncClient(base_url=stack, timeout=10) as http,
    ):
        answer = await http.post(
            "/api/v1/jobs",
            json={"type": "test.work", "payload": {"steps": 2, "sleep": 0.2}},
            headers=bearer_headers(app, first.owner),
        )
        assert answer.status_code == 202
        job_id = answer.json()["id"]
        events = await _events_until(ws_first, "job.succeeded", job_id)
        types = [e["type"] for e in events if e["data"].get("job_id") == job_id]
        assert types[0] == "job.queued"
        assert {"job.started", "job.progress", "job.succeeded"} <= set(types)
        assert set(events[0]) == {"id", "type", "created_at", "data"}

        theirs = await http.post(
            "/api/v1/jobs", json={"type": "test.noop"}, headers=bearer_headers(app, second.owner)
        )
        their_events = await _events_until(ws_second, "job.succeeded", theirs.json()["id"])
        assert all(e["data"].get("job_id") != job_id for e in their_events)

    # Filters: one type, one job.
    async with httpx.AsyncClient(base_url=stack, timeout=10) as http:
        slow = await http.post(
            "/api/v1/jobs",
            json={"type": "test.work", "payload": {"steps": 4, "sleep": 1.5}},
            headers=bearer_headers(app, first.owner),
        )
        slow_id = slow.json()["id"]
        async with connect(
            f"{ws_base}/api/v1/events?types=job.succeeded&job_id={slow_id}",
            additional_headers={"Authorization": f"Bearer {_token(app, first.owner)}"},
        ) as ws_filtered:
            other = await http.post(
                "/api/v1/jobs", json={"type": "test.noop"}, headers=bearer_headers(app, first.owner)
            )
            assert other.status_code == 202
            received = await _events_until(ws_filtered, "job.succeeded", slow_id)
        assert [e["type"] for e in received] == ["job.succeeded"]


async def test_bad_credentials_close_with_1008(app: Any, stack: str) -> None:
    ws_base = stack.replace("http://", "ws://")
    async with connect(f"{ws_base}/api/v1/events?token=not-a-token") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008
    async with connect(f"{ws_base}/api/v1/events") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008


async def test_socket_closes_once_its_credential_is_no_longer_good(app: Any, stack: str) -> None:
    """Checked again at every keep-alive ping (0.5 s here)."""
    tenant = await make_tenant(app, roles=("owner", "member"))
    member = tenant.users["member"]
    ws_base = stack.replace("http://", "ws://")
    async with connect(f"{ws_base}/api/v1/events?token={_token(app, member)}") as ws:
        assert json.loads(await asyncio.wait_for(ws.recv(), 10)) == {"type": "ping"}
        async with httpx.AsyncClient(base_url=stack, timeout=10) as http:
            answer = await http.patch(
                f"/api/v1/users/{member.id}",
                json={"is_active": False},
                headers=bearer_headers(app, tenant.owner),
            )
            assert answer.status_code == 200
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(10):
                while True:
                    await ws.recv()
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008


async def test_event_stream_ends_once_its_credential_is_no_longer_good(
    app: Any, stack: str
) -> None:
    tenant = await make_tenant(app, roles=("owner", "member"))
    member = tenant.users["member"]
    async with (
        httpx.AsyncClient(base_url=stack, timeout=10) as http,
        http.stream("GET", "/api/v1/events", headers=bearer_headers(app, member)) as stream,
    ):
        assert stream.status_code == 200
        lines = stream.aiter_lines()
        assert await asyncio.wait_for(anext(lines), 10) == ": connected"
        answer = await http.patch(
            f"/api/v1/users/{member.id}",
            json={"is_active": False},
            headers=bearer_headers(app, tenant.owner),
        )
        assert answer.status_code == 200
        async with asyncio.timeout(10):
            rest = [line async for line in lines]
    assert all(not line.startswith("data:") for line in rest)


async def test_viewer_without_permission_gets_no_job_events(
    app: Any, stack: str, owner_engine: Any
) -> None:
    from sqlalchemy import text

    tenant = await make_tenant(app, roles=("owner", "viewer"))
    viewer = tenant.users["viewer"]
    async with owner_engine.begin() as connection:
        await connection.execute(
            text(
                "UPDATE roles SET permissions = array_remove(permissions, 'jobs:read') "
                "WHERE tenant_id = :t AND name = 'viewer'"
            ),
            {"t": tenant.id},
        )
    ws_base = stack.replace("http://", "ws://")
    async with (
        connect(f"{ws_base}/api/v1/events?token={_token(app, viewer)}") as ws,
        connect(f"{ws_base}/api/v1/events?token={_token(app, tenant.owner)}") as ws_owner,
        httpx.AsyncClient(base_url=stack, timeout=10) as http,
    ):
        job = (
            await http.post(
                "/api/v1/jobs",
                json={"type": "test.noop"},
                headers=bearer_headers(app, tenant.owner),
            )
        ).json()
        await _events_until(ws_owner, "job.succeeded", job["id"])
        with pytest.raises(TimeoutError):
            await _events_until(ws, "job.succeeded", job["id"], timeout=1.5)


async def test_sse_stream_and_last_event_id_resume(app: Any, stack: str) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    async with httpx.AsyncClient(base_url=stack, timeout=10) as http:
        job = (
            await http.post(
                "/api/v1/jobs", json={"type": "test.work", "payload": {"steps": 3}}, headers=headers
            )
        ).json()
        ws_base = stack.replace("http://", "ws://")
        async with connect(
            f"{ws_base}/api/v1/jobs/{job['id']}/stream?token={_token(app, tenant.owner)}"
        ) as ws:
            state = json.loads(await ws.recv())
            assert state["type"] == "job.state"
            assert state["data"]["id"] == job["id"]
            tail = []
            with pytest.raises(ConnectionClosed):
                while True:
                    tail.append(json.loads(await ws.recv()))
        # The stream closes after the job finishes (or at once if it had).
        assert state["data"]["status"] == "succeeded" or tail[-1]["type"] == "job.succeeded"

        resumed: list[tuple[str, dict[str, Any]]] = []
        async with http.stream(
            "GET",
            "/api/v1/events",
            headers={**headers, "Accept": "text/event-stream", "Last-Event-ID": "unknown-id"},
        ) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            current: dict[str, str] = {}
            async with asyncio.timeout(10):
                async for line in response.aiter_lines():
                    if line.startswith("id: "):
                        current["id"] = line[4:]
                    elif line.startswith("data: "):
                        resumed.append((current["id"], json.loads(line[6:])))
                        if resumed[-1][1]["type"] == "job.succeeded":
                            break
        types = [event["type"] for _, event in resumed]
        assert types[0] == "job.queued"
        assert "job.succeeded" in types
        first_id = resumed[0][0]

        async with http.stream(
            "GET",
            "/api/v1/events",
            headers={**headers, "Accept": "text/event-stream", "Last-Event-ID": first_id},
        ) as response:
            after: list[str] = []
            async with asyncio.timeout(10):
                async for line in response.aiter_lines():
                    if line.startswith("id: "):
                        after.append(line[4:])
                        if after[-1] == resumed[-1][0]:
                            break
        assert after == [event_id for event_id, _ in resumed[1:]]
