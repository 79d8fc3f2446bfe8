"""Cases: a tenant's unit of work that documents are filed under, with a
per-tenant sequential reference (`CASE-000001`)."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, Computed, DateTime, ForeignKey, Index, String, Text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.kit.models import Base, SoftDeletable, TenantOwned, Versioned


class CaseStatus(StrEnum):
    OPEN = "open"
    IN_PROGRESS = "in_progress"
    ON_HOLD = "on_hold"
    CLOSED = "closed"


class CasePriority(StrEnum):
    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"
    URGENT = "urgent"


CASE_SEARCH_VECTOR = (
    "setweight(to_tsvector('english'::regconfig, coalesce(reference, '')), 'A') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'B')"
)


class Case(Base, TenantOwned, SoftDeletable, Versioned):
    __tablename__ = "cases"
    __table_args__ = (
        # References stay unique forever (deleted cases keep theirs).
        Index("uq_cases_tenant_reference", "tenant_id", "reference", unique=True),
        Index("ix_cases_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_cases_tenant_updated", "tenant_id", "updated_at", "id"),
        Index("ix_cases_tenant_due", "tenant_id", "due_at", "id"),
        Index("ix_cases_tenant_status", "tenant_id", "status"),
        Index("ix_cases_tenant_assignee", "tenant_id", "assignee_id"),
        Index("ix_cases_tags", "tags", postgresql_using="gin"),
        Index("ix_cases_search", "search_vector", postgresql_using="gin"),
    )

    reference: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[CaseStatus] = mapped_column(
        String(20), default=CaseStatus.OPEN, server_default=CaseStatus.OPEN.value
    )
    priority: Mapped[CasePriority] = mapped_column(
        String(10), default=CasePriority.NORMAL, server_default=CasePriority.NORMAL.value
    )
    assignee_id: Mapped[UUID | None] = mapped_column(
        PG_UUID(as_uuid=True), ForeignKey("users.id", ondelete="SET NULL"), default=None
    )
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(100)), default=list, server_default="{}")
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    # `metadata` is reserved on declarative classes, hence the attribute name.
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, default=dict, server_default="{}"
    )
    closed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_by: Mapped[UUID | None] = mapped_column(PG_UUID(as_uuid=True), default=None)
    search_vector: Mapped[Any] = mapped_column(
        TSVECTOR, Computed(CASE_SEARCH_VECTOR, persisted=True), deferred=True
    )


class CaseCounter(Base, TenantOwned):
    """The last reference number handed out in a tenant; one row per tenant,
    incremented with an upsert whose row lock serialises concurrent creates."""

    __tablename__ = "case_counters"
    __table_args__ = (Index("uq_case_counters_tenant", "tenant_id", unique=True),)

    last_value: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
