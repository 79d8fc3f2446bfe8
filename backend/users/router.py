"""`/api/v1/users`: the tenant's people."""

from __future__ import annotations

from typing import Annotated, ClassVar
from uuid import UUID

from fastapi import APIRouter, Query, Response, status
from pydantic import Field

from backend.auth.deps import ScopedRead, require, scoped_read
from backend.auth.principal import Principal
from backend.kit.deps import AppSettings, DbSession
from backend.kit.errors import PermissionDenied
from backend.kit.mail import AppMailer
from backend.kit.pagination import CursorPage, ListParams, Page, page_json, sort_field
from backend.roles.permissions import Permission
from backend.users.schemas import (
    InvitationCreate,
    UserCreate,
    UserOut,
    UserRolesUpdate,
    UserUpdate,
)
from backend.users.service import user_service

router = APIRouter(prefix="/users", tags=["users"])

Reader = Annotated[Principal, require(Permission.USERS_READ)]
Manager = Annotated[Principal, require(Permission.USERS_MANAGE)]


class UserListParams(ListParams):
    sortable: ClassVar[tuple[str, ...]] = ("created_at", "updated_at", "email", "full_name")

    sort: str = sort_field(sortable)
    role: str | None = Field(None, max_length=100)
    active: bool | None = None
    email: str | None = Field(None, max_length=320)
    include_deleted: bool = False


@router.get(
    "",
    response_model=Page[UserOut] | CursorPage[UserOut],
    description="Filters: `role` (name), `active`, `email` (contains, case-insensitive). "
    "Sort by `created_at`, `updated_at`, `email` or `full_name`. "
    "`include_deleted=true` needs `users:manage`.",
)
async def list_users(
    read: Annotated[ScopedRead, scoped_read(Permission.USERS_READ)],
    params: Annotated[UserListParams, Query()],
) -> Response:
    if params.include_deleted and not read.principal.has(Permission.USERS_MANAGE):
        raise PermissionDenied("include_deleted needs users:manage")
    result = await user_service.list_users(
        read.connection,
        read.principal,
        params.list_query(),
        role=params.role,
        active=params.active,
        email=params.email,
        include_deleted=params.include_deleted,
    )
    return page_json(result)


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    description="Password: 12 to 256 characters, not the email. Roles by name; "
    "granting a role holding permissions the caller lacks is 403.",
)
async def create_user(
    data: UserCreate,
    principal: Manager,
    session: DbSession,
    settings: AppSettings,
    response: Response,
) -> UserOut:
    user = await user_service.create_user_by(session, settings, principal, data)
    response.headers["Location"] = f"/api/v1/users/{user.id}"
    return user


@router.post(
    "/invitations",
    status_code=status.HTTP_201_CREATED,
    response_model=UserOut,
    description="Creates an inactive user and mails a single-use, expiring link; "
    "`POST /auth/invitations/accept` sets the password and activates the account.",
)
async def create_invitation(
    data: InvitationCreate,
    principal: Manager,
    session: DbSession,
    settings: AppSettings,
    mailer: AppMailer,
    response: Response,
) -> UserOut:
    user = await user_service.invite_user(session, settings, mailer, principal, data)
    response.headers["Location"] = f"/api/v1/users/{user.id}"
    return user


@router.get("/{user_id}", response_model=UserOut)
async def get_user(user_id: UUID, principal: Reader, session: DbSession) -> UserOut:
    return await user_service.get_user(session, user_id)


@router.patch(
    "/{user_id}",
    response_model=UserOut,
    description="`full_name`, `is_active`. Deactivating ends the user's sessions; "
    "the last active owner cannot be deactivated (409 `last_owner`).",
)
async def update_user(
    user_id: UUID, data: UserUpdate, principal: Manager, session: DbSession
) -> UserOut:
    return await user_service.update_user(session, principal, user_id, data)


@router.delete(
    "/{user_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    description="Soft delete; ends the user's sessions. Not yourself (409), not the "
    "last active owner (409 `last_owner`).",
)
async def delete_user(user_id: UUID, principal: Manager, session: DbSession) -> Response:
    await user_service.delete_user(session, principal, user_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)


@router.post("/{user_id}/restore", response_model=UserOut)
async def restore_user(user_id: UUID, principal: Manager, session: DbSession) -> UserOut:
    return await user_service.restore_user(session, principal, user_id)


@router.put(
    "/{user_id}/roles",
    response_model=UserOut,
    description="Replaces the user's roles. Every role added or removed must be within "
    "the caller's permissions (else 403); the last active owner keeps `owner` (409).",
)
async def update_user_roles(
    user_id: UUID, data: UserRolesUpdate, principal: Manager, session: DbSession
) -> UserOut:
    return await user_service.set_roles(session, principal, user_id, data.roles)
