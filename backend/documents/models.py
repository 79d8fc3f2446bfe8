"""Documents: files a tenant uploaded, their checksum, storage key, extracted
text and a generated full-text search vector."""

from __future__ import annotations

from enum import StrEnum
from typing import Any
from uuid import UUID

from sqlalchemy import (
    BigInteger,
    Boolean,
    Computed,
    Float,
    ForeignKey,
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


class DocumentStatus(StrEnum):
    UPLOADED = "uploaded"
    PROCESSING = "processing"
    PROCESSED = "processed"
    FAILED = "failed"


# Extracted text is capped inside the vector: a tsvector holds at most 1 MB.
SEARCH_TEXT_CHARS = 250_000

# The text-search configuration follows the document's language: German
# text is stemmed as German, English (and not yet detected) as English, any
# other language without stemming. Queries use the same expression.
# (Each branch a regconfig literal: a cast of text to regconfig is not
# immutable, which a generated column needs.)
DOCUMENT_REGCONFIG = (
    "CASE WHEN language = 'de' THEN 'german'::regconfig "
    "WHEN language = 'en' OR language IS NULL THEN 'english'::regconfig "
    "ELSE 'simple'::regconfig END"
)
DOCUMENT_SEARCH_VECTOR = (
    f"setweight(to_tsvector({DOCUMENT_REGCONFIG}, coalesce(title, '')), 'A') || "
    f"setweight(to_tsvector({DOCUMENT_REGCONFIG}, coalesce(description, '')), 'B') || "
    f"setweight(to_tsvector({DOCUMENT_REGCONFIG}, "
    f"left(coalesce(extracted_text, ''), {SEARCH_TEXT_CHARS})), 'C')"
)


class DocumentType(StrEnum):
    INVOICE = "invoice"
    RECEIPT = "receipt"
    DELIVERY_NOTE = "delivery_note"
    CONTRACT = "contract"
    CV = "cv"
    OTHER = "other"


class PageMethod(StrEnum):
    TEXT = "text"
    OCR = "ocr"


class Document(Base, TenantOwned, SoftDeletable, Versioned):
    __tablename__ = "documents"
    __table_args__ = (
        # One live copy of a content per tenant, unless it was kept on purpose
        # (`allow_duplicate=true` marks the second copy `is_duplicate`).
        Index(
            "uq_documents_tenant_sha256_live",
            "tenant_id",
            "sha256",
            unique=True,
            postgresql_where=text("deleted_at IS NULL AND NOT is_duplicate"),
        ),
        Index("ix_documents_tenant_sha256", "tenant_id", "sha256"),
        Index("ix_documents_tenant_created", "tenant_id", "created_at", "id"),
        Index("ix_documents_tenant_updated", "tenant_id", "updated_at", "id"),
        Index("ix_documents_tenant_title", "tenant_id", "title", "id"),
        Index("ix_documents_tenant_size", "tenant_id", "size", "id"),
        Index("ix_documents_tenant_case", "tenant_id", "case_id", "created_at"),
        Index("ix_documents_tenant_status", "tenant_id", "status"),
        Index("ix_documents_tenant_deleted", "tenant_id", "deleted_at"),
        Index("ix_documents_tags", "tags", postgresql_using="gin"),
        Index("ix_documents_search", "search_vector", postgresql_using="gin"),
        Index("ix_documents_tenant_type", "tenant_id", "document_type", "created_at"),
        Index("ix_documents_tenant_language", "tenant_id", "language"),
        Index(
            "ix_documents_tenant_supplier",
            "tenant_id",
            text("lower(extracted_data ->> 'supplier_name')"),
        ),
        Index(
            "ix_documents_tenant_supplier_vat",
            "tenant_id",
            text("(extracted_data ->> 'supplier_vat_id')"),
        ),
        Index(
            "ix_documents_metadata",
            "metadata",
            postgresql_using="gin",
            postgresql_ops={"metadata": "jsonb_path_ops"},
        ),
    )

    title: Mapped[str] = mapped_column(String(500))
    description: Mapped[str | None] = mapped_column(Text, default=None)
    filename: Mapped[str] = mapped_column(String(255))
    mime_type: Mapped[str] = mapped_column(String(100))
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    is_duplicate: Mapped[bool] = mapped_column(Boolean, default=False, server_default="false")
    storage_key: Mapped[str] = mapped_column(String(500))
    status: Mapped[DocumentStatus] = mapped_column(
        String(20), default=DocumentStatus.UPLOADED, server_default=DocumentStatus.UPLOADED.value
    )
    tags: Mapped[list[str]] = mapped_column(ARRAY(String(100)), default=list, server_default="{}")
    case_id: Mapped[UUID | None] = mapped_column(
        PG_UUID(as_uuid=True), ForeignKey("cases.id", ondelete="SET NULL"), default=None
    )
    extracted_text: Mapped[str | None] = mapped_column(Text, default=None, deferred=True)
    page_count: Mapped[int | None] = mapped_column(Integer, default=None)
    language: Mapped[str | None] = mapped_column(String(20), default=None)
    created_by: Mapped[UUID | None] = mapped_column(PG_UUID(as_uuid=True), default=None)
    # Document intelligence: what kind of document, its fields, how they were
    # found, the user's own JSON, and the character-weighted OCR confidence.
    document_type: Mapped[str | None] = mapped_column(String(20), default=None)
    extracted_data: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)
    extraction: Mapped[dict[str, Any] | None] = mapped_column(JSONB, default=None)
    # The user's JSON object, where processing also records what it learnt
    # under its own key (`mesh` for 3-D scans). `metadata` is reserved on
    # declarative classes, hence the attribute name.
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata", JSONB, default=dict, server_default="{}"
    )
    confidence: Mapped[float | None] = mapped_column(Float, default=None)
    search_vector: Mapped[Any] = mapped_column(
        TSVECTOR, Computed(DOCUMENT_SEARCH_VECTOR, persisted=True), deferred=True
    )

    @property
    def etag(self) -> str:
        return f'W/"{self.version}"'


class DocumentPage(Base, TenantOwned):
    """One page of a document's extracted text: how it was read, its
    characters, OCR confidence, language and size (points for PDF pages,
    pixels for images)."""

    __tablename__ = "document_pages"
    __table_args__ = (
        Index("uq_document_pages_tenant_document_number", "tenant_id", "document_id", "number",
              unique=True),
    )  # fmt: skip

    document_id: Mapped[UUID] = mapped_column(
        PG_UUID(as_uuid=True), ForeignKey("documents.id", ondelete="CASCADE")
    )
    number: Mapped[int] = mapped_column(Integer)
    method: Mapped[PageMethod] = mapped_column(String(10))
    characters: Mapped[int] = mapped_column(Integer)
    confidence: Mapped[float | None] = mapped_column(Float, default=None)
    language: Mapped[str | None] = mapped_column(String(20), default=None)
    width: Mapped[float | None] = mapped_column(Float, default=None)
    height: Mapped[float | None] = mapped_column(Float, default=None)
    text: Mapped[str] = mapped_column(Text, deferred=True)
