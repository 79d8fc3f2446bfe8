"""`/api/v1/tenant`: the caller's own tenant, its limits and usage."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter
from sqlalchemy.ext.asyncio import AsyncConnection

from backend.auth.deps import ScopedRead, require, scoped_read
from backend.auth.principal import Principal
from backend.kit.deps import AppSettings, DbSession
from backend.roles.permissions import Permission
from backend.settings import Settings
from backend.tenants.plans import resolve_limits
from backend.tenants.schemas import LimitsOut, TenantOut, TenantUpdate, UsageOut
from backend.tenants.service import tenant_service

router = APIRouter(prefix="/tenant", tags=["tenant"])


async def tenant_out(connection: AsyncConnection, settings: Settings, tenant_id: UUID) -> TenantOut:
    """The tenant with its limits and usage, read in one statement."""
    tenant, usage = await tenant_service.get_with_usage(connection, tenant_id)
    limits = resolve_limits(settings, tenant["plan"], tenant["limits"])
    return TenantOut(
        id=tenant["id"],
        name=tenant["name"],
        slug=tenant["slug"],
        plan=tenant["plan"],
        status=tenant["status"],
        settings=tenant["settings"],
        limits=LimitsOut(**limits.as_dict()),
        usage=UsageOut(**usage),
        created_at=tenant["created_at"],
        updated_at=tenant["updated_at"],
    )


@router.get("", response_model=TenantOut, description="Limits come from the plan and overrides.")
async def get_tenant(
    read: Annotated[ScopedRead, scoped_read(Permission.TENANT_READ)], settings: AppSettings
) -> TenantOut:
    return await tenant_out(read.connection, settings, read.principal.tenant_id)


@router.patch(
    "",
    response_model=TenantOut,
    description="`name`, and `settings` merged into the current ones (null removes a key). "
    "Plan, status and limits are changed by platform admins.",
)
async def update_tenant(
    data: TenantUpdate,
    principal: Annotated[Principal, require(Permission.TENANT_MANAGE)],
    session: DbSession,
    settings: AppSettings,
) -> TenantOut:
    await tenant_service.update_tenant(
        session, principal, principal.tenant_id, name=data.name, settings_patch=data.settings
    )
    return await tenant_out(await session.connection(), settings, principal.tenant_id)
