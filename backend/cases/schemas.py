"""Cases as the API shows and takes them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from backend.cases.models import CasePriority, CaseStatus
from backend.documents.schemas import MAX_DESCRIPTION_LENGTH, MAX_TAGS, MAX_TITLE_LENGTH, clean_tags

Tag = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]


class CaseOut(BaseModel):
    model_config = ConfigDict(from_attributes=True, populate_by_name=True)

    id: UUID
    reference: str
    title: str
    description: str | None
    status: CaseStatus
    priority: CasePriority
    assignee_id: UUID | None
    tags: list[str]
    due_at: datetime | None
    metadata: dict[str, Any] = Field(validation_alias="metadata_")
    closed_at: datetime | None
    version: int
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class CaseCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "title": "Smith v. Jones",
                    "description": "Contract dispute over the 2025 supply agreement",
                    "priority": "high",
                    "assignee_id": "3d2c1b0a-9f8e-4d7c-b6a5-948372615a0b",
                    "tags": ["contract", "litigation"],
                    "due_at": "2027-03-31T17:00:00Z",
                    "metadata": {"court": "District Court", "docket": "25-CV-1042"},
                }
            ]
        },
    )

    title: str = Field(min_length=1, max_length=MAX_TITLE_LENGTH)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_LENGTH)
    status: CaseStatus = CaseStatus.OPEN
    priority: CasePriority = CasePriority.NORMAL
    assignee_id: UUID | None = None
    tags: list[Tag] = Field(default_factory=list, max_length=MAX_TAGS)
    due_at: datetime | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("tags")
    @classmethod
    def _unique_tags(cls, value: list[str]) -> list[str]:
        return clean_tags(value)


class CaseUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"status": "in_progress", "priority": "urgent"}, {"status": "closed"}]
        },
    )

    title: str | None = Field(default=None, min_length=1, max_length=MAX_TITLE_LENGTH)
    description: str | None = Field(default=None, max_length=MAX_DESCRIPTION_LENGTH)
    status: CaseStatus | None = None
    priority: CasePriority | None = None
    assignee_id: UUID | None = None
    tags: list[Tag] | None = Field(default=None, max_length=MAX_TAGS)
    due_at: datetime | None = None
    metadata: dict[str, Any] | None = None

    @field_validator("tags")
    @classmethod
    def _unique_tags(cls, value: list[str] | None) -> list[str] | None:
        return clean_tags(value) if value is not None else None


class CaseDocumentAttach(BaseModel):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"document_id": "0b3c7c1e-5d0a-4f8e-9a57-2f1d6c3b9e41"}]}
    )

    document_id: UUID
