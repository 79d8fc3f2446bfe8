"""Writing a mesh in one of the four download formats: binary STL and binary
PLY written straight from the arrays (fast, no intermediate objects), OBJ
and GLB through trimesh's exporters."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import trimesh

from backend.documents.meshes import MeshFormat
from backend.scans.segmentation import Mesh, face_normals

_STL_RECORD = np.dtype(
    [("normal", "<f4", (3,)), ("vertices", "<f4", (3, 3)), ("attributes", "<u2")]
)
_PLY_FACE = np.dtype([("count", "u1"), ("indices", "<i4", (3,))])


def _stl(mesh: Mesh) -> bytes:
    records = np.zeros(len(mesh.faces), dtype=_STL_RECORD)
    records["normal"] = face_normals(mesh)
    records["vertices"] = mesh.vertices[mesh.faces]
    header = b"Dossier segment".ljust(80, b" ") + np.uint32(len(mesh.faces)).tobytes()
    return header + records.tobytes()


def _ply(mesh: Mesh) -> bytes:
    header = (
        "ply\nformat binary_little_endian 1.0\ncomment Dossier segment\n"
        f"element vertex {len(mesh.vertices)}\n"
        "property double x\nproperty double y\nproperty double z\n"
        f"element face {len(mesh.faces)}\n"
        "property list uchar int vertex_indices\nend_header\n"
    ).encode()
    faces = np.empty(len(mesh.faces), dtype=_PLY_FACE)
    faces["count"] = 3
    faces["indices"] = mesh.faces
    return header + np.ascontiguousarray(mesh.vertices, dtype="<f8").tobytes() + faces.tobytes()


def _with_trimesh(mesh: Mesh, file_type: str) -> bytes:
    shape = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False, validate=False)
    data = shape.export(file_type=file_type)
    del shape
    gc.collect()  # trimesh's caches hold reference cycles
    return data.encode() if isinstance(data, str) else bytes(data)


def encode(mesh: Mesh, format: MeshFormat | str) -> bytes:
    """The mesh as a file of `format` (STL and PLY binary)."""
    target = MeshFormat(format)
    if target is MeshFormat.stl:
        return _stl(mesh)
    if target is MeshFormat.ply:
        return _ply(mesh)
    return _with_trimesh(mesh, target.value)


def write(mesh: Mesh, format: MeshFormat | str, path: Path) -> int:
    """Write the mesh to `path`; returns the size in bytes."""
    data = encode(mesh, format)
    path.write_bytes(data)
    return len(data)
