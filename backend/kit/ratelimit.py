"""Rate limits on Redis, with fastapi-limiter 0.1.6's fixed-window algorithm.

fastapi-limiter 0.1.6 counts calls in one Redis key per identifier with a
Lua script (`FastAPILimiter.lua_script`): the first call of a window `SET`s
the key with a `PX` expiry, later calls `INCR` it, and a call over the limit
gets the key's `PTTL` back — the milliseconds until the window ends, which
becomes `Retry-After`. Every key therefore expires by itself.

We run that script (by SHA, reloading it on `NOSCRIPT`, exactly as the
library's `RateLimiter._check` does) through a backend object kept on
`app.state`, not through the library's process-global `FastAPILimiter`:

* `FastAPILimiter.init` loads the script eagerly, so the app could not start
  while Redis is down; here the script loads lazily at the first check;
* the library's class attributes hold one Redis client and key prefix per
  process, which two apps in one process (tests) would overwrite;
* its default identifier trusts a client-sent `X-Forwarded-For`; ours is the
  address `RequestContextMiddleware` derived, honouring `TRUSTED_PROXIES`;
* its `RateLimiter` raises a bare `HTTPException` when Redis fails; ours
  fails open (logged, counted in `dossier_rate_limiter_failures_total`).

Buckets are keyed `<prefix>:ratelimit:<bucket>:<identifier>`: one bucket per
identifier (principal or client IP) for the whole API, plus dedicated buckets
(`login-ip`, `login-user`, …) for the tight limits of sensitive routes.
"""

from __future__ import annotations

import hashlib
import logging
import math
import time

from fastapi_limiter import FastAPILimiter
from redis.asyncio import Redis
from redis.exceptions import NoScriptError, RedisError
from starlette.requests import HTTPConnection

from backend.kit.errors import RateLimited
from backend.kit.metrics import RATE_LIMITER_FAILURES
from backend.kit.request_context import ClientInfo
from backend.settings import RateLimit

logger = logging.getLogger("dossier.ratelimit")

SCRIPT: str = FastAPILimiter.lua_script

# After a Redis failure, checks are skipped (allowed) for this long rather
# than each request paying a connection timeout.
FAILURE_BACKOFF_SECONDS = 5.0


class RateLimitBackend:
    """The limiter of one app: its Redis client, key prefix and script SHA."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = f"{prefix}:ratelimit"
        self._sha: str | None = None
        self._skip_until = 0.0

    def key(self, bucket: str, identifier: str) -> str:
        return f"{self.prefix}:{bucket}:{identifier}"

    async def _load(self) -> str:
        sha: str = await self.redis.script_load(SCRIPT)
        self._sha = sha
        return sha

    async def _evaluate(self, key: str, limit: RateLimit) -> int:
        args = (str(limit.count), str(limit.seconds * 1000))
        sha = self._sha or await self._load()
        try:
            result = await self.redis.evalsha(sha, 1, key, *args)
        except NoScriptError:  # Redis restarted or flushed its script cache
            result = await self.redis.evalsha(await self._load(), 1, key, *args)
        return int(result)

    async def hit(self, bucket: str, identifier: str, limit: RateLimit) -> int:
        """Count one call; the milliseconds to wait when over the limit, else 0.

        Fails open: when Redis cannot answer, the call is allowed, the failure
        is logged and counted, and checks pause for a few seconds.
        """
        if time.monotonic() < self._skip_until:
            RATE_LIMITER_FAILURES.inc()
            return 0
        try:
            return await self._evaluate(self.key(bucket, identifier), limit)
        except (RedisError, OSError) as exc:
            self._skip_until = time.monotonic() + FAILURE_BACKOFF_SECONDS
            RATE_LIMITER_FAILURES.inc()
            logger.warning(
                "rate limiter unavailable; allowing requests",
                extra={"error": type(exc).__name__, "bucket": bucket},
            )
            return 0

    async def check(self) -> None:
        """For `/ready`: Redis answers and the script is loaded."""
        await self.redis.ping()
        if self._sha is None or not (await self.redis.script_exists(self._sha))[0]:
            await self._load()
        self._skip_until = 0.0


def get_backend(connection: HTTPConnection) -> RateLimitBackend:
    backend: RateLimitBackend = connection.app.state.rate_limiter
    return backend


def client_ip(connection: HTTPConnection) -> str:
    """The address `RequestContextMiddleware` derived (X-Forwarded-For only
    from `TRUSTED_PROXIES`); never a header read here."""
    client = connection.scope.get("state", {}).get("client")
    if isinstance(client, ClientInfo) and client.ip:
        return client.ip
    return connection.client.host if connection.client else "unknown"


def hashed(value: str) -> str:
    """Identifiers such as emails are hashed so no address sits in Redis."""
    return hashlib.sha256(value.strip().lower().encode()).hexdigest()[:32]


async def enforce(
    connection: HTTPConnection, bucket: str, identifier: str, limit: RateLimit
) -> None:
    """Count the call in `bucket` for `identifier`; 429 with `Retry-After` when over."""
    wait_ms = await get_backend(connection).hit(bucket, identifier, limit)
    if wait_ms > 0:
        raise RateLimited(retry_after=max(1, math.ceil(wait_ms / 1000)))
