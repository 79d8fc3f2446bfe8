"""Tenants: the organisations that own every other row."""

from __future__ import annotations

from enum import StrEnum
from typing import Any

from sqlalchemy import Index, String, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from backend.kit.models import Base, SoftDeletable


class TenantStatus(StrEnum):
    ACTIVE = "active"
    SUSPENDED = "suspended"


class Tenant(Base, SoftDeletable):
    __tablename__ = "tenants"
    __table_args__ = (
        Index(
            "uq_tenants_slug_live",
            "slug",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    name: Mapped[str] = mapped_column(String(200))
    slug: Mapped[str] = mapped_column(String(63))
    plan: Mapped[str] = mapped_column(String(50), default="free", server_default="free")
    status: Mapped[TenantStatus] = mapped_column(
        String(20), default=TenantStatus.ACTIVE, server_default=TenantStatus.ACTIVE.value
    )
    settings: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    limits: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
