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
from dataclasses import dataclass
from typing import Any

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


def _counted(bucket_key: str) -> str:
    """The fixed-window count as a Lua function `count()` on `bucket_key`."""
    return "local function count()\n" + SCRIPT.replace("KEYS[1]", bucket_key) + "\nend\n"


# A version key (KEYS[2]) that callers compare with the value they expect
# (ARGV[3]): a cache in the app is still good while the version it was filled
# at is current. Created on first read from the server's clock, so that a
# Redis that lost its data never hands back a value some cache was filled at.
_VERSION = (
    "local version = redis.call('GET', KEYS[2])\n"
    "if not version then\n"
    "  local now = redis.call('TIME')\n"
    "  version = now[1] .. '.' .. now[2]\n"
    "  redis.call('SET', KEYS[2], version)\n"
    "end\n"
)

# For bearer tokens, one round trip: the denylist (KEYS[1]), the version, and
# the count (KEYS[3]) — counted only when the version is the expected one.
# {-1, ''}: revoked (never counted: a revoked token cannot drain its user's
# bucket); {-2, version}: another version, not counted; else {wait ms, version}.
REVOCABLE_SCRIPT: str = (
    "if redis.call('EXISTS', KEYS[1]) == 1 then return {-1, ''} end\n"
    + _VERSION
    + "if version ~= ARGV[3] then return {-2, version} end\n"
    + _counted("KEYS[3]")
    + "return {count(), version}"
)

# For API keys: the count (KEYS[2]) plus `SET KEYS[1] 1 NX EX ARGV[3]` (the
# key's once-a-minute "last used" marker): {1 if the marker was set, wait ms}.
MARKING_SCRIPT: str = (
    _counted("KEYS[2]")
    + "local first = redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[3])\n"
    + "return {first and 1 or 0, count()}"
)

# The same, only when the version (KEYS[2]) is the expected one (ARGV[3]);
# the bucket is KEYS[3] and the marker's seconds ARGV[4]. {0, -2, version}:
# another version, nothing counted or marked; else {marked, wait ms, version}.
VERSIONED_MARKING_SCRIPT: str = (
    _VERSION
    + "if version ~= ARGV[3] then return {0, -2, version} end\n"
    + _counted("KEYS[3]")
    + "local first = redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[4])\n"
    + "return {first and 1 or 0, count(), version}"
)


@dataclass(frozen=True, slots=True)
class VersionedHit:
    """What a versioned check found: the version key's value, and whether it
    was the expected one — only then was the call counted (and marked)."""

    version: str
    current: bool
    wait_ms: int = 0
    first_use: bool = False


# After a Redis failure, checks are skipped (allowed) for this long rather
# than each request paying a connection timeout.
FAILURE_BACKOFF_SECONDS = 5.0


