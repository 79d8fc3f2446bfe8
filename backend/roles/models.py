"""Roles (per tenant, each a set of permissions) and their assignment to users."""

from __future__ import annotations

from uuid import UUID

from sqlalchemy import Boolean, ForeignKey, Index, String, func, text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.kit.models import Base, SoftDeletable, TenantOwned


class Role(Base, TenantOwned, SoftDeletable):
    __tablename__ = "roles"
    __table_args__ = (
        Index(
            "uq_roles_tenant_name_live",
            "tenant_id",
            func.lower(text("name")),
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
    )

    name: Mapped[str] = mapped_column(String(100))
    description: Mapped[str | None] = mapped_column(String(500), default=None)
    permissions: Mapped[list[str]] = mapped_column(ARRAY(String(50)), default=list)
    is_system: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")


class UserRole(Base, TenantOwned):
    __tablename__ = "user_roles"
    __table_args__ = (
        Index("uq_user_roles_tenant_user_role", "tenant_id", "user_id", "role_id", unique=True),
        Index("ix_user_roles_tenant_role", "tenant_id", "role_id"),
    )

    user_id: Mapped[UUID] = mapped_column(
        PG_UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE")
    )
    role_id: Mapped[UUID] = mapped_column(
        PG_UUID(as_uuid=True), ForeignKey("roles.id", ondelete="CASCADE")
    )
