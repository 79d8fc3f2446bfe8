"""Access-token revocation in Redis: a denylist of `jti`s, each kept until the
token would have expired anyway.

Redis is a cache in front of PostgreSQL here: when it cannot answer, the
token is checked against the database instead (its session, the refresh
family its `sid` names, revoked there at logout; `users.tokens_valid_after`),
never refused with a 401 that would make clients throw valid sessions away.
Writing a revocation needs Redis: logout answers 503 (retry) while it is down.
"""

from __future__ import annotations

import time

from redis.asyncio import Redis
from redis.exceptions import RedisError


class RevocationUnavailable(Exception):
    """Redis could not say whether the token is revoked."""


def revocation_key(prefix: str, token_id: str) -> str:
    return f"{prefix}:revoked-jti:{token_id}"


async def revoke_token(redis: Redis, prefix: str, token_id: str, expires_at: int) -> None:
    ttl = max(1, expires_at - int(time.time()) + 5)
    await redis.set(revocation_key(prefix, token_id), "1", ex=ttl)


async def is_token_revoked(redis: Redis, prefix: str, token_id: str) -> bool:
    try:
        return bool(await redis.exists(revocation_key(prefix, token_id)))
    except (RedisError, OSError) as exc:
        raise RevocationUnavailable from exc
