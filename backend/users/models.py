"""Users: people who log in; each belongs to exactly one tenant."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, DateTime, Index, String, func, text
from sqlalchemy.orm import Mapped, mapped_column

from backend.kit.models import Base, SoftDeletable, TenantOwned


class User(Base, TenantOwned, SoftDeletable):
    __tablename__ = "users"
    __table_args__ = (
        # Email is unique across the platform among live users, case-insensitively.
        Index(
            "uq_users_email_live",
            func.lower(text("email")),
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("ix_users_tenant_created", "tenant_id", "created_at", "id"),
    )

    email: Mapped[str] = mapped_column(String(320))
    full_name: Mapped[str | None] = mapped_column(String(200), default=None)
    password_hash: Mapped[str | None] = mapped_column(String(255), default=None)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True, server_default="true")
    is_superadmin: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    tokens_valid_after: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )
    last_login_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
