"""Role shapes."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from backend.roles.permissions import MAX_PERMISSIONS, PermissionName

RoleName = Annotated[
    str,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=100, pattern=r"^[^\s].*$"),
]


class RoleOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    name: str
    description: str | None
    permissions: list[str]
    is_system: bool
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None = None


class RoleCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "reviewer",
                    "description": "Reads documents and works on cases",
                    "permissions": ["documents:read", "cases:read", "cases:write"],
                }
            ]
        },
    )

    name: RoleName
    description: str | None = Field(default=None, max_length=500)
    permissions: list[PermissionName] = Field(default_factory=list, max_length=MAX_PERMISSIONS)


class RoleUpdate(BaseModel):
    """Every field optional; only the fields sent are changed."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "description": "Reads documents, works on cases, reads jobs",
                    "permissions": ["documents:read", "cases:read", "cases:write", "jobs:read"],
                }
            ]
        },
    )

    name: RoleName | None = None
    description: str | None = Field(default=None, max_length=500)
    permissions: list[PermissionName] | None = Field(default=None, max_length=MAX_PERMISSIONS)
