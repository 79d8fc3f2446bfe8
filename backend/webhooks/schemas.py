"""Webhook and delivery shapes of the API."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from backend.events.catalogue import EventName
from backend.webhooks.models import DeliveryStatus

MAX_EVENTS = 200


class WebhookCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "url": "https://hooks.acme.example/dossier",
                    "events": ["document.processed", "job.failed"],
                    "description": "Indexing service",
                }
            ]
        },
    )

    url: str = Field(min_length=8, max_length=2048)
    events: list[EventName] = Field(min_length=1, max_length=MAX_EVENTS)
    description: str | None = Field(default=None, max_length=500)


class WebhookUpdate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"events": ["document.processed", "document.deleted"]},
                {"is_active": True},
            ]
        },
    )

    url: str | None = Field(default=None, min_length=8, max_length=2048)
    events: list[EventName] | None = Field(default=None, min_length=1, max_length=MAX_EVENTS)
    description: str | None = Field(default=None, max_length=500)
    is_active: bool | None = None


class WebhookOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    url: str
    events: list[str]
    description: str | None
    is_active: bool
    disabled_at: datetime | None
    created_at: datetime
    updated_at: datetime
    deleted_at: datetime | None


class WebhookCreated(WebhookOut):
    secret: str = Field(description="The signing secret; shown only in this answer")


class DeliveryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: UUID
    webhook_id: UUID
    event_id: UUID
    event_type: str
    status: DeliveryStatus
    attempt: int
    response_code: int | None
    duration_ms: int | None
    error: str | None
    next_retry_at: datetime | None
    delivered_at: datetime | None
    job_id: UUID | None
    created_at: datetime
