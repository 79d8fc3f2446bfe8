"""WebSocket handshakes are rate-limited per client IP, and open event
streams are capped per principal (WS_MAX_CONNECTIONS_PER_PRINCIPAL) across API
processes, `WS /events`, `WS /jobs/{id}/stream` and `GET /events` (SSE)
together: past either, a socket is closed with 1013 (try again later), an SSE
request answered 429. The count lives in Redis as leases that
open sockets renew, so a dead process's sockets stop counting; with Redis
down, each process counts its own."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.engine import make_url
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from backend.events import limits
from backend.events.limits import ConnectionCap
from backend.kit.redis import create_redis
from backend.settings import Settings
from tests.factories import bearer_headers, make_tenant
from tests.support.server import clean_env, serving
from tests.support.tcp_proxy import TcpProxy


def _server_env(
    database_url: str, redis_url: str, settings: Settings, handshakes: str
) -> dict[str, str]:
    return clean_env(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        REDIS_KEY_PREFIX=settings.redis_key_prefix,
        ENVIRONMENT="test",
        LOG_LEVEL="WARNING",
        WS_PING_INTERVAL_SECONDS="0.5",
        WS_MAX_CONNECTIONS_PER_PRINCIPAL="2",
        RATE_LIMIT_WS_HANDSHAKE=handshakes,
    )


@pytest.fixture
def limited_server(database_url: str, redis_url: str, settings: Settings) -> Iterator[str]:
    env = _server_env(database_url, redis_url, settings, "6/60")
    with serving(env, "--no-worker") as (base, _):
        yield base.replace("http://", "ws://")


def _token(app: Any, user: Any) -> str:
    return bearer_headers(app, user)["Authorization"].removeprefix("Bearer ")


async def _close_code(ws: Any) -> int | None:
    with pytest.raises(ConnectionClosed) as closed:
        await ws.recv()
        await ws.recv()
    return closed.value.rcvd.code if closed.value.rcvd is not None else None


async def _admitted_within(url: str, seconds: float) -> bool:
    """Whether a socket to `url` is admitted (its first message arrives)
    within `seconds`, trying again while it is refused."""
    deadline = time.monotonic() + seconds
    while True:
        async with connect(url) as ws:
            try:
                if "ping" in await ws.recv():
                    return True
            except ConnectionClosed:
                pass
        if time.monotonic() >= deadline:
            return False
        await asyncio.sleep(0.1)


async def test_sockets_per_principal_and_handshakes_per_ip_are_capped(
    app: Any, limited_server: str
) -> None:
    tenant = await make_tenant(app, roles=("owner", "member"))
    owner = f"{limited_server}/api/v1/events?token={_token(app, tenant.owner)}"
    member = f"{limited_server}/api/v1/events?token={_token(app, tenant.users['member'])}"
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(connect(owner))
        second = await stack.enter_async_context(connect(owner))
        assert "ping" in await first.recv()
        assert "ping" in await second.recv()
        # A third socket of the same principal is refused; another principal's is not.
        async with connect(owner) as third:
            assert await _close_code(third) == 1013
        async with connect(member) as other:
            assert "ping" in await other.recv()
    # Six handshakes a minute from this address (four used): then 1013, even
    # with good credentials.
    codes = []
    for _ in range(3):
        async with connect(member) as ws:
            try:
                message = await ws.recv()
                codes.append(200 if "ping" in message else None)
            except ConnectionClosed as closed:
                codes.append(closed.rcvd.code if closed.rcvd is not None else None)
    assert codes == [200, 200, 1013]


async def test_job_streams_count_against_the_cap(
    app: Any, client: httpx.AsyncClient, limited_server: str
) -> None:
    tenant = await make_tenant(app)
    headers = bearer_headers(app, tenant.owner)
    created = await client.post("/api/v1/jobs", headers=headers, json={"type": "test.noop"})
    assert created.status_code == 202, created.text
    token = headers["Authorization"].removeprefix("Bearer ")
    # The server runs no worker: the job stays queued, its streams open.
    stream = f"{limited_server}/api/v1/jobs/{created.json()['id']}/stream?token={token}"
    events = f"{limited_server}/api/v1/events?token={token}"
    async with AsyncExitStack() as stack:
        first = await stack.enter_async_context(connect(stream))
        async with connect(stream) as second:
            for ws in (first, second):
                assert "job.state" in await ws.recv()
            async with connect(stream) as third:
                assert await _close_code(third) == 1013
            async with connect(events) as fourth:
                assert await _close_code(fourth) == 1013
        # A closed socket gives its slot back (once the server has seen it close).
        assert await _admitted_within(events, seconds=5.0)


async def test_cap_holds_across_api_processes_and_a_dead_process_sockets_expire(
    app: Any, database_url: str, redis_url: str, settings: Settings
) -> None:
    tenant = await make_tenant(app)
    env = _server_env(database_url, redis_url, settings, "100/60")
    with (
        serving(env, "--no-worker") as (first_base, first_process),
        serving(env, "--no-worker") as (second_base, _),
    ):
        token = _token(app, tenant.owner)
        on_first = f"{first_base.replace('http://', 'ws://')}/api/v1/events?token={token}"
        on_second = f"{second_base.replace('http://', 'ws://')}/api/v1/events?token={token}"
        async with connect(on_second) as kept, connect(on_first) as held:
            assert "ping" in await held.recv()
            assert "ping" in await kept.recv()
            # Two sockets, one in each process: a third is refused by either.
            for url in (on_first, on_second):
                async with connect(url) as refused:
                    assert await _close_code(refused) == 1013
            # The first process dies without giving its slot back...
            first_process.kill()
            first_process.wait()
            # ...and its socket stops counting once its lease runs out.
            deadline = time.monotonic() + 20
            while True:
                async with connect(on_second) as retry:
                    try:
                        admitted = "ping" in await retry.recv()
                    except ConnectionClosed:
                        admitted = False
                if admitted or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.3)
            assert admitted


def _cap(redis: Redis, settings: Settings, cap: int = 2, renew: float = 0.1) -> ConnectionCap:
    return ConnectionCap(redis, settings.redis_key_prefix, cap=cap, renew_seconds=renew)


async def test_two_processes_counters_share_one_cap(redis: Redis, settings: Settings) -> None:
    """Each API process has its own counter; Redis holds the count."""
    first, second = _cap(redis, settings), _cap(redis, settings)
    principal = uuid.uuid4()
    async with first.hold(principal) as one, second.hold(principal) as two:
        assert one
        assert two
        async with first.hold(principal) as three, second.hold(principal) as four:
            assert not three
            assert not four
        # Renewed at every interval: still counted long past the first lease.
        await asyncio.sleep(first.lease_ms / 1000 * 3)
        async with second.hold(principal) as five:
            assert not five
        async with second.hold(uuid.uuid4()) as other_principal:
            assert other_principal
    # Closed sockets free their slots.
    assert await redis.zcard(first.key(principal)) == 0
    async with second.hold(principal) as again:
        assert again


async def test_expired_lease_of_a_dead_process_no_longer_counts(
    redis: Redis, settings: Settings
) -> None:
    cap = _cap(redis, settings)
    principal = uuid.uuid4()
    seconds, micros = await redis.time()
    now_ms = seconds * 1000 + micros // 1000
    # One socket of a live process, one of a process that died a while ago.
    await redis.zadd(cap.key(principal), {"live": now_ms + 60_000, "dead": now_ms - 1})
    async with cap.hold(principal) as taken:
        assert taken
        async with cap.hold(principal) as over:
            assert not over
    assert await redis.zrange(cap.key(principal), 0, -1) == ["live"]


async def test_with_redis_down_each_process_counts_its_own_sockets(
    redis: Redis,
    redis_url: str,
    settings: Settings,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    target = make_url(redis_url.replace("redis://", "postgresql://"))
    if not target.host:
        pytest.skip("the test Redis listens on a Unix socket only")
    monkeypatch.setattr(limits, "FAILURE_BACKOFF_SECONDS", 0.3)
    proxy = TcpProxy(target.host, target.port or 6379)
    await proxy.start()
    through_proxy = create_redis(f"redis://127.0.0.1:{proxy.port}/{target.database or 0}")
    cap, elsewhere = _cap(through_proxy, settings), _cap(redis, settings)
    principal = uuid.uuid4()
    try:
        await proxy.stop()
        with caplog.at_level(logging.WARNING, logger="dossier.events"):
            async with cap.hold(principal) as one, cap.hold(principal) as two:
                # Fails open across processes: this one's own count still caps.
                assert one
                assert two
                async with cap.hold(principal) as three:
                    assert not three
                assert "connection cap unavailable" in caplog.text
                # Redis back: the sockets admitted meanwhile count there again.
                await proxy.start()
                await asyncio.sleep(0.3 + cap.renew_seconds * 3)
                assert await redis.zcard(cap.key(principal)) == 2
                async with elsewhere.hold(principal) as other_process:
                    assert not other_process
    finally:
        await through_proxy.aclose()
        await proxy.stop()


async def test_sse_streams_count_against_the_cap(app: Any, limited_server: str) -> None:
    """`GET /events` holds a slot like a socket: past the cap it answers 429
    `rate_limited` with Retry-After, and a socket is refused while two SSE
    streams are open; a closed stream gives its slot back."""
    tenant = await make_tenant(app)
    headers = {**bearer_headers(app, tenant.owner), "Accept": "text/event-stream"}
    base = limited_server.replace("ws://", "http://")
    socket = f"{limited_server}/api/v1/events?token={_token(app, tenant.owner)}"

    async def opened(http: httpx.AsyncClient, stack: AsyncExitStack) -> None:
        """A stream kept open until `stack` closes."""
        response = await stack.enter_async_context(
            http.stream("GET", "/api/v1/events", headers=headers)
        )
        assert response.status_code == 200
        assert await anext(response.aiter_lines()) == ": connected"

    async def status_of_another(http: httpx.AsyncClient) -> int:
        async with http.stream("GET", "/api/v1/events", headers=headers) as response:
            return response.status_code

    async with httpx.AsyncClient(base_url=base, timeout=10) as http, AsyncExitStack() as stack:
        await opened(http, stack)
        async with AsyncExitStack() as second:
            await opened(http, second)
            refused = await http.get("/api/v1/events", headers=headers)
            assert refused.status_code == 429
            assert refused.json()["code"] == "rate_limited"
            assert int(refused.headers["Retry-After"]) >= 1
            async with connect(socket) as ws:
                assert await _close_code(ws) == 1013
        # The closed stream's slot comes back once the server has seen it go.
        deadline = time.monotonic() + 5.0
        while await status_of_another(http) == 429:
            assert time.monotonic() < deadline, "the closed stream kept its slot"
            await asyncio.sleep(0.1)
