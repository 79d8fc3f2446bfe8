"""Faults injected into the test database's server."""

from __future__ import annotations

import asyncio
import time

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine


async def terminate_other_backends(engine: AsyncEngine, timeout: float = 10) -> int:  # noqa: ASYNC109
    """Terminate every other connection to the current database, as an
    operator or a failover would, and wait until the server has closed them
    (`pg_terminate_backend` only signals). Returns how many were terminated."""
    async with engine.begin() as connection:
        rows = await connection.execute(
            text(
                "SELECT pid, pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = current_database() AND pid <> pg_backend_pid()"
            )
        )
        pids = [pid for pid, terminated in rows if terminated]
    deadline = time.monotonic() + timeout
    while pids:
        async with engine.connect() as connection:
            alive = (
                await connection.execute(
                    text("SELECT count(*) FROM pg_stat_activity WHERE pid = ANY(:pids)"),
                    {"pids": pids},
                )
            ).scalar_one()
        if not alive:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"{alive} terminated backends still running")
        await asyncio.sleep(0.02)
    return len(pids)
