"""Writing a mesh in one of the four download formats (trimesh's exporters):
binary STL, binary PLY, OBJ and GLB."""

from __future__ import annotations

from pathlib import Path

import trimesh

from backend.documents.meshes import MeshFormat
from backend.scans.segmentation import Mesh

_EXPORT_TYPE = {
    MeshFormat.stl: "stl",
    MeshFormat.ply: "ply",
    MeshFormat.obj: "obj",
    MeshFormat.glb: "glb",
}


def encode(mesh: Mesh, format: MeshFormat | str) -> bytes:
    """The mesh as a file of `format` (STL and PLY binary)."""
    shape = trimesh.Trimesh(mesh.vertices, mesh.faces, process=False, validate=False)
    data = shape.export(file_type=_EXPORT_TYPE[MeshFormat(format)])
    return data.encode() if isinstance(data, str) else bytes(data)


def write(mesh: Mesh, format: MeshFormat | str, path: Path) -> int:
    """Write the mesh to `path`; returns the size in bytes."""
    data = encode(mesh, format)
    path.write_bytes(data)
    return len(data)
