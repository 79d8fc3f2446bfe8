"""Sessions (refresh-token families) and single-use tokens sent by mail."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from sqlalchemy import DateTime, ForeignKey, Index, String
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.kit.models import Base, TenantOwned


class RefreshToken(Base, TenantOwned):
    """One link of a rotation chain; `family_id` is the session (`sid` claim)."""

    __tablename__ = "refresh_tokens"
    __table_args__ = (
        Index("uq_refresh_tokens_hash", "token_hash", unique=True),
        Index("ix_refresh_tokens_tenant_family", "tenant_id", "family_id"),
        Index("ix_refresh_tokens_tenant_user", "tenant_id", "user_id"),
    )

    user_id: Mapped[UUID] = mapped_column(
        PG_UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE")
    )
    family_id: Mapped[UUID] = mapped_column(PG_UUID(as_uuid=True))
    parent_id: Mapped[UUID | None] = mapped_column(PG_UUID(as_uuid=True), default=None)
    token_hash: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class OneTimePurpose(StrEnum):
    PASSWORD_RESET = "password_reset"  # noqa: S105 - a purpose, not a secret
    INVITATION = "invitation"


class OneTimeToken(Base, TenantOwned):
    """A password-reset or invitation token; stored only as a hash."""

    __tablename__ = "one_time_tokens"
    __table_args__ = (
        Index("uq_one_time_tokens_hash", "token_hash", unique=True),
        Index("ix_one_time_tokens_tenant_user", "tenant_id", "user_id", "purpose"),
    )

    user_id: Mapped[UUID] = mapped_column(
        PG_UUID(as_uuid=True), ForeignKey("users.id", ondelete="CASCADE")
    )
    purpose: Mapped[OneTimePurpose] = mapped_column(String(30))
    token_hash: Mapped[str] = mapped_column(String(128))
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
