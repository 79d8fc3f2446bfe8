"""Run a mesh parser in a child process with memory and CPU limits, so a
hostile or huge file fails its job, never the worker.

The child is spawned (no fork of a threaded, event-looped worker), sets
`RLIMIT_AS` (its address space may grow by `memory_bytes` beyond what the
interpreter had when it started) and `RLIMIT_CPU`, imports the function by
its dotted name and sends back the result, or the error's message. A child
killed by a limit is reported as such.
"""

from __future__ import annotations

import asyncio
import importlib
import multiprocessing
import resource
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import Any


class SandboxError(Exception):
    """The child failed: `message` is safe to show; `kind` is the exception
    type's name (`MeshError`, `MemoryError`, `killed`, ...)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True, slots=True)
class Limits:
    memory_bytes: int
    cpu_seconds: int


def _address_space() -> int:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[0])
    return pages * resource.getpagesize()


def _child(connection: Connection, target: str, args: tuple[Any, ...], limits: Limits) -> None:
    try:
        module_name, _, function_name = target.partition(":")
        function = getattr(importlib.import_module(module_name), function_name)
        ceiling = _address_space() + limits.memory_bytes
        resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))
        resource.setrlimit(resource.RLIMIT_CPU, (limits.cpu_seconds, limits.cpu_seconds + 5))
        result = function(*args)
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
        connection.send(("ok", result, peak))
    except MemoryError:
        connection.send(("error", "MemoryError", "The mesh needs more memory than allowed"))
    except BaseException as error:  # reported to the parent, which raises it
        connection.send(("error", type(error).__name__, str(error) or type(error).__name__))
    finally:
        connection.close()


@dataclass(frozen=True, slots=True)
class Outcome:
    result: Any
    peak_rss_bytes: int


def run_sync(target: str, *args: Any, limits: Limits, timeout: float | None = None) -> Outcome:
    """Run `module:function(*args)` in a limited child; blocks until it ends."""
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(sender, target, args, limits), daemon=True)
    process.start()
    sender.close()
    try:
        if not receiver.poll(timeout):
            process.kill()
            raise SandboxError("timeout", "The mesh took too long to process")
        try:
            message = receiver.recv()
        except EOFError:
            process.join(5)
            raise SandboxError(
                "killed",
                f"The mesh processor was stopped (exit {process.exitcode}): "
                "the file needs more memory or time than allowed",
            ) from None
    finally:
        receiver.close()
        if process.is_alive():
            process.join(5)
        if process.is_alive():
            process.kill()
            process.join()
    if message[0] == "ok":
        return Outcome(message[1], int(message[2]))
    raise SandboxError(message[1], message[2])


async def run(target: str, *args: Any, limits: Limits, deadline: float | None = None) -> Outcome:
    """`run_sync` off the event loop (`deadline`: seconds before the child is killed)."""
    return await asyncio.to_thread(run_sync, target, *args, limits=limits, timeout=deadline)
