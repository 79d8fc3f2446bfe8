"""The process's event hub: one Redis pub/sub reader feeding every local
WebSocket and SSE client."""

from __future__ import annotations

from typing import Any

from redis.asyncio import Redis

from backend.kit.event_bus import EventBus, event_bus
from backend.kit.event_hub import EventHub


def get_hub(app: Any) -> EventHub:
    hub: EventHub | None = getattr(app.state, "event_hub", None)
    if hub is None:
        settings = app.state.settings
        # Its own client: a pub/sub reader must not time out while idle.
        redis = Redis.from_url(
            settings.redis_url.get_secret_value(),
            decode_responses=True,
            socket_connect_timeout=1.0,
            socket_timeout=None,
            health_check_interval=30,
        )
        bus = event_bus() or EventBus(redis, settings.redis_key_prefix)
        hub = EventHub(redis, bus)
        app.state.event_hub = hub
    return hub


async def close_hub(app: Any) -> None:
    hub: EventHub | None = getattr(app.state, "event_hub", None)
    if hub is not None:
        app.state.event_hub = None
        await hub.close()
        await hub.redis.aclose()
