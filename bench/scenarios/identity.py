"""Issue 3: authenticated reads through the whole identity stack, logins/s,
and whether a login storm stalls other requests.

* `auth-me` — `GET /api/v1/auth/me` by bearer token;
* `users-list` / `users-list-key` — `GET /api/v1/users?limit=20` by bearer
  token and by API key (`/auth/me` is a user's profile: keys get 403 there);
* `auth-login` — `POST /api/v1/auth/token` (argon2id at the configured cost);
* `auth-me-login-storm` — `/auth/me` p99 while logins saturate the server,
  next to its idle p99 measured in the same scenario (target: within 2x).
"""

from __future__ import annotations

import asyncio
from urllib.parse import urlencode

from backend.api_keys.models import ApiKey
from backend.kit.db import tenant_scope
from backend.kit.security.tokens import generate_api_key, keyed_hash
from bench.context import PASSWORD, BenchContext
from bench.load import drive
from bench.registry import CustomScenario, HttpScenario, Measurement, Request, RunOptions, register

FORM = {"Content-Type": "application/x-www-form-urlencoded"}


async def _api_key_headers(ctx: BenchContext) -> dict[str, str]:
    if "identity_api_key" not in ctx.state:
        tenant = await ctx.tenant()
        parts = generate_api_key()
        with tenant_scope(tenant.id):
            async with ctx.database.transaction() as session:
                session.add(
                    ApiKey(
                        tenant_id=tenant.id,
                        name="bench",
                        prefix=parts.prefix,
                        key_hash=keyed_hash(
                            ctx.settings.api_key_pepper.get_secret_value(), parts.key
                        ),
                        scopes=["users:read"],
                        # A key follows its creator's permissions.
                        created_by=tenant.owner.id,
                    )
                )
        ctx.state["identity_api_key"] = parts.key
    return {"X-API-Key": ctx.state["identity_api_key"]}


async def _login_requests(ctx: BenchContext) -> list[Request]:
    """One login per seeded user, round-robin (the bench tenant's four)."""
    tenant = await ctx.tenant()
    return [
        Request(
            path="/api/v1/auth/token",
            method="POST",
            headers=FORM,
            body=urlencode({"username": user.email, "password": PASSWORD}).encode(),
        )
        for user in tenant.users.values()
    ]


async def _me_requests(ctx: BenchContext) -> list[Request]:
    return [Request(path="/api/v1/auth/me", headers=await ctx.owner_headers())]


async def login_storm(ctx: BenchContext, options: RunOptions) -> Measurement:
    """Idle `/auth/me` first, then the same load while as many connections
    again hammer the login route; reports the storm's `/auth/me` figures."""
    me, logins = await _me_requests(ctx), await _login_requests(ctx)
    half = max(1, options.connections // 2)
    duration, cpus = options.duration, ctx.pinning.client
    idle = await drive(ctx.app_url, me, connections=half, duration=duration, cpus=cpus)
    during, storm = await asyncio.gather(
        drive(ctx.app_url, me, connections=half, duration=duration, cpus=cpus),
        drive(ctx.app_url, logins, connections=half, duration=duration, cpus=cpus),
    )
    during.details.update(
        idle_p50_ms=idle.p50_ms,
        idle_p99_ms=idle.p99_ms,
        idle_throughput=idle.throughput,
        p99_vs_idle=(during.p99_ms / idle.p99_ms) if during.p99_ms and idle.p99_ms else None,
        logins_per_s=storm.throughput,
        login_p99_ms=storm.p99_ms,
        login_errors=storm.errors,
    )
    during.errors += storm.errors
    return during


register(
    HttpScenario(
        "auth-me",
        path="/api/v1/auth/me",
        headers=lambda ctx: ctx.owner_headers(),
        baseline="bare-query",
        target_ratio=0.35,
        description="GET /api/v1/auth/me by bearer token: user, tenant, roles, permissions",
    ),
    HttpScenario(
        "users-list",
        path="/api/v1/users?limit=20",
        headers=lambda ctx: ctx.owner_headers(),
        baseline="bare-query",
        target_ratio=0.35,
        description="GET /api/v1/users?limit=20 by bearer token (keyset page, role names)",
    ),
    HttpScenario(
        "users-list-key",
        path="/api/v1/users?limit=20",
        headers=_api_key_headers,
        baseline="bare-query",
        target_ratio=0.35,
        description="GET /api/v1/users?limit=20 by API key (users:read)",
    ),
    HttpScenario(
        "auth-login",
        requests=_login_requests,
        baseline="bare-query",
        description="POST /api/v1/auth/token: argon2id verification off the event loop, "
        "session row, audit row",
    ),
    CustomScenario(
        "auth-me-login-storm",
        login_storm,
        baseline="auth-me",
        description="/auth/me while logins saturate the server; details: idle p99, "
        "p99_vs_idle (target <= 2), logins/s",
    ),
)
