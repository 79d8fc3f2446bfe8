"""What a subject (a user, or an API key within its creator's permissions)
may do now: for checks made on someone's behalf after the request that
named them, such as webhook fan-out to the endpoint a user created."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from backend.auth.repository import PrincipalRepository


async def current_permissions(
    session: AsyncSession, tenant_id: UUID, subject_id: UUID | None
) -> frozenset[str]:
    """Nothing when the subject is unknown, gone, inactive or revoked."""
    if subject_id is None:
        return frozenset()
    return await PrincipalRepository(session).current_permissions(tenant_id, subject_id)
