"""Tables of the documentation crawler: crawls, the pages they stored and
the export files built from those pages."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, SmallInteger, String, Text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PG_UUID
from sqlalchemy.orm import Mapped, mapped_column

from backend.kit.models import Base, SoftDeletable, TenantOwned


class CrawlStatus(StrEnum):
    QUEUED = "queued"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class PageStatus(StrEnum):
    OK = "ok"
    ERROR = "error"
    SKIPPED = "skipped"


class Crawl(Base, TenantOwned, SoftDeletable):
    __tablename__ = "crawls"
    __table_args__ = (
        Index("ix_crawls_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_crawls_tenant_status", "tenant_id", "status"),
    )

    url: Mapped[str] = mapped_column(Text)
    title: Mapped[str | None] = mapped_column(String(500), default=None)
    status: Mapped[CrawlStatus] = mapped_column(
        String(20), default=CrawlStatus.QUEUED, server_default=CrawlStatus.QUEUED.value
    )
    job_id: Mapped[UUID | None] = mapped_column(
        PG_UUID(as_uuid=True), ForeignKey("jobs.id", ondelete="SET NULL"), default=None
    )
    options: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    headers_ciphertext: Mapped[str | None] = mapped_column(Text, default=None)
    stats: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict, server_default="{}")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    created_by: Mapped[UUID | None] = mapped_column(PG_UUID(as_uuid=True), default=None)


class CrawlPage(Base, TenantOwned):
    __tablename__ = "crawl_pages"
    __table_args__ = (
        # One row per normalised URL and crawl: a resumed crawl never
        # stores (or fetches) a page twice.
        Index("uq_crawl_pages_tenant_crawl_url", "tenant_id", "crawl_id", "url", unique=True),
        Index("ix_crawl_pages_tenant_crawl_created", "tenant_id", "crawl_id", "created_at", "id"),
    )

    crawl_id: Mapped[UUID] = mapped_column(
        PG_UUID(as_uuid=True), ForeignKey("crawls.id", ondelete="CASCADE")
    )
    url: Mapped[str] = mapped_column(Text)
    final_url: Mapped[str | None] = mapped_column(Text, default=None)
    status: Mapped[PageStatus] = mapped_column(String(10))
    status_code: Mapped[int | None] = mapped_column(SmallInteger, default=None)
    depth: Mapped[int] = mapped_column(SmallInteger, default=0)
    title: Mapped[str | None] = mapped_column(String(500), default=None)
    content_type: Mapped[str | None] = mapped_column(String(100), default=None)
    words: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    size: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    content_sha256: Mapped[str | None] = mapped_column(String(64), default=None)
    markdown: Mapped[str | None] = mapped_column(Text, default=None)
    links: Mapped[list[str]] = mapped_column(JSONB, default=list, server_default="[]")
    error: Mapped[str | None] = mapped_column(Text, default=None)
    fetched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True), default=None)
    document_id: Mapped[UUID | None] = mapped_column(
        PG_UUID(as_uuid=True), ForeignKey("documents.id", ondelete="SET NULL"), default=None
    )


class CrawlExport(Base, TenantOwned):
    __tablename__ = "crawl_exports"
    __table_args__ = (
        Index(
            "uq_crawl_exports_tenant_crawl_format", "tenant_id", "crawl_id", "format", unique=True
        ),
    )

    crawl_id: Mapped[UUID] = mapped_column(
        PG_UUID(as_uuid=True), ForeignKey("crawls.id", ondelete="CASCADE")
    )
    format: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(100))
    content_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(500))
