"""Periodic housekeeping tasks that domains offer and every worker runs
(`backend/worker/maintenance.py`), registered through `backend/plugins.py`.

A task runs inside the round's transaction, in the named system scope, and
returns how many things it removed or changed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession

from backend.settings import Settings

MaintenanceTask = Callable[[AsyncSession, Settings], Awaitable[int]]

maintenance_tasks: dict[str, MaintenanceTask] = {}


def register_maintenance(name: str, task: MaintenanceTask) -> None:
    maintenance_tasks[name] = task
