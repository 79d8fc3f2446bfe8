"""Limits of WebSocket event streams: handshakes per client IP, connections
per principal.

A handshake is counted per client IP (`RATE_LIMIT_WS_HANDSHAKE`) before the
credential is checked, so nobody can make the server authenticate sockets
without bound; past it the socket is closed with 1013 (try again later).

Each principal (a user or an API key) holds at most
`WS_MAX_CONNECTIONS_PER_PRINCIPAL` open event streams, `WS /events`,
`WS /jobs/{id}/stream` and `GET /events` (Server-Sent Events) together,
across every API process; the next socket is closed with 1013 too, the next
SSE request answered 429 `rate_limited`. The count lives in Redis: one
sorted set per principal whose members are socket ids, each scored by the
end of its lease (on Redis's clock, which every process shares). A socket takes its slot in one Lua
script (expired members dropped, the rest counted, itself added only under
the cap), renews its lease at every ping interval (`WS_PING_INTERVAL_SECONDS`)
and gives the slot back when it closes. A lease lasts `LEASE_INTERVALS` ping
intervals, so the sockets of a process that died stop counting on their own.

When Redis cannot answer, the cap fails open across processes as the rate
limiter does: each process counts only its own sockets, the failure is
logged, and Redis is left alone for a few seconds. A socket admitted then
puts itself in Redis at its next renewal.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterator
from typing import Any
from uuid import UUID, uuid4

from redis.asyncio import Redis
from redis.exceptions import RedisError
from starlette.requests import HTTPConnection

from backend.kit.ratelimit import FAILURE_BACKOFF_SECONDS, client_ip, get_backend

logger = logging.getLogger("dossier.events")

TRY_AGAIN_LATER = 1013
# A lease outlives this many missed renewals (ping intervals).
LEASE_INTERVALS = 3

# Redis's clock in milliseconds, as `now`.
_NOW = "local time = redis.call('TIME')\nlocal now = time[1] * 1000 + math.floor(time[2] / 1000)\n"

# KEYS[1]: the principal's set; ARGV[1]: the cap. Returns 0 when it is full.
_FULL = (
    _NOW
    + "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)\n"
    + "if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end\n"
)

# ARGV: cap, socket id, lease (ms). 1 when taken.
TAKE_SCRIPT = (
    _FULL
    + "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[3]), ARGV[2])\n"
    + "redis.call('PEXPIRE', KEYS[1], ARGV[3])\n"
    + "return 1"
)

# ARGV: cap. 1 when one more would be taken now.
ROOM_SCRIPT = _FULL + "return 1"

# KEYS[1]: the principal's set; ARGV: socket id, lease (ms). Adds the socket
# back if it is missing (admitted while Redis was down, or Redis lost it).
RENEW_SCRIPT = (
    _NOW
    + "redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[1])\n"
    + "redis.call('PEXPIRE', KEYS[1], ARGV[2])\n"
    + "return 1"
)


class ConnectionCap:
    """Open sockets per principal: across API processes in Redis, in this
    process alone while Redis cannot answer."""

    def __init__(self, redis: Redis, prefix: str, *, cap: int, renew_seconds: float) -> None:
        self.redis = redis
        self.prefix = f"{prefix}:ws-open"
        self.cap = cap
        self.renew_seconds = renew_seconds
        self.lease_ms = max(1, round(renew_seconds * LEASE_INTERVALS * 1000))
        self._take = redis.register_script(TAKE_SCRIPT)
        self._room = redis.register_script(ROOM_SCRIPT)
        self._renew = redis.register_script(RENEW_SCRIPT)
        self._local: Counter[UUID] = Counter()
        self._skip_until = 0.0

    def key(self, principal_id: UUID) -> str:
        return f"{self.prefix}:{principal_id}"

    @contextlib.asynccontextmanager
    async def hold(self, principal_id: UUID) -> AsyncIterator[bool]:
        """Yields whether the socket may stay open; its slot is held meanwhile."""
        key, socket_id = self.key(principal_id), uuid4().hex
        if not await self._ask(self._take, [self.cap, socket_id, self.lease_ms], principal_id):
            yield False
            return
        self._local[principal_id] += 1
        renewing = asyncio.create_task(self._keep(key, socket_id))
        try:
            yield True
        finally:
            renewing.cancel()
            await asyncio.gather(renewing, return_exceptions=True)
            self._local[principal_id] -= 1
            if self._local[principal_id] <= 0:
                del self._local[principal_id]
            await self._give_back(key, socket_id)

    async def has_room(self, principal_id: UUID) -> bool:
        """Whether `hold` would admit one more stream of the principal now:
        for answering a refusal before a response has begun (a stream opened
        meanwhile may still take the last slot first)."""
        return await self._ask(self._room, [self.cap], principal_id)

    @property
    def paused(self) -> bool:
        """Redis is left alone for a while after it failed."""
        return time.monotonic() < self._skip_until

    async def _ask(self, script: Any, args: list[Any], principal_id: UUID) -> bool:
        """The script's answer for the principal's set; while Redis cannot
        answer, whether this process's own count is under the cap."""
        if not self.paused:
            try:
                return bool(await script(keys=[self.key(principal_id)], args=args))
            except (RedisError, OSError) as exc:
                self._failed(exc)
        return self._local[principal_id] < self.cap

    async def _keep(self, key: str, socket_id: str) -> None:
        while True:
            await asyncio.sleep(self.renew_seconds)
            if self.paused:
                continue
            try:
                await self._renew(keys=[key], args=[socket_id, self.lease_ms])
            except (RedisError, OSError) as exc:
                self._failed(exc)

    async def _give_back(self, key: str, socket_id: str) -> None:
        if self.paused:
            return  # its lease runs out instead
        try:
            await self.redis.zrem(key, socket_id)
        except (RedisError, OSError) as exc:
            self._failed(exc)

    def _failed(self, exc: BaseException) -> None:
        self._skip_until = time.monotonic() + FAILURE_BACKOFF_SECONDS
        logger.warning(
            "WebSocket connection cap unavailable in Redis; counting this process's sockets only",
            extra={"error": type(exc).__name__},
        )


def connection_cap(app: Any) -> ConnectionCap:
    """The app's cap, made at first use from its Redis client and settings."""
    cap: ConnectionCap | None = getattr(app.state, "ws_connection_cap", None)
    if cap is None:
        settings = app.state.settings
        cap = app.state.ws_connection_cap = ConnectionCap(
            app.state.redis,
            settings.redis_key_prefix,
            cap=settings.ws_max_connections_per_principal,
            renew_seconds=settings.ws_ping_interval_seconds,
        )
    return cap


async def handshake_allowed(connection: HTTPConnection) -> bool:
    settings = connection.app.state.settings
    wait_ms = await get_backend(connection).hit(
        "ws-ip", client_ip(connection), settings.rate_limit_ws_handshake
    )
    return wait_ms == 0
