"""Issue 13: components segmentation of a 1,000,000-face binary STL as a
`scan.segment` job runs it (the sandboxed child: read, merge, segment, write
every segment as STL), next to trimesh's own load + `split()` of the same
file in the same run; the child's peak memory against the mesh's in-memory
size."""

from __future__ import annotations

import asyncio
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import trimesh

from backend.scans import sandbox
from bench.context import BenchContext
from bench.registry import CustomScenario, Measurement, RunOptions, register

SPHERES = 49  # x 20,480 faces = 1,003,520 faces, 49 components
TARGET_SECONDS = 10.0
MEMORY_FACTOR = 4.0


def write_mesh(path: Path) -> int:
    """49 closed spheres of different radii in a grid, as a binary STL."""
    sphere = trimesh.creation.icosphere(subdivisions=5)
    vertices = np.concatenate(
        [
            sphere.vertices * (0.5 + 0.02 * k) + np.array([3.0 * (k % 7), 3.0 * (k // 7), 0.0])
            for k in range(SPHERES)
        ]
    )
    faces = np.concatenate([sphere.faces + k * len(sphere.vertices) for k in range(SPHERES)])
    trimesh.Trimesh(vertices, faces, process=False).export(str(path))
    return len(faces)


def _mesh_file(context: BenchContext) -> tuple[Path, int]:
    if "scans.mesh" not in context.state:
        folder = Path(tempfile.mkdtemp(prefix="bench-scans-", dir=context.work_dir))
        path = folder / "million.stl"
        context.state["scans.mesh"] = (path, write_mesh(path))
    found: tuple[Path, int] = context.state["scans.mesh"]
    return found


def trimesh_split(path: str) -> dict[str, float]:
    """The baseline, run in its own child like ours: trimesh's load (which
    merges vertices) and `split()`."""
    started = time.perf_counter()
    mesh = trimesh.load_mesh(path)
    loaded = time.perf_counter()
    parts = mesh.split(only_watertight=False)
    return {
        "parts": len(parts),
        "read": loaded - started,
        "segment": time.perf_counter() - loaded,
    }


async def baseline(context: BenchContext, options: RunOptions) -> Measurement:
    path, faces = _mesh_file(context)
    limits = sandbox.Limits(memory_bytes=8 << 30, cpu_seconds=600)
    started = time.perf_counter()
    outcome = await sandbox.run("bench.scenarios.scans:trimesh_split", str(path), limits=limits)
    elapsed = time.perf_counter() - started
    return Measurement(
        throughput=faces / elapsed / 1e3,
        unit="kfaces/s",
        count=faces,
        duration_s=elapsed,
        details={**outcome.result, "peak_rss_mb": round(outcome.peak_rss_bytes / 2**20, 1)},
    )


def trimesh_bytes(faces: int, result: dict[str, Any]) -> int:
    """The same mesh as trimesh holds it: float64 vertices, int64 faces
    (components share no vertices, so the segments' vertices add up)."""
    vertices = sum(int(part["vertices"]) for part in result["parts"])
    return vertices * 3 * 8 + faces * 3 * 8


async def components(context: BenchContext, options: RunOptions) -> Measurement:
    path, faces = _mesh_file(context)
    limits = sandbox.Limits(
        memory_bytes=context.settings.scan_memory_limit_bytes,
        cpu_seconds=context.settings.scan_cpu_seconds,
    )
    with tempfile.TemporaryDirectory(dir=context.work_dir) as out:
        started = time.perf_counter()
        outcome = await sandbox.run(
            "backend.scans.pipeline:segment_file",
            str(path),
            out,
            "components",
            100,
            30.0,
            ["stl"],
            limits=limits,
        )
        elapsed = time.perf_counter() - started
    result = outcome.result
    memory = result["memory"]
    grown = memory["peak_rss"] - memory["baseline_rss"]
    factor = grown / result["mesh_bytes"]
    details = {
        "segments": len(result["parts"]),
        "seconds": result["seconds"],
        "mesh_mb": round(result["mesh_bytes"] / 2**20, 1),
        "trimesh_mesh_mb": round(trimesh_bytes(faces, result) / 2**20, 1),
        "peak_growth_mb": round(grown / 2**20, 1),
        "peak_growth_x_mesh": round(factor, 2),
        "within_10_s": elapsed < TARGET_SECONDS,
        "within_4x_memory": factor <= MEMORY_FACTOR,
    }
    await asyncio.sleep(0)
    return Measurement(
        throughput=faces / elapsed / 1e3,
        unit="kfaces/s",
        count=faces,
        duration_s=elapsed,
        errors=0 if elapsed < TARGET_SECONDS and factor <= MEMORY_FACTOR else 1,
        details=details,
    )


register(
    CustomScenario(
        "scans-trimesh-split",
        baseline,
        description="baseline: trimesh.load + split() of a 1,003,520-face binary STL (child)",
    ),
    CustomScenario(
        "scans-components",
        components,
        baseline="scans-trimesh-split",
        target_ratio=1.0,
        description="scan.segment components of the same STL in the sandboxed child: read, "
        "merge, segment, write 49 STL files (target < 10 s, peak growth <= 4x the mesh)",
    ),
)
