"""Audit event shapes and list filters."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict

from backend.audit.models import ActorType


class AuditEventOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    actor_type: ActorType
    actor_id: UUID | None
    action: str
    resource_type: str
    resource_id: str | None
    changes: dict[str, Any]
    ip: str | None
    user_agent: str | None
    request_id: str | None
    created_at: datetime


class AdminAuditEventOut(AuditEventOut):
    tenant_id: UUID | None


class AuditFilters(BaseModel):
    actor_id: UUID | None = None
    action: str | None = None
    resource_type: str | None = None
    resource_id: str | None = None
    since: datetime | None = None
    until: datetime | None = None
    tenant_id: UUID | None = None  # platform admins only
