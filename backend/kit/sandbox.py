"""Run a function in a child process with memory and CPU-time limits.

Parsers of untrusted files (PDF, DOCX, images, archives) run here, so that a
file that makes its parser crash, allocate without bound or spin fails the
call that parsed it, never the worker: the child sets `resource.setrlimit`
(address space `RLIMIT_AS`, CPU time `RLIMIT_CPU`) on itself before it calls
the function, and the parent kills it past a wall-clock limit or when the
awaiting task is cancelled (a job's deadline, a cancel).

    text = await run_sandboxed(pdf_text, path, limits=Limits(memory_bytes=...))

The function and its arguments and result must be picklable (a module-level
function). Children are forked from a `forkserver`, which holds no threads
and no connections of the parent. Errors are `SandboxError`s saying what
happened: `SandboxLimitExceeded` (memory, CPU time or wall clock),
`SandboxCrashed` (the child died, e.g. on a signal), `SandboxFailed` (the
function raised; its type and message are kept).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import resource
import signal
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any, TypeVar

from backend.settings import Settings

T = TypeVar("T")

_CONTEXT = multiprocessing.get_context("forkserver")


@dataclass(frozen=True, slots=True)
class Limits:
    memory_bytes: int = 1024 * 1024 * 1024
    cpu_seconds: int = 120
    wall_seconds: float = 300.0


def parser_limits(settings: Settings) -> Limits:
    """The limits of parsers of untrusted files (`PARSER_MEMORY_BYTES`,
    `PARSER_CPU_SECONDS`; the wall clock allows for a busy machine)."""
    return Limits(
        memory_bytes=settings.parser_memory_bytes,
        cpu_seconds=settings.parser_cpu_seconds,
        wall_seconds=settings.parser_cpu_seconds * 2 + 10,
    )


class SandboxError(Exception):
    """The sandboxed call did not return a result."""


class SandboxLimitExceeded(SandboxError):
    pass


class SandboxCrashed(SandboxError):
    pass


class SandboxFailed(SandboxError):
    def __init__(self, kind: str, message: str) -> None:
        super().__init__(f"{kind}: {message}" if message else kind)
        self.kind = kind


def _child(
    connection: Connection, function: Callable[..., Any], args: tuple[Any, ...], limits: Limits
) -> None:
    resource.setrlimit(resource.RLIMIT_AS, (limits.memory_bytes, limits.memory_bytes))
    resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 1))
    try:
        result = function(*args)
    except MemoryError:
        connection.send(("memory", ""))
        return
    except BaseException as exc:  # every failure is reported to the parent
        connection.send(("error", (type(exc).__name__, str(exc)[:2000])))
        return
    connection.send(("ok", result))


async def _readable(connection: Connection) -> None:
    loop = asyncio.get_running_loop()
    ready: asyncio.Future[None] = loop.create_future()

    def wake() -> None:
        if not ready.done():
            ready.set_result(None)

    loop.add_reader(connection.fileno(), wake)
    try:
        await ready
    finally:
        loop.remove_reader(connection.fileno())


async def run_sandboxed(function: Callable[..., T], *args: Any, limits: Limits) -> T:
    """`function(*args)` in a limited child process; its result, or a
    `SandboxError`. The child never outlives the call."""
    receiver, sender = _CONTEXT.Pipe(duplex=False)
    process = _CONTEXT.Process(target=_child, args=(sender, function, args, limits), daemon=True)
    process.start()
    sender.close()  # the child's end: EOF here once the child is gone
    try:
        try:
            async with asyncio.timeout(limits.wall_seconds):
                await _readable(receiver)
        except TimeoutError:
            raise SandboxLimitExceeded(
                f"no result within the wall-clock limit of {limits.wall_seconds:g} s"
            ) from None
        try:
            status, payload = receiver.recv()
        except (EOFError, OSError):
            process.join(5)
            raise _death(process.exitcode, limits) from None
    finally:
        receiver.close()
        if process.is_alive():
            process.kill()
        await asyncio.to_thread(process.join, 5)
        process.close()
    if status == "ok":
        result: T = payload
        return result
    if status == "memory":
        raise SandboxLimitExceeded(f"out of memory (limit {limits.memory_bytes} bytes)")
    kind, message = payload
    raise SandboxFailed(kind, message)


def _death(exitcode: int | None, limits: Limits) -> SandboxError:
    if exitcode is not None and exitcode < 0:
        number = -exitcode
        if number == signal.SIGXCPU or number == signal.SIGKILL:
            return SandboxLimitExceeded(
                f"killed by {signal.Signals(number).name} (CPU limit {limits.cpu_seconds} s)"
            )
        return SandboxCrashed(f"the parser crashed ({signal.Signals(number).name})")
    return SandboxCrashed(f"the parser exited without a result (exit code {exitcode})")
