"""Resumable uploads as the API shows and takes them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from backend.documents.schemas import MAX_DESCRIPTION_LENGTH, MAX_TAGS, MAX_TITLE_LENGTH, clean_tags
from backend.uploads.models import UploadStatus

Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class UploadCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "filename": "deposition-2026-11-02.pdf",
                    "size": 73400320,
                    "sha256": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
                    "content_type": "application/pdf",
                    "title": "Deposition, 2 November",
                    "tags": ["deposition"],
                }
            ]
        },
    )

    filename: str = Field(min_length=1, max_length=1024)
    size: int = Field(ge=1, description="Total bytes of the file")
    sha256: str | None = Field(default=None, pattern=r"^[0-9a-fA-F]{64}$")
    content_type: str | None = Field(default=None, max_length=200)
    case_id: UUID | None = None
    title: str | None = Field(default=None, min_length=1, max_length=MAX_TITLE_LENGTH)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_LENGTH)
    tags: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)
    allow_duplicate: bool = False

    @field_validator("tags")
    @classmethod
    def _unique_tags(cls, value: list[str]) -> list[str]:
        return clean_tags(value)


class UploadCreated(BaseModel):
    id: UUID
    part_size: int
    part_count: int
    expires_at: datetime
    part_urls: list[str] | None = Field(
        default=None,
        description="S3 backend only: a presigned PUT URL per part (1, 2, …), to send the "
        "parts straight to storage",
    )


class UploadOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    filename: str
    size: int
    part_size: int
    part_count: int
    received_parts: list[int]
    status: UploadStatus
    expires_at: datetime
    document_id: UUID | None


class PartOut(BaseModel):
    number: int
    size: int
    sha256: str
