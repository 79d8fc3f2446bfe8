"""The checks behind `/ready`: each dependency answers within a short timeout."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from backend.jobs.monitoring import queue_summary, refresh_job_gauges

logger = logging.getLogger("dossier.ready")

CHECK_TIMEOUT_SECONDS = 2.0

Check = Callable[[Any], Awaitable[None]]


async def _database(app: Any) -> None:
    await app.state.db.ping()


async def _redis(app: Any) -> None:
    await app.state.redis.ping()


async def _rate_limiter(app: Any) -> None:
    """The limiter fails open when Redis is down; this is where it shows."""
    await app.state.rate_limiter.check()


CHECKS: dict[str, Check] = {"database": _database, "redis": _redis, "rate_limiter": _rate_limiter}


async def _run(name: str, check: Check, app: Any) -> str:
    try:
        await asyncio.wait_for(check(app), CHECK_TIMEOUT_SECONDS)
    except Exception as exc:
        logger.warning("readiness check failed", extra={"check": name, "error": type(exc).__name__})
        return "down"
    return "ok"


async def queue_report(app: Any) -> dict[str, Any] | None:
    """The job queue's depth and the age of its oldest queued job (None if unreadable)."""
    try:
        return await asyncio.wait_for(queue_summary(app.state.db), CHECK_TIMEOUT_SECONDS)
    except Exception as exc:
        logger.warning("queue report failed", extra={"error": type(exc).__name__})
        return None


async def refresh_queue_gauges(app: Any) -> None:
    try:
        await asyncio.wait_for(refresh_job_gauges(app.state.db), CHECK_TIMEOUT_SECONDS)
    except Exception as exc:
        logger.warning("job metrics unavailable", extra={"error": type(exc).__name__})


async def run_checks(app: Any) -> dict[str, str]:
    results = await asyncio.gather(*(_run(name, check, app) for name, check in CHECKS.items()))
    return dict(zip(CHECKS, results, strict=True))
