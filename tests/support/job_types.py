"""Job types used by the tests (imported by the test process and by worker
subprocesses through `dossier worker --import tests.support.job_types`)."""

from __future__ import annotations

import asyncio
import os
from typing import Any

from backend.jobs.context import JobContext
from backend.jobs.types import job_type


@job_type("test.noop", "Does nothing", schema={"type": "object"})
async def noop(ctx: JobContext) -> dict[str, Any]:
    return {}


@job_type(
    "test.work",
    "Records its run in a file, sleeps in steps reporting progress, may fail",
    schema={
        "type": "object",
        "properties": {
            "record": {"type": "string"},
            "sleep": {"type": "number", "minimum": 0, "maximum": 60},
            "steps": {"type": "integer", "minimum": 1, "maximum": 100},
            "fail": {"type": "boolean"},
        },
        "additionalProperties": False,
    },
)
async def work(ctx: JobContext) -> dict[str, Any]:
    record = ctx.payload.get("record")
    if record:
        # O_APPEND writes of one short line are atomic across processes.
        fd = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"start {ctx.job.id} {ctx.job.attempt}\n".encode())
        finally:
            os.close(fd)
    steps = int(ctx.payload.get("steps", 1))
    for step in range(steps):
        await asyncio.sleep(float(ctx.payload.get("sleep", 0)) / steps)
        if steps > 1:
            await ctx.progress(100 * (step + 1) / steps, f"step {step + 1}")
    if ctx.payload.get("fail"):
        raise RuntimeError("boom")
    if record:
        fd = os.open(record, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            os.write(fd, f"done {ctx.job.id} {ctx.job.attempt}\n".encode())
        finally:
            os.close(fd)
    return {"ok": True}


@job_type(
    "test.deadline",
    "Sleeps past its own deadline (timeout_seconds=0.3)",
    schema={"type": "object"},
    timeout_seconds=0.3,
)
async def past_deadline(ctx: JobContext) -> dict[str, Any]:
    await asyncio.sleep(30)
    return {}


@job_type(
    "test.artifact",
    "Stores an artifact `out.bin` of `size` random bytes",
    schema={
        "type": "object",
        "properties": {"size": {"type": "integer", "minimum": 1, "maximum": 10_000_000}},
        "additionalProperties": False,
    },
)
async def artifact(ctx: JobContext) -> dict[str, Any]:
    size = int(ctx.payload.get("size", 1000))

    async def chunks() -> Any:
        yield os.urandom(size)

    return await ctx.store_artifact("out.bin", chunks(), content_type="application/octet-stream")
