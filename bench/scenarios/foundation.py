"""Issue 2: the bare baselines, `/health`, and one tenant-scoped database read
through the full stack (principal, session, RLS `set_config`, repository,
response model)."""

from __future__ import annotations

from bench.context import BenchContext
from bench.registry import HttpScenario, register


async def bare_tenant_path(context: BenchContext) -> str:
    return f"/tenants/{(await context.tenant()).id}"


register(
    # The baselines every other scenario is compared with.
    HttpScenario(
        "bare-health",
        path="/health",
        target="baseline",
        description="bare FastAPI: a constant JSON answer",
    ),
    HttpScenario(
        "bare-query",
        path=bare_tenant_path,
        target="baseline",
        description="bare FastAPI + asyncpg: one tenant row by primary key",
    ),
    HttpScenario(
        "health",
        path="/health",
        baseline="bare-health",
        description="Dossier /health through the whole middleware stack",
    ),
    HttpScenario(
        "tenant-read",
        path="/api/v1/tenant",
        headers=lambda context: context.owner_headers(),
        baseline="bare-query",
        description="GET /api/v1/tenant as the owner: bearer principal, rate limit, "
        "session + RLS set_config, repository, response model",
    ),
)
