"""Reading a mesh file and measuring it (`metadata.mesh`).

Binary STL is read straight into numpy (the common scanner format, and the
large one); the other formats go through trimesh's loaders. Either way the
mesh is then merged (one vertex per position) and validated. Meant to run in
the sandboxed child process (`backend.scans.sandbox`)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import trimesh

from backend.documents.meshes import HEAD_BYTES, MeshFormat, MeshKind, detect_file
from backend.scans.segmentation import (
    CHUNK,
    Mesh,
    MeshError,
    component_labels,
    merge_vertices,
    unique_rows,
)

_STL_RECORD = np.dtype(
    [("normal", "<f4", (3,)), ("vertices", "<f4", (3, 3)), ("attributes", "<u2")]
)
_PLY_FACES = re.compile(rb"^element\s+face\s+(\d+)\s*$", re.M)


def _read_binary_stl(path: Path, max_faces: int | None) -> Mesh:
    with path.open("rb") as handle:
        handle.seek(80)
        count = int(np.frombuffer(handle.read(4), "<u4")[0])
    if max_faces is not None and count > max_faces:
        raise MeshError(f"The mesh has {count} triangles; the limit is {max_faces}")
    # Chunk by chunk: each chunk's distinct positions (neighbouring triangles
    # share most corners, so this shrinks the rows several times over), then
    # the distinct positions of all chunks; the soup is never whole in memory.
    corners = np.empty(count * 3, dtype=np.int32)  # per corner: its row in `pieces`
    pieces = []
    offset = 0
    with path.open("rb") as handle:
        handle.seek(84)
        for begin in range(0, count, CHUNK):
            size = min(CHUNK, count - begin)
            records = np.fromfile(handle, dtype=_STL_RECORD, count=size)
            if len(records) != size:
                raise MeshError("The STL file is shorter than its triangle count says")
            rows = records["vertices"].reshape(-1, 3) + np.float32(0.0)  # -0.0 -> 0.0
            local, inverse = unique_rows(rows)
            corners[begin * 3 : (begin + size) * 3] = inverse + offset
            pieces.append(local)
            offset += len(local)
    distinct, inverse = unique_rows(np.concatenate(pieces))
    del pieces
    faces = inverse[corners].reshape(-1, 3)
    del corners, inverse
    return Mesh(distinct.astype(np.float64), faces)


def _declared_faces(path: Path, kind: MeshKind) -> int | None:
    if kind.format is MeshFormat.ply:
        with path.open("rb") as handle:
            match = _PLY_FACES.search(handle.read(HEAD_BYTES))
        return int(match.group(1)) if match else None
    return None


def _read_with_trimesh(path: Path, kind: MeshKind) -> Mesh:
    try:
        loaded = trimesh.load(str(path), file_type=kind.format.value, process=False, force="mesh")
    except Exception as error:
        raise MeshError(f"The file does not parse as {kind.name}: {error}") from None
    if not isinstance(loaded, trimesh.Trimesh):
        raise MeshError(f"The file does not parse as {kind.name}: no triangles found")
    vertices = np.asarray(loaded.vertices, dtype=np.float64)
    faces = np.asarray(loaded.faces)
    if len(faces) == 0 or len(vertices) == 0:
        raise MeshError("The mesh has no triangles")
    if faces.min() < 0 or faces.max() >= len(vertices):
        raise MeshError("A face refers to a vertex that does not exist")
    return merge_vertices(vertices, faces)


def read_mesh(path: Path, max_faces: int | None = None) -> tuple[MeshKind, Mesh]:
    """The file's kind and its merged, validated mesh; `MeshError` says why not."""
    kind = detect_file(path)
    if kind is None:
        raise MeshError("The file is not an STL, PLY, OBJ or GLB mesh")
    declared = _declared_faces(path, kind)
    if max_faces is not None and declared is not None and declared > max_faces:
        raise MeshError(f"The mesh has {declared} triangles; the limit is {max_faces}")
    if kind.format is MeshFormat.stl and kind.binary:
        mesh = _read_binary_stl(path, max_faces)
    else:
        mesh = _read_with_trimesh(path, kind)
    mesh.validate(max_faces)
    return kind, mesh


def measure_mesh(kind: MeshKind, mesh: Mesh) -> dict[str, Any]:
    """`metadata.mesh`: format, counts, bounds, extents, area, volume (only if
    watertight), watertightness and the number of connected components."""
    shape = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False, validate=False)
    watertight = bool(shape.is_watertight and shape.is_winding_consistent)
    low, high = shape.bounds
    labels = component_labels(mesh)
    return {
        "format": kind.name,
        "mime_type": kind.mime_type,
        "vertices": len(mesh.vertices),
        "faces": len(mesh.faces),
        "bounds": {"min": low.tolist(), "max": high.tolist()},
        "extents": shape.extents.tolist(),
        "surface_area": float(shape.area),
        "volume": float(abs(shape.volume)) if watertight else None,
        "watertight": watertight,
        "components": len(np.unique(labels)),
    }
