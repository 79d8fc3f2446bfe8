"""Run a mesh parser in a child process with memory and CPU limits, so a
hostile or huge file fails its job, never the worker.

The child is a fresh interpreter (`python -m backend.scans.sandbox`: no fork
of a threaded, event-looped worker, and nothing depends on how the parent
was started). It reads its call as JSON on stdin, sets `RLIMIT_AS` (its
address space may grow by `memory_bytes` beyond what it had after importing
the function) and `RLIMIT_CPU`, runs the function and answers JSON on stdout
— never pickle, so a child subverted by a crafted file cannot run code in
the worker. A child killed by a limit or a deadline is reported as such.
"""

from __future__ import annotations

import asyncio
import importlib
import json
import os
import resource
import subprocess
import sys
from dataclasses import dataclass
from typing import Any


class SandboxError(Exception):
    """The child failed: `message` is safe to show; `kind` is the exception
    type's name (`MeshError`, `MemoryError`, `killed`, `timeout`, ...)."""

    def __init__(self, kind: str, message: str) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message


@dataclass(frozen=True, slots=True)
class Limits:
    memory_bytes: int
    cpu_seconds: int


@dataclass(frozen=True, slots=True)
class Outcome:
    result: Any
    peak_rss_bytes: int


# One BLAS thread; large arrays always mmapped, so freed memory goes back at once.
_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "MALLOC_MMAP_THRESHOLD_": "65536",
    "MALLOC_TRIM_THRESHOLD_": "0",
}


def _address_space() -> int:
    with open("/proc/self/statm") as handle:
        pages = int(handle.read().split()[0])
    return pages * resource.getpagesize()


def peak_rss() -> int:
    """This process's peak resident memory (`VmHWM`: of its own image, unlike
    `ru_maxrss`, which can carry the parent's peak across fork and exec)."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return 0


def _answer(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message))
    sys.stdout.flush()


def child_main() -> None:
    """The child's side: one call from stdin, one answer on stdout."""
    call = json.loads(sys.stdin.read())
    try:
        module_name, _, function_name = call["target"].partition(":")
        function = getattr(importlib.import_module(module_name), function_name)
        ceiling = _address_space() + int(call["memory_bytes"])
        resource.setrlimit(resource.RLIMIT_AS, (ceiling, ceiling))
        cpu = int(call["cpu_seconds"])
        resource.setrlimit(resource.RLIMIT_CPU, (cpu, cpu + 5))
        result = function(*call["args"])
        _answer({"ok": True, "result": result, "peak": peak_rss()})
    except MemoryError:
        _answer(
            {
                "ok": False,
                "kind": "MemoryError",
                "message": "The mesh needs more memory than allowed",
            }
        )
    except Exception as error:  # reported to the parent, which raises it
        _answer(
            {
                "ok": False,
                "kind": type(error).__name__,
                "message": str(error) or type(error).__name__,
            }
        )


def run_sync(target: str, *args: Any, limits: Limits, timeout: float | None = None) -> Outcome:
    """Run `module:function(*args)` (JSON in, JSON out) in a limited child;
    blocks until it ends."""
    call = json.dumps(
        {
            "target": target,
            "args": list(args),
            "memory_bytes": limits.memory_bytes,
            "cpu_seconds": limits.cpu_seconds,
        }
    )
    process = subprocess.Popen(
        [sys.executable, "-m", "backend.scans.sandbox"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env={**os.environ, **_ENV},
    )
    try:
        output, _ = process.communicate(call.encode(), timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.communicate()
        raise SandboxError("timeout", "The mesh took too long to process") from None
    try:
        message = json.loads(output)
    except ValueError:
        raise SandboxError(
            "killed",
            f"The mesh processor was stopped (exit {process.returncode}): "
            "the file needs more memory or time than allowed",
        ) from None
    if message.get("ok"):
        return Outcome(message["result"], int(message["peak"]))
    raise SandboxError(str(message.get("kind")), str(message.get("message")))


async def run(target: str, *args: Any, limits: Limits, deadline: float | None = None) -> Outcome:
    """`run_sync` off the event loop (`deadline`: seconds before the child is killed)."""
    return await asyncio.to_thread(run_sync, target, *args, limits=limits, timeout=deadline)


if __name__ == "__main__":
    child_main()
