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

# The same count, after a denylist check, for bearer tokens: one round trip
# for both. KEYS[1] is the token's denylist key, KEYS[2] the bucket; -1 means
# revoked (and the call is not counted: a revoked token cannot drain its
# user's bucket).
REVOCABLE_SCRIPT: str = (
    "if redis.call('EXISTS', KEYS[1]) == 1 then return -1 end\n"
    + SCRIPT.replace("KEYS[1]", "KEYS[2]")
)

# The same count, plus `SET KEYS[1] 1 NX EX ARGV[3]` (an API key's
# once-a-minute "last used" marker): {1 if the marker was set, wait ms}.
MARKING_SCRIPT: str = (
    "local first = redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[3])\n"
    "local function count()\n" + SCRIPT.replace("KEYS[1]", "KEYS[2]") + "\nend\n"
    "return {first and 1 or 0, count()}"
)

# After a Redis failure, checks are skipped (allowed) for this long rather
# than each request paying a connection timeout.
FAILURE_BACKOFF_SECONDS = 5.0


class RateLimitBackend:
    """The limiter of one app: its Redis client, key prefix and script SHA."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = f"{prefix}:ratelimit"
        self._sha: str | None = None
        self._revocable_sha: str | None = None
        self._marking_sha: str | None = None
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

    @property
    def paused(self) -> bool:
        """Checks are skipped for a while after a Redis failure."""
        return time.monotonic() < self._skip_until

    def _failed(self, exc: BaseException, bucket: str) -> None:
        self._skip_until = time.monotonic() + FAILURE_BACKOFF_SECONDS
        RATE_LIMITER_FAILURES.inc()
        logger.warning(
            "rate limiter unavailable; allowing requests",
            extra={"error": type(exc).__name__, "bucket": bucket},
        )

    async def hit_unless_revoked(
        self, denylist_key: str, bucket: str, identifier: str, limit: RateLimit
    ) -> int | None:
        """`hit`, after checking that `denylist_key` does not exist, in one
        round trip: None when it exists (revoked), else what `hit` returns.
        Redis errors propagate: the caller fails closed on the denylist (the
        failure is also counted as the limiter's)."""
        keys_and_args = (
            2,
            denylist_key,
            self.key(bucket, identifier),
            str(limit.count),
            str(limit.seconds * 1000),
        )
        try:
            try:
                sha = self._revocable_sha or await self._load_revocable()
                result = await self.redis.evalsha(sha, *keys_and_args)
            except NoScriptError:
                result = await self.redis.evalsha(await self._load_revocable(), *keys_and_args)
        except (RedisError, OSError) as exc:
            self._failed(exc, bucket)
            raise
        wait = int(result)
        return None if wait < 0 else wait

    async def hit_and_mark(
        self, marker_key: str, marker_seconds: int, bucket: str, identifier: str, limit: RateLimit
    ) -> tuple[bool, int]:
        """`hit`, and `SET marker_key NX EX marker_seconds` in the same round
        trip: (whether the marker was set by this call, what `hit` returns).
        Fails open like `hit` (and the marker counts as not set)."""
        if self.paused:
            RATE_LIMITER_FAILURES.inc()
            return False, 0
        keys_and_args = (
            2,
            marker_key,
            self.key(bucket, identifier),
            str(limit.count),
            str(limit.seconds * 1000),
            str(marker_seconds),
        )
        try:
            try:
                sha = self._marking_sha or await self._load_marking()
                first, wait = await self.redis.evalsha(sha, *keys_and_args)
            except NoScriptError:
                first, wait = await self.redis.evalsha(await self._load_marking(), *keys_and_args)
        except (RedisError, OSError) as exc:
            self._failed(exc, bucket)
            return False, 0
        return bool(first), int(wait)

    async def _load_marking(self) -> str:
        sha: str = await self.redis.script_load(MARKING_SCRIPT)
        self._marking_sha = sha
        return sha

    async def _load_revocable(self) -> str:
        sha: str = await self.redis.script_load(REVOCABLE_SCRIPT)
        self._revocable_sha = sha
        return sha

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
            self._failed(exc, bucket)
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
        raise RateLimited(retry_after=retry_after_seconds(wait_ms))


def retry_after_seconds(wait_ms: int) -> int:
    return max(1, math.ceil(wait_ms / 1000))
