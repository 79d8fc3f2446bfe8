"""`/api/v1/roles` and `/api/v1/permissions`."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from backend.auth.deps import require
from backend.auth.principal import Principal
from backend.kit.deps import DbSession
from backend.kit.errors import PermissionDenied
from backend.kit.pagination import CursorPage, ListQuery, Page, list_query
from backend.roles.permissions import Permission, catalogue
from backend.roles.schemas import RoleCreate, RoleOut, RoleUpdate
from backend.roles.service import role_service

router = APIRouter(prefix="/roles", tags=["roles"])
permissions_router = APIRouter(prefix="/permissions", tags=["permissions"])

Reader = Annotated[Principal, require(Permission.ROLES_READ)]
Manager = Annotated[Principal, require(Permission.ROLES_MANAGE)]


@permissions_router.get(
    "",
    response_model=list[str],
    description="The fixed permission catalogue, a plain JSON array.",
)
async def list_permissions(principal: Reader) -> list[str]:
    return catalogue.names()


@router.get(
    "",
    response_model=Page[RoleOut] | CursorPage[RoleOut],
    description="Sort by `name`, `created_at` or `updated_at`. "
    "`include_deleted=true` needs `roles:manage`.",
)
async def list_roles(
    principal: Reader,
    session: DbSession,
    query: Annotated[ListQuery, list_query(["name", "created_at", "updated_at"], default="name")],
    include_deleted: Annotated[bool, Query()] = False,
) -> Page[RoleOut] | CursorPage[RoleOut]:
    if include_deleted and not principal.has(Permission.ROLES_MANAGE):
        raise PermissionDenied("include_deleted needs roles:manage")
    result = await role_service.list_roles(session, query, include_deleted=include_deleted)
    return result.envelope([RoleOut.model_validate(role) for role in result.items])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=RoleOut,
    description="A custom role with any subset of `GET /permissions` (unknown: 422) "
    "that the caller holds (else 403).",
)
async def create_role(
    data: RoleCreate, principal: Manager, session: DbSession, response: Response
) -> RoleOut:
    role = await role_service.create_role(session, principal, data)
    response.headers["Location"] = f"/api/v1/roles/{role.id}"
    return RoleOut.model_validate(role)


@router.get("/{role_id}", response_model=RoleOut)
async def get_role(role_id: UUID, principal: Reader, session: DbSession) -> RoleOut:
    return RoleOut.model_validate(await role_service.get_role(session, role_id))


@router.patch(
    "/{role_id}",
    response_model=RoleOut,
    description="System roles are immutable (409 `system_role`).",
)
async def update_role(
    role_id: UUID, data: RoleUpdate, principal: Manager, session: DbSession
) -> RoleOut:
    return RoleOut.model_validate(await role_service.update_role(session, principal, role_id, data))


@router.delete(
    "/{role_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    description="Soft delete. System roles: 409 `system_role`; a role a live user "
    "holds: 409 `role_in_use` (with `count`).",
)
async def delete_role(role_id: UUID, principal: Manager, session: DbSession) -> Response:
    await role_service.delete_role(session, principal, role_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{role_id}/restore", response_model=RoleOut)
async def restore_role(role_id: UUID, principal: Manager, session: DbSession) -> RoleOut:
    return RoleOut.model_validate(await role_service.restore_role(session, principal, role_id))
