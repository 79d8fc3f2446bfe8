"""Periodic housekeeping run by every worker: the domains' maintenance tasks
(`backend/jobs/maintenance.py`; e.g. expired resumable uploads removed, rows
now, part blobs after commit).

Several workers may run it at once; a transaction-level advisory lock lets one
of them do each round and the others skip it.
"""

from __future__ import annotations

import asyncio
import logging

from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from backend.jobs.maintenance import maintenance_tasks
from backend.kit.db import Database, system_scope
from backend.settings import Settings

logger = logging.getLogger("dossier.worker.maintenance")

# An arbitrary, fixed advisory-lock key for the maintenance round.
_LOCK_KEY = 0x444F5353  # "DOSS"


async def run_maintenance_round(database: Database, settings: Settings) -> int | None:
    """One round; the number of things the tasks removed or changed, or None
    if another worker holds the round."""
    with system_scope("worker.maintenance"):
        async with database.transaction() as session:
            locked = await session.scalar(
                text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": _LOCK_KEY}
            )
            if not locked:
                return None
            counts = {
                name: await task(session, settings) for name, task in maintenance_tasks.items()
            }
    for name, count in counts.items():
        if count:
            logger.info("maintenance", extra={"task": name, "count": count})
    return sum(counts.values())


async def maintenance_loop(database: Database, settings: Settings) -> None:
    while True:
        await asyncio.sleep(settings.maintenance_interval_seconds)
        try:
            await run_maintenance_round(database, settings)
        except (DBAPIError, OSError) as exc:
            logger.warning(
                "maintenance skipped: database unavailable", extra={"error": type(exc).__name__}
            )
