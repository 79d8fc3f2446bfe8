"""Login throttling that cannot be turned into a lockout.

Failures are counted, not attempts, in two fixed windows (Redis keys with an
expiry), keyed by the username hashed:

* per (username, client IP), at `RATE_LIMIT_LOGIN`: an address that keeps
  failing for an account is refused (429) for the rest of the window;
* per username over all addresses, at the higher `RATE_LIMIT_LOGIN_USERNAME`:
  past it, only addresses that have already failed for the account are
  refused, so a distributed guesser is slowed to one guess per address and
  window, while the owner, from an address that has not failed, still gets
  in with the right password.

Ten junk logins a minute for the owner's email therefore never keep the
owner out. The per-IP attempt limit (`login_rate_limit`) still bounds what
one address can try across usernames. Like every limit, these fail open when
Redis is down (logged and counted by the limiter).
"""

from __future__ import annotations

from redis.exceptions import RedisError
from starlette.requests import HTTPConnection

from backend.kit.errors import RateLimited
from backend.kit.ratelimit import RateLimitBackend, get_backend, hashed, retry_after_seconds
from backend.settings import Settings

# One failure in a fixed window: the key is created with its expiry, then counted.
_RECORD = """
redis.call('SET', KEYS[1], 0, 'NX', 'PX', tonumber(ARGV[1]))
return redis.call('INCR', KEYS[1])
"""


class LoginThrottle:
    def __init__(self, limiter: RateLimitBackend, settings: Settings) -> None:
        self.limiter = limiter
        self.per_address = settings.rate_limit_login
        self.per_username = settings.rate_limit_login_username

    def _keys(self, username: str, ip: str) -> tuple[str, str]:
        user = hashed(username)
        return (
            self.limiter.key("login-fail", f"{user}:{ip}"),
            self.limiter.key("login-fail-user", user),
        )

    async def check(self, username: str, ip: str) -> None:
        """429 for an address that failed too often for this account, or that
        failed at all while the account is under a distributed attack."""
        if self.limiter.paused:
            return
        address_key, user_key = self._keys(username, ip)
        redis = self.limiter.redis
        try:
            async with redis.pipeline(transaction=False) as pipe:
                pipe.get(address_key)
                pipe.pttl(address_key)
                pipe.get(user_key)
                pipe.pttl(user_key)
                address, address_ttl, user, user_ttl = await pipe.execute()
        except (RedisError, OSError):
            return
        address_failures, user_failures = int(address or 0), int(user or 0)
        if address_failures >= self.per_address.count:
            raise RateLimited(retry_after=retry_after_seconds(max(int(address_ttl), 1)))
        if address_failures > 0 and user_failures >= self.per_username.count:
            raise RateLimited(retry_after=retry_after_seconds(max(int(user_ttl), 1)))

    async def failed(self, username: str, ip: str) -> None:
        address_key, user_key = self._keys(username, ip)
        redis = self.limiter.redis
        try:
            await redis.eval(_RECORD, 1, address_key, str(self.per_address.seconds * 1000))
            await redis.eval(_RECORD, 1, user_key, str(self.per_username.seconds * 1000))
        except (RedisError, OSError):
            return


def login_throttle(connection: HTTPConnection) -> LoginThrottle:
    return LoginThrottle(get_backend(connection), connection.app.state.settings)
