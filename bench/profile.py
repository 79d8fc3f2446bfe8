"""Where the server's time goes: py-spy samples the app during a scenario.

`python -m bench --profile ...` records each app scenario's measured load
with `py-spy record` (collapsed stacks under bench/results/) and prints
the functions holding most of the samples. Sampling slows the server down a
little, so figures of a profiled run are marked as such; measure without it.
"""

from __future__ import annotations

import asyncio
import re
import shutil
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from bench.load import pinned

_FRAME = re.compile(r"^(?P<function>.*) \((?P<file>[^()]*?)(?::\d+)?\)$")


def py_spy() -> str | None:
    beside = Path(sys.executable).with_name("py-spy")
    return str(beside) if beside.exists() else shutil.which("py-spy")


def _command(pid: int, output: Path, rate: int, duration: float | None) -> list[str]:
    tool = py_spy()
    if tool is None:
        raise RuntimeError("py-spy is not installed (pip install py-spy)")
    command = [tool, "record", "--pid", str(pid), "--rate", str(rate), "--nonblocking"]
    if duration is not None:
        command += ["--duration", str(max(1, round(duration)))]
    return [*command, "--format", "raw", "--output", str(output)]


async def _finish(process: asyncio.subprocess.Process) -> None:
    _, err = await process.communicate()
    if process.returncode != 0:
        raise RuntimeError(f"py-spy failed: {err.decode(errors='replace')[-1000:]}")


async def record(
    pid: int, duration: float, output: Path, *, rate: int = 200, cpus: str | None = None
) -> None:
    """Samples process `pid` for `duration` seconds into `output`: collapsed
    stacks, one per line with its count (flamegraph.pl and speedscope read it)."""
    process = await asyncio.create_subprocess_exec(
        *pinned(_command(pid, output, rate, duration), cpus),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    await _finish(process)


@asynccontextmanager
async def sampling(
    pid: int, output: Path, *, rate: int = 200, cpus: str | None = None
) -> AsyncIterator[None]:
    """Samples process `pid` into `output` for as long as the block runs (a
    custom scenario, whose length is its own); py-spy writes on SIGINT."""
    process = await asyncio.create_subprocess_exec(
        *pinned(_command(pid, output, rate, None), cpus),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        yield
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGINT)
        await _finish(process)


def _parse(frame: str) -> tuple[str, str]:
    """(function, path relative to site-packages / the repository / the stdlib)."""
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip(), ""
    path = match["file"]
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/", "lib/python3/"):
        if marker in path:
            path = path.split(marker, 1)[1]
            break
    return match["function"], path


def _package(path: str) -> str:
    """`sqlalchemy`, `asyncpg`, `backend.auth`, `stdlib:logging`..."""
    if path.startswith("backend/"):
        parts = path.split("/")
        return ".".join(parts[:2]).removesuffix(".py")
    if "/" not in path or path.startswith("<"):
        return f"stdlib:{path.removesuffix('.py')}" if path else "?"
    head = path.split("/", 1)[0]
    return head if not head.endswith(".py") else f"stdlib:{head.removesuffix('.py')}"


IDLE = ("Condition.wait (threading.py)", "Queue.get (queue.py)", "select (selectors.py)")


def summarize(collapsed: Path, top: int = 15) -> str:
    """Where the samples fall: self time by package (the innermost frame's),
    and the project's own functions by inclusive share (anywhere on the stack).
    Idle worker threads are left out."""
    by_package: Counter[str] = Counter()
    ours: Counter[str] = Counter()
    total = 0
    for line in collapsed.read_text().splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack.strip() or not count_text.isdigit():
            continue
        frames = [_parse(frame) for frame in stack.split(";") if frame.strip()]
        labels = [f"{function} ({path})" for function, path in frames]
        if not frames or labels[-1] in IDLE:
            continue
        count = int(count_text)
        total += count
        by_package[_package(frames[-1][1])] += count
        for label in {
            lab
            for lab, (_, path) in zip(labels, frames, strict=True)
            if path.startswith("backend/")
        }:
            ours[label] += count
    if not total:
        return "no samples"
    lines = [f"{total} busy samples. Self time by package:"]
    lines += [f"  {n / total:6.1%}  {name}" for name, n in by_package.most_common(top)]
    lines.append("Project functions, inclusive (time under them):")
    lines += [f"  {n / total:6.1%}  {name}" for name, n in ours.most_common(top)]
    return "\n".join(lines)
