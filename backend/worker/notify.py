"""Wake-ups: the enqueueing transaction sends `NOTIFY`; the worker LISTENs on
a connection of its own (idle outside any transaction, which is when
PostgreSQL delivers notifications), reconnecting with a backoff, and polls
while it cannot listen."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any

import asyncpg

from backend.jobs.models import NOTIFY_CHANNEL
from backend.kit.db import Database

logger = logging.getLogger("dossier.worker")


async def _pause(stopping: asyncio.Event, seconds: float) -> None:
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stopping.wait(), seconds)


async def listen_for_jobs(database: Database, wake: asyncio.Event, stopping: asyncio.Event) -> None:
    """Set `wake` on every notification (and on each reconnection, to catch
    up on anything sent meanwhile) until `stopping` is set."""
    dsn = database.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)

    def notified(*args: Any) -> None:
        wake.set()

    backoff = 0.2
    while not stopping.is_set():
        connection: Any = None
        try:
            connection = await asyncpg.connect(dsn, timeout=10)
            await connection.add_listener(NOTIFY_CHANNEL, notified)
            wake.set()
            backoff = 0.2
            checked = time.monotonic()
            while not stopping.is_set() and not connection.is_closed():
                await asyncio.sleep(0.5)
                if time.monotonic() - checked > 5:
                    await connection.execute("SELECT 1")
                    checked = time.monotonic()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            logger.warning(
                "job notifications unavailable; polling until reconnected",
                extra={"error": type(exc).__name__},
            )
        finally:
            if connection is not None:
                with contextlib.suppress(Exception):
                    await connection.close(timeout=2)
        await _pause(stopping, backoff)
        backoff = min(backoff * 2, 5.0)
