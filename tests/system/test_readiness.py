"""`/ready` names what is down; requests fail with 503 during an outage and
the app recovers by itself when the service returns."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from redis.asyncio import Redis
from sqlalchemy.engine import make_url

from backend.main import create_app
from backend.settings import Settings
from tests.conftest import make_settings
from tests.factories import bearer_headers, make_tenant
from tests.support.postgres import terminate_other_backends
from tests.support.tcp_proxy import TcpProxy


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _client_for(settings: Settings) -> AsyncIterator[tuple[Any, httpx.AsyncClient]]:
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as http:
            yield app, http


async def test_ready_is_ok_when_everything_answers(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["database"] == "ok"
    assert response.json()["checks"]["redis"] == "ok"


async def test_ready_names_redis_when_it_is_down(database_url: str) -> None:
    settings = make_settings(database_url, f"redis://127.0.0.1:{_closed_port()}/0")
    async for _, http in _client_for(settings):
        response = await http.get("/ready")
        assert response.status_code == 503
        assert response.headers["content-type"].startswith("application/problem+json")
        body = response.json()
        assert body["code"] == "service_unavailable"
        assert body["checks"]["redis"] == "down"
        assert body["checks"]["database"] == "ok"
        assert "redis" in body["detail"]


async def test_ready_names_database_when_it_is_down(redis_url: str) -> None:
    url = f"postgresql://postgres@127.0.0.1:{_closed_port()}/nothing"
    async for _, http in _client_for(make_settings(url, redis_url)):
        response = await http.get("/ready")
        assert response.status_code == 503
        assert response.json()["checks"]["database"] == "down"
        assert response.json()["checks"]["redis"] == "ok"


async def test_database_outage_gives_503_then_recovers(
    database_url: str, redis_url: str, app: Any
) -> None:
    """PostgreSQL reached through a proxy that is stopped and started again."""
    url = make_url(database_url)
    if not url.host:
        pytest.skip("the test PostgreSQL listens on a Unix socket only")
    proxy = TcpProxy(url.host, url.port or 5432)
    await proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    tenant = await make_tenant(app, "Outage")
    async for outage_app, http in _client_for(make_settings(proxied, redis_url)):
        headers = bearer_headers(outage_app, tenant.owner)
        assert (await http.get("/ready")).status_code == 200

        await proxy.stop()
        assert (await http.get("/ready")).json()["checks"]["database"] == "down"
        down = await _authenticated_read(http, headers)
        assert down.status_code == 503
        assert down.json()["code"] == "service_unavailable"

        await proxy.start()
        assert (await http.get("/ready")).status_code == 200
        assert (await _authenticated_read(http, headers)).status_code != 503
    await proxy.stop()


async def test_database_restart_between_requests_is_not_noticed(
    database_url: str, redis_url: str, app: Any
) -> None:
    """Pooled connections cut while idle (PostgreSQL restarted between two
    requests) are replaced at checkout: no request fails afterwards."""
    url = make_url(database_url)
    if not url.host:
        pytest.skip("the test PostgreSQL listens on a Unix socket only")
    proxy = TcpProxy(url.host, url.port or 5432)
    await proxy.start()
    proxied = url.set(host="127.0.0.1", port=proxy.port).render_as_string(hide_password=False)
    tenant = await make_tenant(app, "Restart")
    async for restart_app, http in _client_for(make_settings(proxied, redis_url)):
        headers = bearer_headers(restart_app, tenant.owner)
        assert (await _authenticated_read(http, headers)).status_code == 200

        await proxy.stop()
        await proxy.start()
        await asyncio.sleep(0.05)  # the event loop sees the cut sockets close
        assert (await _authenticated_read(http, headers)).status_code == 200
        assert (await http.get("/ready")).status_code == 200
    await proxy.stop()


async def test_connections_terminated_by_the_server_are_not_noticed(
    client: httpx.AsyncClient, app: Any, owner_engine: Any
) -> None:
    """Every pooled connection terminated on the server between two requests
    (an operator's `pg_terminate_backend`, a failover): the checkout's ping
    finds each dead one and replaces it, so no request fails."""
    tenant = await make_tenant(app, "Terminated")
    headers = bearer_headers(app, tenant.owner)
    for _ in range(3):
        assert (await _authenticated_read(client, headers)).status_code == 200
    assert await terminate_other_backends(owner_engine) >= 1
    for _ in range(3):
        assert (await _authenticated_read(client, headers)).status_code == 200


async def _authenticated_read(http: httpx.AsyncClient, headers: dict[str, str]) -> httpx.Response:
    """Any route whose principal lookup needs the database."""
    return await http.get("/api/v1/auth/me", headers=headers)


async def test_redis_outage_fails_ready_then_recovers(database_url: str, redis_url: str) -> None:
    redis_target = make_url(redis_url.replace("redis://", "postgresql://"))
    if not redis_target.host:
        pytest.skip("the test Redis listens on a Unix socket only")
    proxy = TcpProxy(redis_target.host, redis_target.port or 6379)
    await proxy.start()
    async for app, http in _client_for(
        make_settings(database_url, f"redis://127.0.0.1:{proxy.port}/0")
    ):
        assert (await http.get("/ready")).status_code == 200
        await proxy.stop()
        assert (await http.get("/ready")).json()["checks"]["redis"] == "down"
        await proxy.start()
        redis: Redis = app.state.redis
        assert await redis.ping()
        assert (await http.get("/ready")).status_code == 200
    await proxy.stop()
