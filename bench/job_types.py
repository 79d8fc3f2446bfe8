"""Job types of the benchmarks (`dossier worker --import bench.job_types`)."""

from __future__ import annotations

from typing import Any

from backend.jobs.context import JobContext
from backend.jobs.types import job_type


@job_type("bench.noop", "Does nothing (queue overhead)", schema={"type": "object"})
async def noop(ctx: JobContext) -> dict[str, Any]:
    return {}


@job_type("bench.progress", "Reports progress once (event fan-out)", schema={"type": "object"})
async def progress(ctx: JobContext) -> dict[str, Any]:
    await ctx.progress(50, "halfway")
    return {}
