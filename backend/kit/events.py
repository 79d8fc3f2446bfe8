"""Tenant events (`job.progress`, `document.created`, …) published to Redis
after the transaction that caused them commits.

One Redis pub/sub channel per tenant, so a worker's events reach clients
connected to any API process. Each tenant also has a capped Redis stream of
its recent events, from which Server-Sent Events resume after `Last-Event-ID`.
Publishing never fails a request: when Redis is down the event is dropped
with a log line.

Listeners registered with `add_event_listener` see every event emitted in a
transaction just before it commits, inside it (webhook fan-out uses this, so
a delivery is recorded atomically with the change that caused it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from backend.kit.db import after_commit, before_commit, current_tenant_id
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

EventListener = Callable[[AsyncSession, list[Event]], Awaitable[None]]
_listeners: list[EventListener] = []


def configure_event_bus(bus: EventBus | None) -> None:
    global _bus
    _bus = bus


def event_bus() -> EventBus | None:
    return _bus


def add_event_listener(listener: EventListener) -> None:
    """Called with each transaction's events, inside it, before it commits."""
    if listener not in _listeners:
        _listeners.append(listener)


async def notify_event_listeners(session: AsyncSession, events: list[Event]) -> None:
    """Hand `events` to the listeners inside `session`'s transaction, as
    `emit` does before commit (for callers that build events in bulk)."""
    events = [event for event in events if event.webhooks]
    if events:
        for listener in list(_listeners):
            await listener(session, events)


def emit(
    session: AsyncSession,
    event_type: str,
    data: dict[str, Any],
    *,
    tenant_id: UUID | None = None,
    webhooks: bool = True,
) -> Event | None:
    """Publish `event_type` for the current tenant once `session` commits."""
    tenant = tenant_id or current_tenant_id()
    if tenant is None:
        raise RuntimeError("events belong to a tenant")
    event = Event(type=event_type, tenant_id=tenant, data=data, webhooks=webhooks)
    if _listeners and webhooks:
        pending: list[Event] | None = session.info.get("pending_events")
        if pending is None:
            pending = session.info["pending_events"] = []

            async def notify_listeners() -> None:
                events = session.info.pop("pending_events", [])
                for listener in list(_listeners):
                    await listener(session, events)

            before_commit(session, notify_listeners)
        pending.append(event)
    bus = _bus
    if bus is None:
        return event

    async def publish() -> None:
        await bus.publish(event)

    after_commit(session, publish)
    return event


class Subscription:
    """One local consumer of a tenant's events (a WebSocket or SSE client)."""

    def __init__(self, hub: EventHub, tenant_id: UUID, maxsize: int) -> None:
        self.hub = hub
        self.tenant_id = tenant_id
        self.queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue(maxsize=maxsize)
        self.dropped = 0

    def offer(self, event: dict[str, Any]) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.dropped += 1  # a slow consumer loses events rather than stalling others

    async def get(self) -> dict[str, Any]:
        return await self.queue.get()

    def close(self) -> None:
        self.hub.unsubscribe(self)


class EventHub:
    """The events of every tenant, read from Redis once per process and
    handed to the local subscribers of each tenant."""

    def __init__(self, redis: Redis, bus: EventBus, *, queue_size: int = 1000) -> None:
        self.redis = redis
        self.bus = bus
        self.queue_size = queue_size
        self._subscribers: dict[UUID, set[Subscription]] = {}
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def subscribe(self, tenant_id: UUID) -> Subscription:
        subscription = Subscription(self, tenant_id, self.queue_size)
        self._subscribers.setdefault(tenant_id, set()).add(subscription)
        if self._task is None or self._task.done():
            self._ready.clear()
            self._task = asyncio.create_task(self._read(), name="event-hub")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._ready.wait(), timeout=2.0)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subscribers = self._subscribers.get(subscription.tenant_id)
        if subscribers is not None:
            subscribers.discard(subscription)
            if not subscribers:
                del self._subscribers[subscription.tenant_id]

    def subscriber_count(self) -> int:
        return sum(len(s) for s in self._subscribers.values())

    def _dispatch(self, channel: str, body: str) -> None:
        try:
            tenant_id = UUID(channel.rsplit(":", 1)[1])
        except ValueError:
            return
        subscribers = self._subscribers.get(tenant_id)
        if not subscribers:
            return
        try:
            event = json.loads(body)
        except ValueError:
            return
        for subscription in list(subscribers):
            subscription.offer(event)

    async def _read(self) -> None:
        backoff = 0.2
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.psubscribe(self.bus.pattern())
                self._ready.set()
                backoff = 0.2
                while True:
                    message = await pubsub.get_message(timeout=1.0)
                    if message is not None and message["type"] == "pmessage":
                        self._dispatch(message["channel"], message["data"])
            except asyncio.CancelledError:
                raise
            except (RedisError, OSError) as exc:
                logger.warning(
                    "event stream interrupted: Redis unavailable; retrying",
                    extra={"error": type(exc).__name__},
                )
                self._ready.set()
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()  # type: ignore[no-untyped-call]

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._task
            self._task = None
        self._subscribers.clear()
