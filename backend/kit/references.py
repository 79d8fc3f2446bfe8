"""Live-reference checks: does an id name a live resource of the current tenant?

A domain that refers to another domain's resource by id (a job's document, a
document's case, an upload's case) asks here instead of importing the other
domain; the owning domain's check is registered through `backend/plugins.py`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

LiveCheck = Callable[[AsyncSession, UUID], Awaitable[bool]]

_checks: dict[str, LiveCheck] = {}


def register_reference(name: str, check: LiveCheck) -> None:
    _checks[name] = check


async def is_live(session: AsyncSession, name: str, resource_id: UUID) -> bool:
    """True when `resource_id` is a live `name` of the session's tenant."""
    check = _checks.get(name)
    if check is None:
        raise LookupError(f"no reference check registered for {name!r}")
    return await check(session, resource_id)
