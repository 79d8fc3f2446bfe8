"""The bare baseline: plain FastAPI + an asyncpg pool, nothing else.

No middleware, no ORM, no authentication, no row-level security: one query
per request. Every Dossier endpoint is reported as a ratio to this app's
requests/s, measured in the same run with the same server (one uvicorn
worker) and the same load. The same server also serves the naive stack's
documents list (`bench/naive_app.py`, under `/naive`), Dossier's other point
of comparison.

    BENCH_BASELINE_DSN=postgresql://... uvicorn bench.baseline_app:create_app --factory
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any
from uuid import UUID

import asyncpg
from fastapi import FastAPI, HTTPException, Query, Request

from bench.naive_app import add_naive_routes, naive_sessionmaker

TENANT_QUERY = "SELECT id, name, slug, plan, status, created_at FROM tenants WHERE id = $1"
RANKING_QUERY = (
    "SELECT id, name, skills, cardinality(ARRAY(SELECT unnest(skills) INTERSECT "
    "SELECT unnest($2::text[]))) AS hits FROM candidates "
    "WHERE tenant_id = $1 AND deleted_at IS NULL ORDER BY hits DESC, id DESC LIMIT 20"
)


def create_app() -> FastAPI:
    dsn = os.environ.get("BENCH_BASELINE_DSN")
    pool_max = int(os.environ.get("BENCH_BASELINE_POOL", "20"))

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        app.state.pool = (
            await asyncpg.create_pool(dsn, min_size=min(10, pool_max), max_size=pool_max)
            if dsn
            else None
        )
        app.state.naive_sessions = naive_sessionmaker(pool_max)
        try:
            yield
        finally:
            if app.state.pool is not None:
                await app.state.pool.close()
            if app.state.naive_sessions is not None:
                await app.state.naive_sessions.kw["bind"].dispose()

    app = FastAPI(lifespan=lifespan)

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/tenants/{tenant_id}")
    async def get_tenant(tenant_id: UUID, request: Request) -> dict[str, Any]:
        pool = request.app.state.pool
        if pool is None:
            raise HTTPException(503, "no database configured")
        row = await pool.fetchrow(TENANT_QUERY, tenant_id)
        if row is None:
            raise HTTPException(404, "tenant not found")
        return dict(row)

    @app.get("/candidates/{tenant_id}/ranking")
    async def rank_candidates(
        tenant_id: UUID, request: Request, skill: Annotated[list[str], Query()]
    ) -> list[dict[str, Any]]:
        """The bare counterpart of `/requisitions/{id}/matches`: one SQL query
        ranking a tenant's candidates by how many of the skills they have."""
        pool = request.app.state.pool
        if pool is None:
            raise HTTPException(503, "no database configured")
        rows = await pool.fetch(RANKING_QUERY, tenant_id, skill)
        return [dict(row) for row in rows]

    add_naive_routes(app)
    return app
