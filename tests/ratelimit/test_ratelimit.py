"""Rate limits: per principal, else per client IP; separate buckets per
client; `Retry-After` from the bucket's remaining time; expiring Redis keys;
the login limit; failing open when Redis is down."""

from __future__ import annotations

import asyncio
import math
import socket
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import REGISTRY
from redis.asyncio import Redis

from backend.main import create_app
from backend.settings import Settings
from tests.conftest import make_settings
from tests.factories import PASSWORD, bearer_headers, make_api_key, make_tenant

ROUTE = "/api/v1/tenant"  # any /api/v1 route: the limit is router-wide
TOKEN = "/api/v1/auth/token"
RESET = "/api/v1/auth/password-reset/request"

AppFactory = Callable[..., Any]


@pytest.fixture
async def limited(database_url: str, redis_url: str) -> AsyncIterator[Callable[..., Any]]:
    """`async with limited(**settings) as make_client:` an app with its own
    settings (and lifespan); `make_client(ip)` is an HTTP client from `ip`."""

    @asynccontextmanager
    async def start(
        **overrides: Any,
    ) -> AsyncIterator[tuple[FastAPI, Callable[[str], httpx.AsyncClient]]]:
        settings = make_settings(database_url, overrides.pop("redis_url", redis_url), **overrides)
        app = create_app(settings)
        async with app.router.lifespan_context(app):

            def make_client(ip: str = "10.0.0.1") -> httpx.AsyncClient:
                transport = httpx.ASGITransport(app=app, client=(ip, 40000))
                return httpx.AsyncClient(transport=transport, base_url="http://testserver")

            yield app, make_client

    return start


async def _statuses(http: httpx.AsyncClient, count: int, **kwargs: Any) -> list[int]:
    return [(await http.get(ROUTE, **kwargs)).status_code for _ in range(count)]


async def test_anonymous_callers_are_limited_per_ip(limited: Any) -> None:
    async with (
        limited(rate_limit_anonymous="3/60") as (_app, make_client),
        make_client("10.0.0.1") as first,
        make_client("10.0.0.2") as second,
    ):
        assert await _statuses(first, 3) == [401, 401, 401]
        refused = await first.get(ROUTE)
        assert refused.status_code == 429
        assert refused.json()["code"] == "rate_limited"
        assert refused.headers["content-type"].startswith("application/problem+json")
        # Another client has its own bucket.
        assert await _statuses(second, 3) == [401, 401, 401]
        # A spoofed X-Forwarded-For from an untrusted peer changes nothing.
        spoofed = await first.get(ROUTE, headers={"X-Forwarded-For": "203.0.113.9"})
        assert spoofed.status_code == 429


async def test_forwarded_for_is_believed_from_trusted_proxies_only(limited: Any) -> None:
    async with (
        limited(rate_limit_anonymous="1/60", trusted_proxies="10.9.9.9") as (_, make_client),
        make_client("10.9.9.9") as proxy,
    ):
        one = {"X-Forwarded-For": "198.51.100.1"}
        two = {"X-Forwarded-For": "198.51.100.2"}
        assert (await proxy.get(ROUTE, headers=one)).status_code == 401
        assert (await proxy.get(ROUTE, headers=one)).status_code == 429
        assert (await proxy.get(ROUTE, headers=two)).status_code == 401


async def test_authenticated_calls_are_keyed_by_principal_not_ip(limited: Any) -> None:
    async with limited(rate_limit_default="3/60", rate_limit_anonymous="1/60") as (
        app,
        make_client,
    ):
        tenant = await make_tenant(app, roles=("owner", "viewer"))
        key = await make_api_key(app, tenant.id, ["tenant:read"])
        async with make_client("10.0.0.7") as http:
            owner = bearer_headers(app, tenant.owner)
            viewer = bearer_headers(app, tenant.users["viewer"])
            # Same IP, three principals, each with its own bucket of 3.
            assert await _statuses(http, 3, headers=owner) == [200, 200, 200]
            assert await _statuses(http, 3, headers=viewer) == [200, 200, 200]
            assert await _statuses(http, 3, headers=key.headers) == [200, 200, 200]
            assert (await http.get(ROUTE, headers=owner)).status_code == 429
            assert (await http.get(ROUTE, headers=key.headers)).status_code == 429
            # A new token of the same user shares the user's bucket.
            assert (
                await http.get(ROUTE, headers=bearer_headers(app, tenant.owner))
            ).status_code == 429
            # Refused credentials are counted against the IP, as anonymous calls.
            bad = {"Authorization": "Bearer not-a-token"}
            assert await _statuses(http, 2, headers=bad) == [401, 429]


