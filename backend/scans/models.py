"""Tables of the scans workload: segmentations (one run of `scan.segment`
over a mesh document), the segments each produced, and the segments' files
in the download formats (written by the job or converted on first request,
then kept)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.kit.models import Base, TenantOwned, Versioned


class SegmentationStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE = (SegmentationStatus.QUEUED, SegmentationStatus.RUNNING)


class Segmentation(Base, TenantOwned):
    __tablename__ = "segmentations"
    __table_args__ = (
        Index("ix_segmentations_tenant_case_created", "tenant_id", "case_id", "created_at", "id"),
        Index("ix_segmentations_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_segmentations_tenant_job", "tenant_id", "job_id"),
        # The duplicate-submit guard: one queued or running run per document,
        # method and parameters.
        Index(
            "uq_segmentations_tenant_active_request",
            "tenant_id",
            "document_id",
            "request_hash",
            unique=True,
            postgresql_where=text("status IN ('queued', 'running')"),
        ),
    )

    case_id: Mapped[UUID] = mapped_column(PG_UUID(as_uuid=True))
    document_id: Mapped[UUID] = mapped_column(PG_UUID(as_uuid=True))
    job_id: Mapped[UUID | None] = mapped_column(PG_UUID(as_uuid=True), default=None)
    method: Mapped[str] = mapped_column(String(20))
    params: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    request_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20), default=SegmentationStatus.QUEUED)
    segment_count: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    discarded_faces: Mapped[int | None] = mapped_column(BigInteger, default=None)
    total_faces: Mapped[int | None] = mapped_column(BigInteger, default=None)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    created_by: Mapped[UUID | None] = mapped_column(PG_UUID(as_uuid=True), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)


class Segment(Base, TenantOwned, Versioned):
    __tablename__ = "segments"
    __table_args__ = (
        Index("ix_segments_tenant_case_created", "tenant_id", "case_id", "created_at", "id"),
        Index("ix_segments_tenant_segmentation", "tenant_id", "segmentation_id", "number"),
    )

    segmentation_id: Mapped[UUID] = mapped_column(
        PG_UUID(as_uuid=True), ForeignKey("segmentations.id", ondelete="CASCADE")
    )
    case_id: Mapped[UUID] = mapped_column(PG_UUID(as_uuid=True))
    document_id: Mapped[UUID] = mapped_column(PG_UUID(as_uuid=True))
    number: Mapped[int] = mapped_column(Integer)
    label: Mapped[str | None] = mapped_column(String(200), default=None)
    tooth_number: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    edited_fields: Mapped[list[str]] = mapped_column(ARRAY(String(50)), default=list)
    faces: Mapped[int] = mapped_column(BigInteger)
    vertices: Mapped[int] = mapped_column(BigInteger)
    surface_area: Mapped[float] = mapped_column(Float)
    volume: Mapped[float | None] = mapped_column(Float, default=None)
    watertight: Mapped[bool] = mapped_column(Boolean)
    bounds: Mapped[dict[str, Any]] = mapped_column(JSONB)
    centroid: Mapped[list[float]] = mapped_column(JSONB)


class SegmentFile(Base, TenantOwned):
    """A segment in one download format (`stl`, `ply`, `obj`, `glb`)."""

    __tablename__ = "segment_files"
    __table_args__ = (
        Index(
            "uq_segment_files_tenant_segment_format",
            "tenant_id",
            "segment_id",
            "format",
            unique=True,
        ),
    )

    segment_id: Mapped[UUID] = mapped_column(
        PG_UUID(as_uuid=True), ForeignKey("segments.id", ondelete="CASCADE")
    )
    format: Mapped[str] = mapped_column(String(10))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(500))
