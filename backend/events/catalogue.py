"""The event names the API publishes (the stream and webhooks use the same)."""

from __future__ import annotations

EVENT_TYPES: tuple[str, ...] = (
    "job.queued",
    "job.started",
    "job.progress",
    "job.succeeded",
    "job.failed",
    "job.cancelled",
    "document.created",
    "document.updated",
    "document.deleted",
    "document.processed",
    "case.created",
    "case.updated",
    "case.deleted",
)
PING_EVENT = "webhook.ping"

_READ_PERMISSION = {
    "job": "jobs:read",
    "document": "documents:read",
    "case": "cases:read",
    "webhook": "webhooks:manage",
}


def permission_for(event_type: str) -> str | None:
    """The permission a principal needs to receive `event_type` (None: nobody)."""
    return _READ_PERMISSION.get(event_type.split(".", 1)[0])
