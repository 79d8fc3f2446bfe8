"""Marking: guides (the answers), sheets (one student's answers read from a
document and scored) and batches (many sheets of one guide)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import Boolean, DateTime, Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.kit.models import Base, SoftDeletable, TenantOwned


class SheetStatus(StrEnum):
    QUEUED = "queued"
    MARKING = "marking"
    MARKED = "marked"
    NEEDS_REVIEW = "needs_review"
    FAILED = "failed"


SCORED = (SheetStatus.MARKED, SheetStatus.NEEDS_REVIEW)
FINISHED = (SheetStatus.MARKED, SheetStatus.NEEDS_REVIEW, SheetStatus.FAILED)


class MarkingGuide(Base, TenantOwned, SoftDeletable):
    __tablename__ = "marking_guides"
    __table_args__ = (
        Index("ix_marking_guides_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_marking_guides_tenant_updated", "tenant_id", "updated_at", "id"),
        Index("ix_marking_guides_tenant_title", "tenant_id", "title", "id"),
        Index("ix_marking_guides_tenant_subject", "tenant_id", "subject"),
    )

    title: Mapped[str] = mapped_column(String(500))
    subject: Mapped[str | None] = mapped_column(String(200), default=None)
    instructions: Mapped[str | None] = mapped_column(Text, default=None)
    pass_percentage: Mapped[float] = mapped_column(Float, default=50.0)
    student_id_digits: Mapped[int] = mapped_column(Integer, default=8)
    questions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    total_marks: Mapped[float] = mapped_column(Float, default=0.0)
    question_count: Mapped[int] = mapped_column(Integer, default=0)
    warnings: Mapped[list[str]] = mapped_column(JSONB, default=list)
    created_by: Mapped[UUID | None] = mapped_column(PG_UUID(as_uuid=True), default=None)


class MarkingBatch(Base, TenantOwned):
    __tablename__ = "marking_batches"
    __table_args__ = (
        Index("ix_marking_batches_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_marking_batches_tenant_guide", "tenant_id", "guide_id"),
    )

    guide_id: Mapped[UUID] = mapped_column(
        PG_UUID(as_uuid=True), ForeignKey("marking_guides.id", ondelete="CASCADE")
    )
    document_id: Mapped[UUID | None] = mapped_column(PG_UUID(as_uuid=True), default=None)
    pages_per_sheet: Mapped[int | None] = mapped_column(Integer, default=None)
    total: Mapped[int] = mapped_column(Integer, default=0)
    completed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_by: Mapped[UUID | None] = mapped_column(PG_UUID(as_uuid=True), default=None)


class MarkingSheet(Base, TenantOwned, SoftDeletable):
    __tablename__ = "marking_sheets"
    __table_args__ = (
        Index("ix_marking_sheets_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_marking_sheets_tenant_updated", "tenant_id", "updated_at", "id"),
        Index("ix_marking_sheets_tenant_guide", "tenant_id", "guide_id"),
        Index("ix_marking_sheets_tenant_batch", "tenant_id", "batch_id"),
        Index("ix_marking_sheets_tenant_status", "tenant_id", "status"),
        Index("ix_marking_sheets_tenant_student", "tenant_id", "student_id"),
    )

    guide_id: Mapped[UUID] = mapped_column(
        PG_UUID(as_uuid=True), ForeignKey("marking_guides.id", ondelete="CASCADE")
    )
    document_id: Mapped[UUID] = mapped_column(PG_UUID(as_uuid=True))
    batch_id: Mapped[UUID | None] = mapped_column(
        PG_UUID(as_uuid=True), ForeignKey("marking_batches.id", ondelete="CASCADE"), default=None
    )
    # For a sheet cut from a multi-page scan: its first page (0-based) and page count.
    first_page: Mapped[int | None] = mapped_column(Integer, default=None)
    page_count: Mapped[int | None] = mapped_column(Integer, default=None)
    student_id: Mapped[str | None] = mapped_column(String(64), default=None)
    student_name: Mapped[str | None] = mapped_column(String(200), default=None)
    student_id_given: Mapped[bool] = mapped_column(Boolean, default=False)
    status: Mapped[SheetStatus] = mapped_column(String(20), default=SheetStatus.QUEUED)
    job_id: Mapped[UUID | None] = mapped_column(PG_UUID(as_uuid=True), default=None)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    source: Mapped[str | None] = mapped_column(String(20), default=None)
    score: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)
    questions: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list)
    qa: Mapped[dict[str, int] | None] = mapped_column(JSONB, default=None)
    requires_review: Mapped[bool] = mapped_column(Boolean, default=False)
    error: Mapped[str | None] = mapped_column(Text, default=None)
    marked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    reviewed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_by: Mapped[UUID | None] = mapped_column(PG_UUID(as_uuid=True), default=None)
