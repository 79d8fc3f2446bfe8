"""The application factory: middleware, error handlers, routers, lifespan."""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.routing import APIRoute

from backend import __version__
from backend.auth.cache import PrincipalCache
from backend.auth.epochs import Epochs, share_epochs
from backend.events.hub import close_hub
from backend.kit.body_limit import BodyLimitMiddleware
from backend.kit.db import Database
from backend.kit.errors import install_error_handlers
from backend.kit.event_bus import EventBus, configure_event_bus, event_bus
from backend.kit.logging import configure_logging
from backend.kit.mail import create_mailer
from backend.kit.middleware import RequestContextMiddleware
from backend.kit.ratelimit import RateLimitBackend
from backend.kit.redis import create_redis
from backend.kit.storage import configure_storage, release_storage
from backend.plugins import api_router, install, root_routers
from backend.settings import Settings, get_settings
from backend.system.docs import mount_docs
from backend.worker.runner import Worker

logger = logging.getLogger("dossier")

DESCRIPTION = """
Multi-tenant backend for documents, cases and processing jobs.

Authenticate with **Authorize** (OAuth2 password flow: email and password) or
send an API key as `X-API-Key`. Errors are RFC 9457 problem details with a
stable `code` and the `request_id`.
"""


def operation_id(route: APIRoute) -> str:
    """`documents-list`, `documents-get-content`: clean names for generated clients."""
    tag = str(route.tags[0]) if route.tags else "default"
    nouns = {tag.replace("-", "_"), tag.replace("-", "_").rstrip("s")}
    words = route.name
    for noun in sorted(nouns, key=len, reverse=True):
        words = words.replace(f"_{noun}", "").replace(f"{noun}_", "")
    return f"{tag}-{words.replace('_', '-')}"


def required_url(value: object, name: str) -> str:
    secret = getattr(value, "get_secret_value", None)
    if secret is None:
        raise RuntimeError(
            f"{name} is not set: configure it, or run `dossier serve`, which starts "
            "embedded PostgreSQL and Redis when none is configured"
        )
    return str(secret())


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    app.state.db = Database(
        required_url(settings.database_url, "DATABASE_URL"),
        app_role=settings.db_app_role,
        pool_size=settings.db_pool_size,
        max_overflow=settings.db_max_overflow,
    )
    app.state.redis = create_redis(required_url(settings.redis_url, "REDIS_URL"))
    # A second app in the same process (tests, embedded tools) stacks its bus
    # on the first one's and gives it back when it stops.
    enclosing_bus = event_bus()
    configure_event_bus(
        EventBus(app.state.redis, settings.redis_key_prefix, buffer_size=settings.event_buffer_size)
    )
    storage = configure_storage(settings)
    # The limiter's Lua script loads at the first check: starting needs no Redis.
    app.state.rate_limiter = RateLimitBackend(app.state.redis, settings.redis_key_prefix)
    app.state.principal_cache = PrincipalCache(settings.principal_cache_seconds)
    share_epochs(
        app.state.db, Epochs(app.state.redis, settings.redis_key_prefix, app.state.principal_cache)
    )
    app.state.mailer = create_mailer(settings)
    # Everything built so far lives as long as the process: out of the
    # collector's sight, so that its full passes stop re-scanning the app's
    # import-time objects (they cost throughput and long latency tails).
    gc.collect()
    gc.freeze()
    worker = (
        Worker(settings, concurrency=settings.serve_worker_concurrency)
        if app.state.run_worker
        else None
    )
    worker_task = asyncio.create_task(worker.run(), name="job-worker") if worker else None
    if worker_task is not None:
        worker_task.add_done_callback(_worker_ended)
    try:
        yield
    finally:
        if worker is not None and worker_task is not None:
            # Stop claiming; running jobs get JOB_SHUTDOWN_TIMEOUT_SECONDS.
            worker.stop()
            await asyncio.gather(worker_task, return_exceptions=True)
        await app.state.mailer.drain()
        await close_hub(app)
        configure_event_bus(enclosing_bus)
        await app.state.db.settled()  # in-doubt commits still need their storage
        await release_storage(storage)
        await app.state.redis.aclose()
        await app.state.db.dispose()


def _worker_ended(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        logger.error("the in-process job worker stopped", exc_info=task.exception())


def create_app(settings: Settings | None = None, *, run_worker: bool = False) -> FastAPI:
    """The API. With `run_worker`, its lifespan also runs a job worker in this
    process (`dossier serve` on a single machine; SERVE_WORKER_CONCURRENCY
    jobs at once), stopped and drained before the app's resources close."""
    settings = settings or get_settings()
    configure_logging(settings.log_level)
    app = FastAPI(
        title=settings.app_name,
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        generate_unique_id_function=operation_id,
        # FastAPI's own pages load their assets from a CDN: `mount_docs` serves
        # `/docs` and `/redoc` with everything they load from Dossier itself.
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.run_worker = run_worker
    install(settings)
    install_error_handlers(app)
    for router in root_routers():
        app.include_router(router)
    mount_docs(app)
    app.include_router(api_router())

    app.add_middleware(
        GZipMiddleware,
        minimum_size=settings.gzip_minimum_size,
        # Already-compressed or binary downloads stream as they are (sizes, ranges).
        exclude_content_types=(
            "text/event-stream",
            "application/pdf",
            "image/png",
            "image/jpeg",
            "image/tiff",
            "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
            "application/octet-stream",
            "application/zip",
            "text/plain",  # text documents: length, ranges and ETag of the stored bytes
        ),
    )
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_credentials=True,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["X-Request-ID", "ETag", "Location", "Retry-After"],
        )
    # Bodies are counted as they arrive (413 before parsing); upload routes
    # opt out with `kit.body_limit.STREAMED_BODY`.
    app.add_middleware(BodyLimitMiddleware, max_bytes=settings.max_json_bytes)
    app.add_middleware(
        RequestContextMiddleware,
        trusted_proxies=settings.trusted_proxies,
        max_header_bytes=settings.max_header_bytes,
    )
    return app


def create_app_with_worker() -> FastAPI:
    """`dossier serve`'s factory (the default, `--worker`): API and job worker."""
    return create_app(run_worker=True)
