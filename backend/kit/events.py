"""Tenant events (`job.progress`, `document.created`, …) published to Redis
after the transaction that caused them commits.

One Redis pub/sub channel per tenant, so a worker's events reach clients
connected to any API process. Publishing never fails a request: when Redis
is down the event is dropped with a log line.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.kit.db import after_commit, current_tenant_id
from backend.kit.models import uuid7

logger = logging.getLogger("dossier.events")


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    tenant_id: UUID
    data: dict[str, Any]
    id: UUID = field(default_factory=uuid7)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))

    def to_json(self) -> str:
        return json.dumps(
            {
                "id": str(self.id),
                "type": self.type,
                "created_at": self.created_at.isoformat(),
                "data": self.data,
            },
            default=str,
        )


class EventBus:
    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = prefix

    def channel(self, tenant_id: UUID) -> str:
        return f"{self.prefix}:events:{tenant_id}"

    async def publish(self, event: Event) -> None:
        try:
            await self.redis.publish(self.channel(event.tenant_id), event.to_json())
        except (RedisError, OSError):
            logger.warning("event dropped: Redis unavailable", extra={"event_type": event.type})


_bus: EventBus | None = None


def configure_event_bus(bus: EventBus | None) -> None:
    global _bus
    _bus = bus


def emit(
    session: AsyncSession, event_type: str, data: dict[str, Any], *, tenant_id: UUID | None = None
) -> Event | None:
    """Publish `event_type` for the current tenant once `session` commits."""
    tenant = tenant_id or current_tenant_id()
    if tenant is None:
        raise RuntimeError("events belong to a tenant")
    event = Event(type=event_type, tenant_id=tenant, data=data)
    bus = _bus
    if bus is None:
        return event

    async def publish() -> None:
        await bus.publish(event)

    after_commit(session, publish)
    return event
