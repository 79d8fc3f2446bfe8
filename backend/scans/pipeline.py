"""The entry points the sandboxed child process runs (by dotted name, see
`backend.scans.sandbox`): whole steps from a file on disk to plain data and
files, so that the worker process never holds a mesh."""

from __future__ import annotations

import resource
import time
from pathlib import Path
from typing import Any

from backend.documents.meshes import MeshFormat
from backend.scans.analysis import measure_mesh, read_mesh
from backend.scans.conversion import write
from backend.scans.sandbox import peak_rss
from backend.scans.segmentation import segment, submesh


def _rss() -> int:
    with open("/proc/self/statm") as handle:
        return int(handle.read().split()[1]) * resource.getpagesize()


def analyze_file(path: str, max_faces: int | None = None) -> dict[str, Any]:
    """`metadata.mesh` of the file at `path`."""
    kind, mesh = read_mesh(Path(path), max_faces)
    return measure_mesh(kind, mesh)


def segment_file(
    path: str,
    out_dir: str,
    method: str,
    min_faces: int,
    crease_angle: float,
    formats: list[str],
    max_faces: int | None = None,
) -> dict[str, Any]:
    """Segment the mesh at `path` and write every segment in `formats` to
    `out_dir/<number>.<format>`; answers the segments' measures, the
    discarded faces and timings."""
    baseline = _rss()
    started = time.perf_counter()
    _, mesh = read_mesh(Path(path), max_faces)
    loaded = time.perf_counter()
    result = segment(mesh, method, min_faces=min_faces, crease_angle=crease_angle)
    segmented = time.perf_counter()
    folder = Path(out_dir)
    parts = []
    for part in result.parts:
        piece = submesh(mesh, part.face_indices)
        files = {}
        for name in formats:
            target = folder / f"{part.index}.{name}"
            files[name] = {"path": str(target), "size": write(piece, MeshFormat(name), target)}
        parts.append({**part.summary(), "files": files})
    peak = peak_rss()
    return {
        "parts": parts,
        "discarded_faces": result.discarded_faces,
        "total_faces": result.total_faces,
        "params": result.params,
        "mesh_bytes": mesh.nbytes,
        "seconds": {
            "read": round(loaded - started, 3),
            "segment": round(segmented - loaded, 3),
            "write": round(time.perf_counter() - segmented, 3),
        },
        "memory": {"baseline_rss": baseline, "peak_rss": peak},
    }


def convert_file(source: str, target: str, format: str) -> int:
    """Read a mesh file and write it as `format`; answers the size."""
    _, mesh = read_mesh(Path(source))
    return write(mesh, MeshFormat(format), Path(target))
