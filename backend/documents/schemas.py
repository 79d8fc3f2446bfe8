"""Documents as the API shows and takes them."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    field_validator,
)

from backend.documents.models import DocumentStatus

MAX_TAGS = 50
MAX_TAG_LENGTH = 100
MAX_TITLE_LENGTH = 500
MAX_DESCRIPTION_LENGTH = 10_000

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
    metadata: dict[str, Any] = Field(
        default_factory=dict,
        validation_alias="metadata_",
        description="What processing learnt about the file (`mesh` for 3-D meshes)",
    )
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


_DOCUMENTS_OUT = TypeAdapter(list[DocumentOut])


def documents_out(rows: Sequence[Mapping[str, Any]]) -> list[DocumentOut]:
    """List rows (the repository's `LISTED` columns) as `DocumentOut`s, in one
    validation of plain dicts: much cheaper than reading each row's attributes."""
    return _DOCUMENTS_OUT.validate_python([dict(row) for row in rows])


class DocumentMetadata(BaseModel):
    """The optional fields of an upload (multipart form fields)."""

    title: str | None = Field(default=None, min_length=1, max_length=MAX_TITLE_LENGTH)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_LENGTH)
    tags: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)
    case_id: UUID | None = None

    @field_validator("tags")
    @classmethod
    def _unique_tags(cls, value: list[str]) -> list[str]:
        return clean_tags(value)


class DocumentUpdate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(default=None, min_length=1, max_length=MAX_TITLE_LENGTH)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_LENGTH)
    tags: list[Tag] | None = Field(default=None, max_length=MAX_TAGS)
    case_id: UUID | None = None

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
