"""The local fan-out of tenant events in one API process: one Redis pattern
subscription feeds every WebSocket and SSE client of the process, each with
a bounded queue of its own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
from typing import Any
from uuid import UUID

from redis.asyncio import Redis
from redis.exceptions import RedisError

from backend.kit.event_bus import EventBus

logger = logging.getLogger("dossier.events")


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
