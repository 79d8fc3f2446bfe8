"""WebSocket handshakes are rate-limited per client IP, and open sockets are
capped per principal (WS_MAX_CONNECTIONS_PER_PRINCIPAL): past either, the
socket is closed with 1013 (try again later)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from backend.settings import Settings
from tests.factories import bearer_headers, make_tenant
from tests.support.server import clean_env, serving


@pytest.fixture
def limited_server(database_url: str, redis_url: str, settings: Settings) -> Iterator[str]:
    env = clean_env(
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        REDIS_KEY_PREFIX=settings.redis_key_prefix,
        ENVIRONMENT="test",
        LOG_LEVEL="WARNING",
        WS_PING_INTERVAL_SECONDS="0.5",
        WS_MAX_CONNECTIONS_PER_PRINCIPAL="2",
        RATE_LIMIT_WS_HANDSHAKE="6/60",
    )
    with serving(env) as (base, _):
        yield base.replace("http://", "ws://")


def _token(app: Any, user: Any) -> str:
    return bearer_headers(app, user)["Authorization"].removeprefix("Bearer ")


async def _close_code(ws: Any) -> int | None:
    with pytest.raises(ConnectionClosed) as closed:
        await ws.recv()
        await ws.recv()
    return closed.value.rcvd.code if closed.value.rcvd is not None else None


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