class RateLimitBackend:
    """The limiter of one app: its Redis client, key prefix and script SHA."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self.redis = redis
        self.prefix = f"{prefix}:ratelimit"
        self._shas: dict[str, str] = {}
        self._skip_until = 0.0

    def key(self, bucket: str, identifier: str) -> str:
        return f"{self.prefix}:{bucket}:{identifier}"

    def _bucket(self, bucket: str, identifier: str, limit: RateLimit) -> tuple[str, str, str]:
        """The count's last key and first two arguments, as every script
        takes them: the bucket key, the limit and the window in ms."""
        return self.key(bucket, identifier), str(limit.count), str(limit.seconds * 1000)

    async def _load(self, script: str = SCRIPT) -> str:
        sha: str = await self.redis.script_load(script)
        self._shas[script] = sha
        return sha

    async def _run(self, script: str, *keys_and_args: Any) -> Any:
        """EVALSHA, loading the script first or again (Redis restarted or
        flushed its script cache), as the library's `RateLimiter` does."""
        try:
            return await self.redis.evalsha(
                self._shas.get(script) or await self._load(script), *keys_and_args
            )
        except NoScriptError:
            return await self.redis.evalsha(await self._load(script), *keys_and_args)

    async def _run_counted(self, bucket: str, script: str, *keys_and_args: Any) -> Any:
        """`_run`; a Redis failure is counted as the limiter's and raised."""
        try:
            return await self._run(script, *keys_and_args)
        except (RedisError, OSError) as exc:
            self._failed(exc, bucket)
            raise

    async def _run_fail_open(self, bucket: str, script: str, *keys_and_args: Any) -> Any | None:
        """`_run`, or None — the call is let through — while checks are paused
        or when Redis fails (counted, logged, and checks pause)."""
        if self.paused:
            RATE_LIMITER_FAILURES.inc()
            return None
        try:
            return await self._run_counted(bucket, script, *keys_and_args)
        except (RedisError, OSError):
            return None

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
        self,
        denylist_key: str,
        version_key: str,
        expected: str | None,
        bucket: str,
        identifier: str,
        limit: RateLimit,
    ) -> VersionedHit | None:
        """In one round trip: None when `denylist_key` exists (revoked); else
        the value of `version_key`, and when it equals `expected`, `hit`'s
        count too. Redis errors propagate: the caller fails closed on the
        denylist (the failure is also counted as the limiter's)."""
        revoked_or_wait, version = await self._run_counted(
            bucket,
            REVOCABLE_SCRIPT,
            3,
            denylist_key,
            version_key,
            *self._bucket(bucket, identifier, limit),
            expected or "",
        )
        if int(revoked_or_wait) == -1:
            return None
        return _versioned(version, expected, wait=revoked_or_wait)

    async def hit_and_mark_if_current(
        self,
        marker_key: str,
        marker_seconds: int,
        version_key: str,
        expected: str | None,
        bucket: str,
        identifier: str,
        limit: RateLimit,
    ) -> VersionedHit:
        """`hit_and_mark`, only when `version_key` holds `expected`, in one
        round trip. Redis errors propagate (counted as the limiter's), so that
        the caller can do without what the version vouches for."""
        first, wait, version = await self._run_counted(
            bucket,
            VERSIONED_MARKING_SCRIPT,
            3,
            marker_key,
            version_key,
            *self._bucket(bucket, identifier, limit),
            expected or "",
            str(marker_seconds),
        )
        return _versioned(version, expected, wait=wait, first_use=bool(first))

    async def hit_and_mark(
        self, marker_key: str, marker_seconds: int, bucket: str, identifier: str, limit: RateLimit
    ) -> tuple[bool, int]:
        """`hit`, and `SET marker_key NX EX marker_seconds` in the same round
        trip: (whether the marker was set by this call, what `hit` returns).
        Fails open like `hit` (and the marker counts as not set)."""
        result = await self._run_fail_open(
            bucket,
            MARKING_SCRIPT,
            2,
            marker_key,
            *self._bucket(bucket, identifier, limit),
            str(marker_seconds),
        )
        if result is None:
            return False, 0
        first, wait = result
        return bool(first), int(wait)

    async def hit(self, bucket: str, identifier: str, limit: RateLimit) -> int:
        """Count one call; the milliseconds to wait when over the limit, else 0.

        Fails open: when Redis cannot answer, the call is allowed, the failure
        is logged and counted, and checks pause for a few seconds.
        """
        wait = await self._run_fail_open(
            bucket,
            SCRIPT,
            1,
            *self._bucket(bucket, identifier, limit),
        )
        return int(wait or 0)

    async def check(self) -> None:
        """For `/ready`: Redis answers and the script is loaded."""
        await self.redis.ping()
        sha = self._shas.get(SCRIPT)
        if sha is None or not (await self.redis.script_exists(sha))[0]:
            await self._load()
        self._skip_until = 0.0


def _versioned(
    version: bytes | str, expected: str | None, *, wait: int, first_use: bool = False
) -> VersionedHit:
    value = version.decode() if isinstance(version, bytes) else str(version)
    if value != expected:
        return VersionedHit(version=value, current=False)
    return VersionedHit(version=value, current=True, wait_ms=int(wait), first_use=first_use)


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
