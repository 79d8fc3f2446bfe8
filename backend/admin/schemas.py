"""Shapes of the platform admin routes."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel

from backend.tenants.schemas import AdminTenantOut


class AdminUserOut(BaseModel):
    id: UUID
    tenant_id: UUID
    email: str
    full_name: str | None
    is_active: bool
    is_superadmin: bool
    roles: list[str]
    last_login_at: datetime | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class AdminTenantCreated(AdminTenantOut):
    owner: AdminUserOut


class StatsOut(BaseModel):
    tenants: int
    users: int
    api_keys: int
    documents: int
    storage_bytes: int
    jobs: dict[str, int]


class PurgeOut(BaseModel):
    cutoff: datetime
    purged: dict[str, int]
    extra: dict[str, Any] = {}
