"""The root pointer, liveness, readiness, version and Prometheus metrics (not
under `/api/v1`)."""

from __future__ import annotations

import asyncio
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from backend import __version__
from backend.kit.errors import problem_response
from backend.kit.metrics import DB_POOL, render_metrics
from backend.system.readiness import queue_report, refresh_queue_gauges, run_checks

router = APIRouter(tags=["system"])


class Health(BaseModel):
    status: str


class Version(BaseModel):
    name: str
    version: str


class RootLinks(BaseModel):
    docs: str
    redoc: str
    openapi: str
    health: str
    ready: str
    version: str


class Root(BaseModel):
    name: str
    version: str
    links: RootLinks


@router.get(
    "/",
    response_model=Root,
    summary="Where to start: the docs, the OpenAPI description, health and version",
)
async def root(request: Request) -> Root:
    prefix = request.scope.get("root_path", "")

    def path(route_name: str) -> str:
        return f"{prefix}{request.app.url_path_for(route_name)}"

    return Root(
        name=request.app.title,
        version=__version__,
        links=RootLinks(
            docs=path("swagger_ui"),
            redoc=path("redoc"),
            openapi=f"{prefix}{request.app.openapi_url}",
            health=path("health"),
            ready=path("ready"),
            version=path("version"),
        ),
    )


@router.get("/health", response_model=Health, summary="Liveness: the process answers")
async def health() -> Health:
    return Health(status="ok")


@router.get(
    "/ready",
    summary="Readiness: PostgreSQL and Redis answer",
    description="503 problem+json naming the failed checks under `checks` when one is down.",
    responses={503: {"description": "A dependency is down"}},
)
async def ready(request: Request) -> JSONResponse:
    checks = await run_checks(request.app)
    if all(result == "ok" for result in checks.values()):
        return JSONResponse(
            {"status": "ok", "checks": checks, "queue": await queue_report(request.app)}
        )
    down = ", ".join(name for name, result in checks.items() if result != "ok")
    return problem_response(503, "service_unavailable", f"Unavailable: {down}", checks=checks)


@router.get("/version", response_model=Version)
async def version(request: Request) -> Version:
    return Version(name=request.app.title, version=__version__)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
async def metrics(request: Request) -> Response:
    await asyncio.to_thread(_refresh_pool_gauges, request.app)
    await refresh_queue_gauges(request.app)
    body, content_type = render_metrics()
    return Response(body, media_type=content_type)


def _refresh_pool_gauges(app: Any) -> None:
    pool = app.state.db.engine.pool
    DB_POOL.labels("checked_out").set(pool.checkedout())
    DB_POOL.labels("idle").set(pool.checkedin())
    DB_POOL.labels("size").set(pool.size())
