"""Documents as the API shows and takes them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
)

from backend.documents.models import DocumentStatus, DocumentType, PageMethod

MAX_TAGS = 50
MAX_TAG_LENGTH = 100
MAX_TITLE_LENGTH = 500
MAX_DESCRIPTION_LENGTH = 10_000
MAX_METADATA_BYTES = 16 * 1024
MAX_EXTRACTED_DATA_BYTES = 256 * 1024

Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


def clean_tags(tags: list[str]) -> list[str]:
    """Stripped, de-duplicated in order; blank items dropped."""
    seen: dict[str, None] = {}
    for tag in tags:
        tag = tag.strip()
        if tag:
            seen.setdefault(tag, None)
    return list(seen)


class DocumentOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    title: str
    description: str | None
    filename: str
    mime_type: str
    size: int
    sha256: str
    tags: list[str]
    case_id: UUID | None
    status: DocumentStatus
    page_count: int | None
    language: str | None
    document_type: DocumentType | None = None
    extracted_data: dict[str, Any] | None = None
    extraction: dict[str, Any] | None = None
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        validation_alias="metadata_",
        description="Your own JSON object (at most 16 KiB); processing adds what it "
        "learnt under its own key (`mesh` for 3-D meshes)",
    )
    confidence: float | None = None
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class DocumentMetadata(BaseModel):
    """The optional fields of an upload (multipart form fields)."""

    title: str | None = Field(default=None, min_length=1, max_length=MAX_TITLE_LENGTH)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_LENGTH)
    tags: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)
    case_id: UUID | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("tags")
    @classmethod
    def _unique_tags(cls, value: list[str]) -> list[str]:
        return clean_tags(value)


class DocumentUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title": "Lease agreement (signed)",
                    "tags": ["lease", "signed"],
                    "case_id": "6f1e2d3c-4b5a-4978-8d6e-5f4a3b2c1d0e",
                }
            ]
        },
    )

    title: str | None = Field(default=None, min_length=1, max_length=MAX_TITLE_LENGTH)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_LENGTH)
    tags: list[Tag] | None = Field(default=None, max_length=MAX_TAGS)
    case_id: UUID | None = None
    document_type: DocumentType | None = None
    extracted_data: dict[str, Any] | None = Field(
        default=None, description="Corrected fields; marks `extraction.corrected`"
    )
    metadata: dict[str, Any] | None = Field(
        default=None, description="The user's JSON object (at most 16 KiB), replaced whole"
    )

    @field_validator("tags")
    @classmethod
    def _unique_tags(cls, value: list[str] | None) -> list[str] | None:
        return clean_tags(value) if value is not None else None


class BulkError(BaseModel):
    status: int
    code: str
    detail: str | None = None
    existing_id: UUID | None = None


class BulkResult(BaseModel):
    filename: str | None
    status: int
    document: DocumentOut | None = None
    error: BulkError | None = None


class BulkAnswer(BaseModel):
    results: list[BulkResult]


class PageOut(BaseModel):
    """One page of a document's extraction."""

    model_config = ConfigDict(from_attributes=True)

    number: int
    method: PageMethod
    characters: int
    confidence: float | None
    language: str | None
    width: float | None = Field(description="Points for PDF pages, pixels for images")
    height: float | None


class PageDetail(PageOut):
    text: str


class SearchRequest(BaseModel):
    """`POST /documents/search`: a filter in the JSON filter language, an
    optional full-text query, and the list parameters."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "filter": {
                        "and": [
                            {"field": "document_type", "op": "eq", "value": "invoice"},
                            {"field": "extracted_data.total_amount", "op": "gte", "value": 1000},
                            {"field": "created_at", "op": "gte", "value": "2026-11-01T00:00:00Z"},
                        ]
                    },
                    "q": "consulting",
                    "sort": "-created_at",
                    "limit": 20,
                }
            ]
        },
    )

    filter: dict[str, Any] | None = None
    q: str | None = Field(default=None, min_length=1, max_length=500)
    sort: str | None = Field(default=None, max_length=50)
    limit: int | None = Field(default=None, ge=1, le=100)
    cursor: str | None = Field(default=None, max_length=1024)
    page: int | None = Field(default=None, ge=1)
    page_size: int | None = Field(default=None, ge=1, le=100)
