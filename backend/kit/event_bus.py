"""The event bus: tenant events published to Redis. One pub/sub channel per
tenant, so a worker's events reach clients connected to any API process;
each tenant also has a capped Redis stream of its recent events, from which
Server-Sent Events resume after `Last-Event-ID`. Publishing never fails a
request: when Redis is down the event is dropped with a log line. The
worker's `BufferedEventBus` publishes in order in the background, so the
queue never waits for Redis.
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError

from backend.kit.models import uuid7

logger = logging.getLogger("dossier.events")

DEFAULT_BUFFER_SIZE = 1000


@dataclass(frozen=True, slots=True)
class Event:
    type: str
    tenant_id: UUID
    data: dict[str, Any]
    id: UUID = field(default_factory=uuid7)
    created_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    webhooks: bool = True  # False: not fanned out to webhooks (their own delivery jobs)

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "type": self.type,
            "created_at": self.created_at.isoformat(),
            "data": self.data,
        }

    def to_json(self) -> str:
        return json.dumps(self.as_dict(), default=str)


class EventBus:
    def __init__(
        self, redis: Redis, prefix: str, *, buffer_size: int = DEFAULT_BUFFER_SIZE
    ) -> None:
        self.redis = redis
        self.prefix = prefix
        self.buffer_size = buffer_size

    def channel(self, tenant_id: UUID | str) -> str:
        return f"{self.prefix}:events:{tenant_id}"

    def pattern(self) -> str:
        return f"{self.prefix}:events:*"

    def stream(self, tenant_id: UUID | str) -> str:
        return f"{self.prefix}:event-log:{tenant_id}"

    async def publish(self, event: Event) -> None:
        body = event.to_json()
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                pipe.xadd(
                    self.stream(event.tenant_id),
                    {"id": str(event.id), "event": body},
                    maxlen=self.buffer_size,
                    approximate=True,
                )
                pipe.publish(self.channel(event.tenant_id), body)
                await pipe.execute()
        except (RedisError, OSError):
            logger.warning("event dropped: Redis unavailable", extra={"event_type": event.type})

    async def publish_many(self, events: list[Event]) -> None:
        """Publish several events in one round trip (a pipeline), in order."""
        if not events:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for event in events:
                    body = event.to_json()
                    pipe.xadd(
                        self.stream(event.tenant_id),
                        {"id": str(event.id), "event": body},
                        maxlen=self.buffer_size,
                        approximate=True,
                    )
                    pipe.publish(self.channel(event.tenant_id), body)
                await pipe.execute()
        except (RedisError, OSError):
            logger.warning(
                "event dropped: Redis unavailable",
                extra={"event_type": events[0].type, "count": len(events)},
            )

    async def recent(self, tenant_id: UUID, after_id: str | None) -> list[dict[str, Any]]:
        """Buffered events of the tenant after event `after_id`, oldest first
        (all buffered events when `after_id` is no longer buffered)."""
        entries: Any = await self.redis.xrevrange(self.stream(tenant_id), count=self.buffer_size)
        newer: list[dict[str, Any]] = []
        fields: Any
        for _, fields in entries or []:
            if after_id is not None and fields.get("id") == after_id:
                break
            newer.append(json.loads(fields["event"]))
        newer.reverse()
        return newer


class BufferedEventBus(EventBus):
    """An `EventBus` that publishes in the background, in order: `publish`
    queues the event (it is already committed) and returns; one task sends
    what has queued up as one pipeline per round trip. Used by the worker,
    whose queue should not wait for Redis; every event of the process goes
    through the same queue, so a job's events keep their order. At most
    `limit` events wait (the oldest are dropped with a log line beyond that,
    e.g. while Redis is down); `aclose` sends what is left."""

    def __init__(
        self,
        redis: Redis,
        prefix: str,
        *,
        buffer_size: int = DEFAULT_BUFFER_SIZE,
        limit: int = 10_000,
    ) -> None:
        super().__init__(redis, prefix, buffer_size=buffer_size)
        self.limit = limit
        self._queue: list[Event] = []
        self._ready = asyncio.Event()
        self._closing = False
        self._task: asyncio.Task[None] | None = None

    async def publish(self, event: Event) -> None:
        self._enqueue([event])

    def publish_later(self, events: list[Event]) -> None:
        self._enqueue(events)

    def _enqueue(self, events: list[Event]) -> None:
        self._queue.extend(events)
        if len(self._queue) > self.limit:
            dropped = len(self._queue) - self.limit
            del self._queue[:dropped]
            logger.warning("events dropped: publishing fell behind", extra={"count": dropped})
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="event-publisher")
        self._ready.set()

    async def _run(self) -> None:
        while True:
            await self._ready.wait()
            self._ready.clear()
            while self._queue:
                batch, self._queue = self._queue, []
                try:
                    await self.publish_many(batch)
                except Exception:
                    logger.exception("events dropped: publishing failed")
            if self._closing:
                return

    async def aclose(self, timeout: float = 5.0) -> None:  # noqa: ASYNC109
        """Send the queued events (for at most `timeout` seconds) and stop."""
        self._closing = True
        self._ready.set()
        if self._task is not None:
            try:
                await asyncio.wait_for(self._task, timeout)
            except (TimeoutError, asyncio.CancelledError):
                logger.warning("events dropped at shutdown", extra={"count": len(self._queue)})
            self._task = None


_bus: EventBus | None = None


def configure_event_bus(bus: EventBus | None) -> None:
    global _bus
    _bus = bus


def event_bus() -> EventBus | None:
    return _bus
