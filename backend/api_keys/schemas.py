"""API key shapes: the key itself appears only in the create answer."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backend.roles.permissions import MAX_PERMISSIONS, PermissionName
from backend.settings import RateLimit


class ApiKeyOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    name: str
    prefix: str
    scopes: list[str]
    rate_limit: str | None
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    created_at: datetime


class ApiKeyCreated(ApiKeyOut):
    key: str = Field(description="The full key; shown only in this answer, never again")


class ApiKeyCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "ingest pipeline",
                    "scopes": ["documents:read", "documents:write"],
                    "expires_at": "2027-12-31T23:59:59Z",
                    "rate_limit": "120/60",
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=200)
    scopes: list[PermissionName] = Field(
        default_factory=list, max_length=MAX_PERMISSIONS, description="A subset of your permissions"
    )
    expires_at: datetime | None = Field(default=None, description="A future time; none: never")
    rate_limit: str | None = Field(
        default=None,
        description="The key's own limit `<count>/<seconds>`; none: the tenant's",
        examples=["120/60"],
    )

    @field_validator("name")
    @classmethod
    def _strip(cls, value: str) -> str:
        value = value.strip()
        if not value:
            raise ValueError("must not be blank")
        return value

    @field_validator("expires_at")
    @classmethod
    def _future(cls, value: datetime | None) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            value = value.replace(tzinfo=UTC)
        if value <= datetime.now(UTC):
            raise ValueError("must be in the future")
        return value

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit(cls, value: str | None) -> str | None:
        return str(RateLimit.parse(value)) if value is not None else None
