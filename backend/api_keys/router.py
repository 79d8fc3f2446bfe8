"""`/api/v1/api-keys`: integrations' credentials (all routes need `api_keys:manage`)."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from backend.api_keys.schemas import ApiKeyCreate, ApiKeyCreated, ApiKeyOut
from backend.api_keys.service import api_key_service
from backend.auth.deps import require
from backend.auth.principal import Principal
from backend.kit.deps import AppSettings, DbSession
from backend.kit.pagination import CursorPage, ListQuery, Page, list_query
from backend.roles.permissions import Permission

router = APIRouter(prefix="/api-keys", tags=["api-keys"])

Manager = Annotated[Principal, require(Permission.API_KEYS_MANAGE)]


@router.get("", response_model=Page[ApiKeyOut] | CursorPage[ApiKeyOut])
async def list_api_keys(
    principal: Manager,
    session: DbSession,
    query: Annotated[ListQuery, list_query(["created_at", "name", "last_used_at", "expires_at"])],
    revoked: Annotated[
        bool | None, Query(description="Only revoked (true) or live (false)")
    ] = None,
) -> Page[ApiKeyOut] | CursorPage[ApiKeyOut]:
    result = await api_key_service.list_keys(session, query, revoked=revoked)
    return result.envelope([ApiKeyOut.model_validate(row) for row in result.items])


@router.post(
    "",
    status_code=status.HTTP_201_CREATED,
    response_model=ApiKeyCreated,
    description="The answer's `key` is shown once; only its keyed hash is stored. "
    "Scopes must be a subset of the caller's permissions (else 403).",
)
async def create_api_key(
    data: ApiKeyCreate,
    principal: Manager,
    session: DbSession,
    settings: AppSettings,
    response: Response,
) -> ApiKeyCreated:
    created = await api_key_service.create_key(session, settings, principal, data)
    response.headers["Location"] = f"/api/v1/api-keys/{created.row.id}"
    out = ApiKeyOut.model_validate(created.row)
    return ApiKeyCreated(**out.model_dump(), key=created.key)


@router.get("/{key_id}", response_model=ApiKeyOut)
async def get_api_key(key_id: UUID, principal: Manager, session: DbSession) -> ApiKeyOut:
    return ApiKeyOut.model_validate(await api_key_service.get_key(session, key_id))


@router.delete(
    "/{key_id}",
    status_code=status.HTTP_204_NO_CONTENT,
    description="Revokes the key (soft: it stays listed with `revoked_at`).",
)
async def delete_api_key(key_id: UUID, principal: Manager, session: DbSession) -> Response:
    await api_key_service.revoke_key(session, principal, key_id)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
