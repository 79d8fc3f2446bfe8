"""Job, batch and job-type shapes of the API."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from backend.jobs.models import JobStatus


class JobCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "type": "document.extract_text",
                    "payload": {"ocr_language": "eng+fra"},
                    "document_id": "0b3c7c1e-5d0a-4f8e-9a57-2f1d6c3b9e41",
                    "priority": 5,
                },
                {"type": "case.export", "case_id": "6f1e2d3c-4b5a-4978-8d6e-5f4a3b2c1d0e"},
            ]
        },
    )

    type: str = Field(min_length=1, max_length=100)
    payload: dict[str, Any] = Field(default_factory=dict)
    document_id: UUID | None = None
    case_id: UUID | None = None
    priority: int = Field(default=0, ge=-10, le=10, description="Higher runs first")
    max_attempts: int | None = Field(default=None, ge=1, le=20)


class ArtifactOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    name: str
    size: int
    content_type: str


class JobOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    type: str
    status: JobStatus
    priority: int
    payload: dict[str, Any]
    progress: int
    step: str | None
    attempts: int
    max_attempts: int
    result: dict[str, Any] | None
    error: str | None
    document_id: UUID | None
    case_id: UUID | None
    batch_id: UUID | None
    cancel_requested: bool = False
    artifacts: list[ArtifactOut] = []
    created_at: datetime
    updated_at: datetime
    started_at: datetime | None
    finished_at: datetime | None


class JobTypeOut(BaseModel):
    name: str
    description: str
    payload_schema: dict[str, Any]
    requires: list[str]


class JobLogOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    at: datetime
    level: str
    message: str
    attempt: int
    request_id: str | None = Field(
        default=None,
        description="The request that wrote the line (the creating request for the worker's lines)",
    )


class JobStats(BaseModel):
    by_status: dict[str, int]
    by_type: dict[str, dict[str, int]]
    oldest_queued_age_seconds: float | None


# The schema's ceiling; BATCH_MAX_ITEMS (at most this) is the configured limit.
MAX_BATCH_ITEMS = 10_000


class BatchItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    payload: dict[str, Any] = Field(default_factory=dict)
    document_id: UUID | None = None
    case_id: UUID | None = None


class BatchCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "type": "document.extract_text",
                    "items": [
                        {"document_id": "0b3c7c1e-5d0a-4f8e-9a57-2f1d6c3b9e41"},
                        {
                            "document_id": "9a8b7c6d-5e4f-4a3b-8c2d-1e0f9a8b7c6d",
                            "payload": {"ocr_language": "deu"},
                        },
                    ],
                    "priority": 0,
                    "max_attempts": 3,
                }
            ]
        },
    )

    type: str = Field(min_length=1, max_length=100)
    items: list[BatchItem] = Field(min_length=1, max_length=MAX_BATCH_ITEMS)
    priority: int = Field(default=0, ge=-10, le=10)
    max_attempts: int | None = Field(default=None, ge=1, le=20)


class BatchCreated(BaseModel):
    id: UUID
    job_ids: list[UUID]


class BatchOut(BaseModel):
    id: UUID
    type: str
    total: int
    by_status: dict[str, int]
    progress: int
    done: bool
    created_at: datetime
