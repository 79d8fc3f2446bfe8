"""Tenant events (`job.progress`, `document.created`, …) emitted inside a
transaction and published to the event bus (`kit/event_bus.py`) after it
commits, so a rolled-back change announces nothing.

Listeners registered with `add_event_listener` see every event emitted in a
transaction just before it commits, inside it (webhook fan-out uses this, so
a delivery is recorded atomically with the change that caused it).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from backend.kit.db import after_commit, before_commit, current_tenant_id
from backend.kit.event_bus import Event, event_bus

EventListener = Callable[[AsyncSession, list[Event]], Awaitable[None]]
_listeners: list[EventListener] = []


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
    bus = event_bus()
    if bus is None:
        return event

    async def publish() -> None:
        await bus.publish(event)

    after_commit(session, publish)
    return event
