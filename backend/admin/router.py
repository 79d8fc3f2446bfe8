"""`/api/v1/admin`: platform administration, for superadmins only (never API
keys). Every route runs in the named system scope `admin`, outside any one
tenant, and every change is audited."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from backend.admin.schemas import AdminTenantCreated, AdminUserOut, PurgeOut, StatsOut
from backend.admin.service import admin_service
from backend.audit.deps import AuditQuery
from backend.audit.schemas import AdminAuditEventOut
from backend.audit.service import audit_service
from backend.auth.deps import SuperAdmin
from backend.kit.deps import AppSettings, DbSession
from backend.kit.errors import Conflict
from backend.kit.pagination import CursorPage, ListQuery, Page, list_query
from backend.settings import Settings
from backend.tenants.models import Tenant, TenantStatus
from backend.tenants.plans import resolve_limits
from backend.tenants.schemas import (
    AdminTenantCreate,
    AdminTenantOut,
    AdminTenantUpdate,
    LimitsOut,
)
from backend.tenants.service import tenant_service
from backend.users.models import User

router = APIRouter(prefix="/admin", tags=["admin"])

IncludeDeleted = Annotated[bool, Query(description="Also soft-deleted rows")]


def tenant_out(settings: Settings, tenant: Tenant) -> AdminTenantOut:
    limits = resolve_limits(settings, tenant.plan, tenant.limits)
    return AdminTenantOut(
        id=tenant.id,
        name=tenant.name,
        slug=tenant.slug,
        plan=tenant.plan,
        status=tenant.status,
        settings=tenant.settings,
        limits=LimitsOut(**limits.as_dict()),
        limit_overrides=tenant.limits,
        created_at=tenant.created_at,
        updated_at=tenant.updated_at,
        deleted_at=tenant.deleted_at,
    )


def user_out(user: User, roles: list[str]) -> AdminUserOut:
    return AdminUserOut(
        id=user.id,
        tenant_id=user.tenant_id,
        email=user.email,
        full_name=user.full_name,
        is_active=user.is_active,
        is_superadmin=user.is_superadmin,
        roles=roles,
        last_login_at=user.last_login_at,
        created_at=user.created_at,
        updated_at=user.updated_at,
        deleted_at=user.deleted_at,
    )


@router.get("/tenants", response_model=Page[AdminTenantOut] | CursorPage[AdminTenantOut])
async def list_tenants(
    principal: SuperAdmin,
    session: DbSession,
    settings: AppSettings,
    query: Annotated[ListQuery, list_query(["created_at", "name", "slug"])],
    status_: Annotated[TenantStatus | None, Query(alias="status")] = None,
    plan: Annotated[str | None, Query(max_length=50)] = None,
    q: Annotated[str | None, Query(max_length=200, description="Name or slug contains")] = None,
    include_deleted: IncludeDeleted = False,
) -> Page[AdminTenantOut] | CursorPage[AdminTenantOut]:
    result = await tenant_service.list_tenants(
        session, query, status=status_, plan=plan, q=q, include_deleted=include_deleted
    )
    return result.envelope([tenant_out(settings, tenant) for tenant in result.items])


@router.post("/tenants", status_code=status.HTTP_201_CREATED, response_model=AdminTenantCreated)
async def create_tenant(
    data: AdminTenantCreate,
    principal: SuperAdmin,
    session: DbSession,
    settings: AppSettings,
    response: Response,
) -> AdminTenantCreated:
    provisioned = await tenant_service.create_tenant(
        session,
        settings,
        principal,
        name=data.name,
        slug=data.slug,
        plan=data.plan,
        owner_email=str(data.owner_email),
        owner_password=data.owner_password,
        owner_full_name=data.owner_full_name,
    )
    response.headers["Location"] = f"/api/v1/admin/tenants/{provisioned.tenant.id}"
    base = tenant_out(settings, provisioned.tenant)
    return AdminTenantCreated(**base.model_dump(), owner=user_out(provisioned.owner, ["owner"]))


@router.get("/tenants/{tenant_id}", response_model=AdminTenantOut)
async def get_tenant(
    tenant_id: UUID,
    principal: SuperAdmin,
    session: DbSession,
    settings: AppSettings,
    include_deleted: IncludeDeleted = False,
) -> AdminTenantOut:
    tenant = await tenant_service.get_tenant(session, tenant_id, include_deleted=include_deleted)
    return tenant_out(settings, tenant)


@router.patch(
    "/tenants/{tenant_id}",
    response_model=AdminTenantOut,
    description="`status` suspends (`suspended`) or reactivates (`active`); `limits` "
    "overrides the plan's limits (a null value removes an override).",
)
async def update_tenant(
    tenant_id: UUID,
    data: AdminTenantUpdate,
    principal: SuperAdmin,
    session: DbSession,
    settings: AppSettings,
) -> AdminTenantOut:
    if tenant_id == principal.tenant_id and data.status == TenantStatus.SUSPENDED:
        raise Conflict("Suspending your own tenant would lock you out")
    overrides = None
    if data.limits is not None:
        overrides = {name: getattr(data.limits, name) for name in data.limits.model_fields_set}
    tenant = await tenant_service.admin_update_tenant(
        session,
        settings,
        principal,
        tenant_id,
        name=data.name,
        plan=data.plan,
        status=data.status,
        limit_overrides=overrides,
    )
    return tenant_out(settings, tenant)


@router.delete("/tenants/{tenant_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_tenant(tenant_id: UUID, principal: SuperAdmin, session: DbSession) -> Response:
    if tenant_id == principal.tenant_id:
        raise Conflict("You cannot delete your own tenant")
    await tenant_service.delete_tenant(session, principal, tenant_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/tenants/{tenant_id}/restore", response_model=AdminTenantOut)
async def restore_tenant(
    tenant_id: UUID, principal: SuperAdmin, session: DbSession, settings: AppSettings
) -> AdminTenantOut:
    tenant = await tenant_service.restore_tenant(session, principal, tenant_id)
    return tenant_out(settings, tenant)


@router.get(
    "/tenants/{tenant_id}/users", response_model=Page[AdminUserOut] | CursorPage[AdminUserOut]
)
async def list_tenant_users(
    tenant_id: UUID,
    principal: SuperAdmin,
    session: DbSession,
    query: Annotated[ListQuery, list_query(["created_at", "email"])],
    include_deleted: IncludeDeleted = False,
) -> Page[AdminUserOut] | CursorPage[AdminUserOut]:
    result, roles = await admin_service.list_tenant_users(
        session, tenant_id, query, include_deleted=include_deleted
    )
    return result.envelope([user_out(user, roles.get(user.id, [])) for user in result.items])


@router.get(
    "/audit-events",
    response_model=Page[AdminAuditEventOut] | CursorPage[AdminAuditEventOut],
    description="Every tenant's events and platform events; `tenant_id` narrows to one tenant.",
)
async def list_audit_events(
    principal: SuperAdmin,
    session: DbSession,
    filters: AuditQuery,
    query: Annotated[ListQuery, list_query(["created_at", "action"])],
    tenant_id: Annotated[UUID | None, Query()] = None,
) -> Page[AdminAuditEventOut] | CursorPage[AdminAuditEventOut]:
    filters = filters.model_copy(update={"tenant_id": tenant_id})
    result = await audit_service.list_events(session, filters, query)
    return result.envelope([AdminAuditEventOut.model_validate(row) for row in result.items])


@router.get("/stats", response_model=StatsOut)
async def get_stats(principal: SuperAdmin, session: DbSession) -> StatsOut:
    return StatsOut(**await admin_service.stats(session))


@router.post(
    "/purge",
    response_model=PurgeOut,
    description="Hard-deletes what was soft-deleted more than SOFT_DELETE_RETENTION_DAYS ago.",
)
async def purge(principal: SuperAdmin, session: DbSession, settings: AppSettings) -> PurgeOut:
    result = await admin_service.purge(session, settings, principal)
    return PurgeOut(cutoff=result.cutoff, purged=result.purged)
