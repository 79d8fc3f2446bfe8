"""Password hashing with argon2id through passlib, off the event loop.

Argon2 is deliberately slow (tens of milliseconds and ~19 MiB per hash), so
every hash and verification runs in a worker thread, at most
`PASSWORD_HASH_CONCURRENCY` at once (default: one per CPU the process may
use). A login storm then queues for those threads instead of running dozens
of hashes side by side, each as hungry for the CPU as the event loop, which
would starve every other request.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable
from functools import lru_cache
from typing import TypeVar
from weakref import WeakKeyDictionary

import anyio
from passlib.context import CryptContext

from backend.settings import Settings

T = TypeVar("T")

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256


@lru_cache
def _context(memory_kib: int, time_cost: int, parallelism: int) -> CryptContext:
    return CryptContext(
        schemes=["argon2"],
        argon2__type="ID",
        argon2__memory_cost=memory_kib,
        argon2__time_cost=time_cost,
        argon2__parallelism=parallelism,
    )


def context_for(settings: Settings) -> CryptContext:
    return _context(
        settings.password_hash_memory_kib,
        settings.password_hash_time_cost,
        settings.password_hash_parallelism,
    )


# A hash of a random password, verified against when the email is unknown, so
# that "no such user" costs the same time as "wrong password".
_DUMMY_PASSWORD = "dossier-timing-equaliser-7f3a"  # noqa: S105 - not a credential


_limiters: WeakKeyDictionary[asyncio.AbstractEventLoop, anyio.CapacityLimiter] = WeakKeyDictionary()


def _limiter(settings: Settings) -> anyio.CapacityLimiter:
    """One per event loop (a limiter belongs to the loop it was made in)."""
    loop = asyncio.get_running_loop()
    limiter = _limiters.get(loop)
    if limiter is None:
        total = settings.password_hash_concurrency or len(os.sched_getaffinity(0))
        limiter = _limiters[loop] = anyio.CapacityLimiter(total)
    return limiter


async def _off_loop(settings: Settings, function: Callable[..., T], *args: str) -> T:
    return await anyio.to_thread.run_sync(function, *args, limiter=_limiter(settings))


async def hash_password(settings: Settings, password: str) -> str:
    return await _off_loop(settings, context_for(settings).hash, password)


async def verify_password(settings: Settings, password: str, password_hash: str | None) -> bool:
    """Always pays one verification, even when there is no hash to check."""
    context = context_for(settings)
    if password_hash is None:
        dummy = await _dummy_hash(settings)
        await _off_loop(settings, context.verify, password, dummy)
        return False
    try:
        return bool(await _off_loop(settings, context.verify, password, password_hash))
    except ValueError:
        return False


_dummy_hashes: dict[tuple[int, int, int], str] = {}


async def _dummy_hash(settings: Settings) -> str:
    key = (
        settings.password_hash_memory_kib,
        settings.password_hash_time_cost,
        settings.password_hash_parallelism,
    )
    if key not in _dummy_hashes:
        _dummy_hashes[key] = await hash_password(settings, _DUMMY_PASSWORD)
    return _dummy_hashes[key]


def password_problems(password: str, email: str | None) -> str | None:
    """Why a new password is refused, or None when it is acceptable."""
    if len(password) < MIN_PASSWORD_LENGTH:
        return f"must be at least {MIN_PASSWORD_LENGTH} characters"
    if len(password) > MAX_PASSWORD_LENGTH:
        return f"must be at most {MAX_PASSWORD_LENGTH} characters"
    if email and password.strip().lower() == email.strip().lower():
        return "must differ from the email"
    return None