async def test_a_revoked_token_does_not_drain_its_users_bucket(limited: Any) -> None:
    """The denylist check and the count share one Redis round trip; a revoked
    token is refused before it is counted against its user."""
    async with limited(rate_limit_default="2/60", rate_limit_anonymous="100/60") as (
        app,
        make_client,
    ):
        tenant = await make_tenant(app, roles=("owner",))
        async with make_client("10.0.0.8") as http:
            stolen = bearer_headers(app, tenant.owner)
            assert (await http.post("/api/v1/auth/logout", headers=stolen)).status_code in (
                200,
                204,
            )
            assert await _statuses(http, 3, headers=stolen) == [401, 401, 401]
            fresh = bearer_headers(app, tenant.owner)
            assert await _statuses(http, 3, headers=fresh) == [200, 429, 429]


async def test_a_keys_own_limit_is_capped_by_the_tenant_tier(
    limited: Any, owner_engine: Any
) -> None:
    """A key's own limit applies below the tenant's, never above it: plans
    can shrink after a key was made, so the cap is applied at every use."""
    from sqlalchemy import text

    async with limited(rate_limit_default="50/60") as (app, make_client):
        tenant = await make_tenant(app)
        generous = await make_api_key(app, tenant.id, ["tenant:read"], rate_limit="4/60")
        strict = await make_api_key(app, tenant.id, ["tenant:read"], rate_limit="1/60")
        async with owner_engine.begin() as connection:
            await connection.execute(
                text('UPDATE tenants SET limits = \'{"rate_limit": "2/60"}\' WHERE id = :id'),
                {"id": tenant.id},
            )
        plain = await make_api_key(app, tenant.id, ["tenant:read"])
        async with make_client() as http:
            owner = bearer_headers(app, tenant.owner)
            assert await _statuses(http, 3, headers=owner) == [200, 200, 429]  # tenant tier
            assert await _statuses(http, 3, headers=plain.headers) == [200, 200, 429]
            assert await _statuses(http, 3, headers=generous.headers) == [200, 200, 429]
            assert await _statuses(http, 2, headers=strict.headers) == [200, 429]


async def test_retry_after_is_the_buckets_remaining_time_and_keys_expire(
    limited: Any, redis: Redis
) -> None:
    async with limited(rate_limit_anonymous="2/30") as (app, make_client):
        async with make_client("10.0.0.3") as http:
            await http.get(ROUTE)
            key = app.state.rate_limiter.key("api", "ip:10.0.0.3")
            ttl_ms = await redis.pttl(key)
            assert 0 < ttl_ms <= 30_000  # the key expires by itself
            await http.get(ROUTE)
            refused = await http.get(ROUTE)
            remaining_ms = await redis.pttl(key)
            retry_after = int(refused.headers["retry-after"])
            assert math.ceil(remaining_ms / 1000) <= retry_after <= 30
            assert refused.status_code == 429
        # Every limiter key carries an expiry.
        keys = [k async for k in redis.scan_iter(f"{app.state.rate_limiter.prefix}:*")]
        assert keys
        for each in keys:
            assert await redis.pttl(each) > 0


async def test_login_failures_are_limited_per_username_and_ip_and_reset_after_window(
    limited: Any,
) -> None:
    async with limited(rate_limit_login="2/3", rate_limit_anonymous="100/60") as (
        app,
        make_client,
    ):
        tenant = await make_tenant(app)
        email = tenant.owner.email
        wrong = {"username": email, "password": "not the password"}
        right = {"username": email.upper(), "password": PASSWORD}
        async with make_client("10.0.1.1") as first, make_client("10.0.1.2") as second:
            assert (await first.post(TOKEN, data=wrong)).status_code == 401
            assert (await first.post(TOKEN, data=wrong)).status_code == 401
            refused = await first.post(TOKEN, data=right)  # even the right password
            assert refused.status_code == 429
            assert refused.json()["code"] == "rate_limited"
            assert 1 <= int(refused.headers["retry-after"]) <= 3
            # Same username from an address that has not failed (in other
            # letter case): the right password gets in.
            ok = await second.post(TOKEN, data=right)
            assert ok.status_code == 200, ok.text
            assert ok.json()["token_type"] == "bearer"
            # After the window the failing address may try again.
            await asyncio.sleep(3.1)
            assert (await first.post(TOKEN, data=right)).status_code == 200
            # One IP trying many usernames trips its IP attempt bucket.
            await asyncio.sleep(3.1)
            statuses = [
                (
                    await first.post(TOKEN, data={**wrong, "username": f"u{i}@example.test"})
                ).status_code
                for i in range(3)
            ]
            assert statuses == [401, 401, 429]


