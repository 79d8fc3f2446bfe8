"""Resumable uploads: an upload declared up front, its parts stored one by
one, and completed into a document."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from uuid import UUID

from sqlalchemy import BigInteger, Boolean, DateTime, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.kit.models import Base, TenantOwned


class UploadStatus(StrEnum):
    PENDING = "pending"
    COMPLETED = "completed"


class Upload(Base, TenantOwned):
    __tablename__ = "uploads"
    __table_args__ = (
        Index("ix_uploads_tenant_created", "tenant_id", "created_at", "id"),
        # The cleanup sweeps expired uploads across tenants.
        Index("ix_uploads_expires", "expires_at"),
    )

    filename: Mapped[str] = mapped_column(String(255))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    content_type: Mapped[str | None] = mapped_column(String(200), default=None)
    title: Mapped[str | None] = mapped_column(String(500), default=None)
    description: Mapped[str | None] = mapped_column(Text, default=None)
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(100)), default=list, server_default="{}")
    case_id: Mapped[UUID | None] = mapped_column(
        PG_UUID(as_uuid=True), ForeignKey("cases.id", ondelete="SET NULL"), default=None
    )
    allow_duplicate: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    part_size: Mapped[int] = mapped_column(BigInteger)
    part_count: Mapped[int] = mapped_column(Integer)
    status: Mapped[UploadStatus] = mapped_column(
        String(20), default=UploadStatus.PENDING, server_default=UploadStatus.PENDING.value
    )
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    document_id: Mapped[UUID | None] = mapped_column(
        PG_UUID(as_uuid=True), ForeignKey("documents.id", ondelete="SET NULL"), default=None
    )
    created_by: Mapped[UUID | None] = mapped_column(PG_UUID(as_uuid=True), default=None)


class UploadPart(Base, TenantOwned):
    __tablename__ = "upload_parts"
    __table_args__ = (
        Index(
            "uq_upload_parts_tenant_upload_number", "tenant_id", "upload_id", "number", unique=True
        ),
    )

    upload_id: Mapped[UUID] = mapped_column(
        PG_UUID(as_uuid=True), ForeignKey("uploads.id", ondelete="CASCADE")
    )
    number: Mapped[int] = mapped_column(Integer)
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(500))
