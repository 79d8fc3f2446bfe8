"""kit/sandbox: a function runs in a child with memory and CPU-time limits;
blow-ups, crashes and hangs fail the call with a clear error, the parent
(the worker) stays up."""

from __future__ import annotations

import asyncio
import os
import signal
import time

import pytest

from backend.kit.sandbox import (
    Limits,
    SandboxCrashed,
    SandboxFailed,
    SandboxLimitExceeded,
    run_sandboxed,
)

SMALL = Limits(memory_bytes=256 * 1024 * 1024, cpu_seconds=2, wall_seconds=20)


def add(a: int, b: int) -> int:
    return a + b


def allocate(megabytes: int) -> int:
    blocks = [bytearray(1024 * 1024) for _ in range(megabytes)]
    return len(blocks)


def spin() -> None:
    while True:
        pass


def crash() -> None:
    os.kill(os.getpid(), signal.SIGSEGV)


def refuse() -> None:
    raise ValueError("not a PDF")


def hang() -> None:
    time.sleep(60)


async def test_a_result_comes_back() -> None:
    assert await run_sandboxed(add, 2, 3, limits=SMALL) == 5


async def test_memory_blow_up_fails_the_call_only() -> None:
    with pytest.raises(SandboxLimitExceeded, match="memory"):
        await run_sandboxed(allocate, 1024, limits=SMALL)
    assert await run_sandboxed(allocate, 8, limits=SMALL) == 8


async def test_cpu_limit_kills_a_spinning_parser() -> None:
    started = time.monotonic()
    with pytest.raises(SandboxLimitExceeded, match="CPU"):
        await run_sandboxed(spin, limits=Limits(cpu_seconds=1, wall_seconds=30))
    assert time.monotonic() - started < 15


async def test_a_crash_and_an_exception_are_told_apart() -> None:
    with pytest.raises(SandboxCrashed, match="SIGSEGV"):
        await run_sandboxed(crash, limits=SMALL)
    with pytest.raises(SandboxFailed, match="ValueError: not a PDF"):
        await run_sandboxed(refuse, limits=SMALL)


async def test_wall_clock_and_cancellation_kill_the_child() -> None:
    with pytest.raises(SandboxLimitExceeded, match="wall-clock"):
        await run_sandboxed(hang, limits=Limits(wall_seconds=0.5))
    task = asyncio.create_task(run_sandboxed(hang, limits=SMALL))
    await asyncio.sleep(0.5)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