async def test_junk_logins_for_the_owners_email_never_lock_the_owner_out(
    limited: Any,
) -> None:
    """Ten junk logins a minute from one address, then a distributed guesser
    past the per-username cap: the owner, from an address that has not
    failed, still signs in; the guessing addresses are refused."""
    async with limited(
        rate_limit_login="5/60", rate_limit_login_username="8/60", rate_limit_anonymous="100/60"
    ) as (app, make_client):
        tenant = await make_tenant(app)
        email = tenant.owner.email
        wrong = {"username": email, "password": "guess"}
        right = {"username": email, "password": PASSWORD}
        async with make_client("10.0.2.1") as attacker, make_client("10.0.2.99") as owner:
            statuses = [(await attacker.post(TOKEN, data=wrong)).status_code for _ in range(7)]
            assert statuses == [401] * 5 + [429] * 2
            assert (await owner.post(TOKEN, data=right)).status_code == 200
        # Many addresses, one guess each: past the username cap (8), an
        # address that failed is refused, a clean one is not.
        for index in range(2, 7):
            async with make_client(f"10.0.2.{index}") as guesser:
                assert (await guesser.post(TOKEN, data=wrong)).status_code == 401
        async with make_client("10.0.2.2") as guesser:
            assert (await guesser.post(TOKEN, data=right)).status_code == 429
        async with make_client("10.0.2.100") as owner:
            assert (await owner.post(TOKEN, data=right)).status_code == 200


async def test_password_reset_requests_are_limited(limited: Any) -> None:
    async with (
        limited(rate_limit_login="1/60") as (_, make_client),
        make_client("10.0.2.1") as first,
        make_client("10.0.2.2") as second,
    ):
        body = {"email": "victim@example.test"}
        assert (await first.post(RESET, json=body)).status_code == 202
        assert (await first.post(RESET, json=body)).status_code == 429
        # Per email too: another IP cannot mail-bomb the same address.
        refused = await second.post(RESET, json=body)
        assert refused.status_code == 429
        assert int(refused.headers["retry-after"]) <= 60
        # Another address from a fresh IP is fine.
        async with make_client("10.0.2.3") as third:
            assert (await third.post(RESET, json={"email": "x@example.test"})).status_code == 202


def _failures() -> float:
    return REGISTRY.get_sample_value("dossier_rate_limiter_failures_total") or 0.0


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def test_fails_open_when_redis_is_down(limited: Any, app: Any) -> None:
    """Redis on a closed port: API-key calls (which need no Redis to
    authenticate) go through beyond the limit; failures are counted and
    `/ready` names the limiter."""
    tenant = await make_tenant(app)
    key = await make_api_key(app, tenant.id, ["tenant:read"], rate_limit="1/60")
    dead = f"redis://127.0.0.1:{_closed_port()}/0"
    before = _failures()
    async with limited(redis_url=dead) as (_, make_client), make_client() as http:
        assert await _statuses(http, 3, headers=key.headers) == [200, 200, 200]
        ready = await http.get("/ready")
        assert ready.status_code == 503
        assert ready.json()["checks"]["rate_limiter"] == "down"
    assert _failures() >= before + 3


async def test_ready_reports_the_limiter_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/ready")
    assert response.json()["checks"]["rate_limiter"] == "ok"


def test_settings_parse_limits(database_url: str, redis_url: str) -> None:
    settings: Settings = make_settings(database_url, redis_url, rate_limit_login="5/30")
    assert (settings.rate_limit_login.count, settings.rate_limit_login.seconds) == (5, 30)
