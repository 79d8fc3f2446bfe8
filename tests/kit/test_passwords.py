"""Password hashes run off the event loop, a bounded number at once."""

from __future__ import annotations

import asyncio
import threading
import time

from backend.kit.security import passwords
from backend.kit.security.passwords import hash_password, verify_password
from backend.settings import Settings


async def test_hash_and_verify(settings: Settings) -> None:
    stored = await hash_password(settings, "correct horse battery")
    assert stored.startswith("$argon2id$")
    assert await verify_password(settings, "correct horse battery", stored)
    assert not await verify_password(settings, "wrong horse battery", stored)
    assert not await verify_password(settings, "anything at all", None)


async def test_at_most_the_configured_number_of_hashes_run_at_once(settings: Settings) -> None:
    bounded = settings.model_copy(update={"password_hash_concurrency": 2})
    passwords._limiters.clear()
    lock = threading.Lock()
    running = peak = 0

    def work(_: str) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1

    try:
        await asyncio.gather(*(passwords._off_loop(bounded, work, "x") for _ in range(8)))
    finally:
        passwords._limiters.clear()
    assert peak == 2
