"""Tenant shapes: the tenant's own view (`/tenant`) and the platform admin's."""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, field_validator

from backend.settings import RateLimit
from backend.tenants.models import TenantStatus

MAX_SETTINGS_BYTES = 16 * 1024
EMAIL_PATTERN = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
SLUG_PATTERN = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")


class LimitsOut(BaseModel):
    storage_bytes: int
    max_running_jobs: int
    rate_limit: str
    max_crawl_pages: int


class UsageOut(BaseModel):
    storage_bytes: int
    running_jobs: int


class TenantOut(BaseModel):
    id: UUID
    name: str
    slug: str
    plan: str
    status: TenantStatus
    settings: dict[str, Any]
    limits: LimitsOut
    usage: UsageOut
    created_at: datetime
    updated_at: datetime


class AdminTenantOut(BaseModel):
    id: UUID
    name: str
    slug: str
    plan: str
    status: TenantStatus
    settings: dict[str, Any]
    limits: LimitsOut
    limit_overrides: dict[str, Any] = Field(description="What this tenant has beyond its plan")
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


def _check_settings(value: dict[str, Any] | None) -> dict[str, Any] | None:
    if value is not None and len(json.dumps(value, default=str)) > MAX_SETTINGS_BYTES:
        raise ValueError(f"settings must be at most {MAX_SETTINGS_BYTES} bytes of JSON")
    return value


def _clean_name(value: str | None) -> str | None:
    if value is None:
        return None
    value = value.strip()
    if not value:
        raise ValueError("must not be blank")
    return value


class TenantUpdate(BaseModel):
    """`settings` keys are merged into the current ones; a null value removes a key."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "Acme Legal LLP", "settings": {"auto_extract_text": False}}]
        },
    )

    name: str | None = Field(default=None, min_length=1, max_length=200)
    settings: dict[str, Any] | None = None

    _name = field_validator("name")(_clean_name)
    _settings = field_validator("settings")(_check_settings)


class LimitOverrides(BaseModel):
    """Overrides of the plan's limits; null removes an override."""

    model_config = ConfigDict(extra="forbid")

    storage_bytes: int | None = Field(default=None, ge=0)
    max_running_jobs: int | None = Field(default=None, ge=0)
    rate_limit: str | None = Field(default=None, examples=["1200/60"])
    max_crawl_pages: int | None = Field(default=None, ge=1)

    @field_validator("rate_limit")
    @classmethod
    def _rate_limit(cls, value: str | None) -> str | None:
        return str(RateLimit.parse(value)) if value is not None else None


class AdminTenantCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "name": "Globex",
                    "slug": "globex",
                    "plan": "pro",
                    "owner_email": "owner@globex.example",
                    "owner_password": "correct horse battery staple",
                    "owner_full_name": "Hank Scorpio",
                }
            ]
        },
    )

    name: str = Field(min_length=1, max_length=200)
    slug: str | None = Field(default=None, max_length=63)
    plan: str = "free"
    owner_email: str = Field(max_length=320)
    owner_password: str = Field(min_length=1, max_length=256)
    owner_full_name: str | None = Field(default=None, max_length=200)

    _name = field_validator("name")(_clean_name)

    @field_validator("owner_email")
    @classmethod
    def _email(cls, value: str) -> str:
        value = value.strip()
        if not EMAIL_PATTERN.match(value):
            raise ValueError("not a valid email address")
        return value

    @field_validator("slug")
    @classmethod
    def _slug(cls, value: str | None) -> str | None:
        if value is not None and not SLUG_PATTERN.match(value):
            raise ValueError("lowercase letters, digits and inner hyphens, at most 63")
        return value


class AdminTenantUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"plan": "enterprise", "limits": {"max_running_jobs": 100, "rate_limit": None}},
                {"status": "suspended"},
            ]
        },
    )

    name: str | None = Field(default=None, min_length=1, max_length=200)
    plan: str | None = None
    status: TenantStatus | None = None
    limits: LimitOverrides | None = None

    _name = field_validator("name")(_clean_name)
