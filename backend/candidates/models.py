"""Candidates (profiles parsed from CVs), requisitions (open positions) and a
tenant's own skills."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import (
    Computed,
    DateTime,
    Float,
    Index,
    Integer,
    String,
    Text,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, TSVECTOR
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.kit.models import Base, SoftDeletable, TenantOwned, Versioned


class CandidateStatus(StrEnum):
    NEW = "new"
    SCREENING = "screening"
    INTERVIEW = "interview"
    OFFER = "offer"
    HIRED = "hired"
    REJECTED = "rejected"
    WITHDRAWN = "withdrawn"


# The CV text inside the vector is capped: a tsvector holds at most 1 MB.
SEARCH_TEXT_CHARS = 200_000

CANDIDATE_SEARCH_VECTOR = (
    "setweight(to_tsvector('simple'::regconfig, coalesce(name, '')), 'A') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(headline, '')), 'A') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(summary, '')), 'B') || "
    "setweight(to_tsvector('english'::regconfig, "
    f"left(coalesce(cv_text, ''), {SEARCH_TEXT_CHARS})), 'C')"
)


class Candidate(Base, TenantOwned, SoftDeletable, Versioned):
    __tablename__ = "candidates"
    __table_args__ = (
        Index("ix_candidates_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_candidates_tenant_name", "tenant_id", "name", "id"),
        Index("ix_candidates_tenant_experience", "tenant_id", "total_experience_months", "id"),
        Index("ix_candidates_tenant_status", "tenant_id", "status"),
        Index("ix_candidates_tenant_deleted", "tenant_id", "deleted_at"),
        # Array containment (`skills @> …`, `&&`) for the skill filters and
        # the e-mail/phone match of a new CV.
        Index("ix_candidates_skills", "skills", postgresql_using="gin"),
        Index("ix_candidates_emails", "emails", postgresql_using="gin"),
        Index("ix_candidates_phones", "phones", postgresql_using="gin"),
        Index("ix_candidates_tags", "tags", postgresql_using="gin"),
        Index("ix_candidates_document_ids", "document_ids", postgresql_using="gin"),
        Index("ix_candidates_search", "search_vector", postgresql_using="gin"),
    )

    name: Mapped[str | None] = mapped_column(String(300), default=None)
    emails: Mapped[list[str]] = mapped_column(ARRAY(String(320)), default=list, server_default="{}")
    phones: Mapped[list[str]] = mapped_column(ARRAY(String(20)), default=list, server_default="{}")
    location: Mapped[str | None] = mapped_column(String(300), default=None)
    links: Mapped[list[dict[str, Any]]] = mapped_column(JSONB, default=list, server_default="[]")
    headline: Mapped[str | None] = mapped_column(String(500), default=None)
    summary: Mapped[str | None] = mapped_column(Text, default=None)
    skills: Mapped[list[str]] = mapped_column(ARRAY(String(200)), default=list, server_default="{}")
    experience: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, default=list, server_default="[]"
    )
    education: Mapped[list[dict[str, Any]]] = mapped_column(
        JSONB, default=list, server_default="[]"
    )
    languages: Mapped[list[str]] = mapped_column(
        ARRAY(String(8)), default=list, server_default="{}"
    )
    total_experience_months: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    status: Mapped[CandidateStatus] = mapped_column(
        String(20), default=CandidateStatus.NEW, server_default=CandidateStatus.NEW.value
    )
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(100)), default=list, server_default="{}")
    document_ids: Mapped[list[UUID]] = mapped_column(
        ARRAY(PG_UUID(as_uuid=True)), default=list, server_default="{}"
    )
    requisition_ids: Mapped[list[UUID]] = mapped_column(
        ARRAY(PG_UUID(as_uuid=True)), default=list, server_default="{}"
    )
    edited_fields: Mapped[list[str]] = mapped_column(
        ARRAY(String(40)), default=list, server_default="{}"
    )
    # The CV the profile follows: the newest document parsed for this person.
    profile_document_id: Mapped[UUID | None] = mapped_column(PG_UUID(as_uuid=True), default=None)
    profile_document_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), default=None
    )
    parsed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    cv_text: Mapped[str | None] = mapped_column(Text, default=None, deferred=True)
    created_by: Mapped[UUID | None] = mapped_column(PG_UUID(as_uuid=True), default=None)
    search_vector: Mapped[Any] = mapped_column(
        TSVECTOR, Computed(CANDIDATE_SEARCH_VECTOR, persisted=True), deferred=True
    )

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'


class Requisition(Base, TenantOwned, SoftDeletable, Versioned):
    __tablename__ = "requisitions"
    __table_args__ = (
        Index("ix_requisitions_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_requisitions_tenant_title", "tenant_id", "title", "id"),
        Index("ix_requisitions_tenant_deleted", "tenant_id", "deleted_at"),
    )

    title: Mapped[str] = mapped_column(String(300))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    required_skills: Mapped[list[str]] = mapped_column(
        ARRAY(String(200)), default=list, server_default="{}"
    )
    preferred_skills: Mapped[list[str]] = mapped_column(
        ARRAY(String(200)), default=list, server_default="{}"
    )
    min_experience_years: Mapped[float | None] = mapped_column(Float, default=None)
    location: Mapped[str | None] = mapped_column(String(300), default=None)
    created_by: Mapped[UUID | None] = mapped_column(PG_UUID(as_uuid=True), default=None)


class TenantSkill(Base, TenantOwned, SoftDeletable):
    """A skill a tenant adds to the built-in taxonomy, with its aliases."""

    __tablename__ = "candidate_skills"
    __table_args__ = (
        Index(
            "uq_candidate_skills_tenant_name_live",
            "tenant_id",
            text("lower(name)"),
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index("ix_candidate_skills_tenant_created", "tenant_id", "created_at", "id"),
    )

    name: Mapped[str] = mapped_column(String(200))
    aliases: Mapped[list[str]] = mapped_column(
        ARRAY(String(200)), default=list, server_default="{}"
    )
    created_by: Mapped[UUID | None] = mapped_column(PG_UUID(as_uuid=True), default=None)
