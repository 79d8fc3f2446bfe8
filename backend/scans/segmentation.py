"""Segmentation of a triangle mesh into parts, vectorised with numpy and
scipy.sparse.csgraph (no Python loop over faces or vertices).

- `components`: connected components of the mesh after merging duplicate
  vertices (faces that share a vertex belong to the same part).
- `curvature`: regions grown over the face-adjacency graph: two faces that
  share an edge are joined unless the edge is concave with a dihedral angle
  of `crease_angle` degrees or more, so creases (a tooth's margin against the
  gum, a bump's foot on a base) separate regions while convex edges and
  gentle valleys do not.

Parts with fewer than `min_faces` faces are not segments; their faces are
counted in `discarded_faces`. Segments are numbered by size (most faces
first; ties by the lowest face index), so results are deterministic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.sparse import coo_matrix
from scipy.sparse.csgraph import connected_components

FloatArray = NDArray[np.float64]
IntArray = NDArray[np.int64] | NDArray[np.int32]


class Method(StrEnum):
    components = "components"
    curvature = "curvature"


class MeshError(ValueError):
    """The file is not a usable mesh; the message says why (shown to users)."""


@dataclass(slots=True)
class Mesh:
    """Vertices (n, 3) float64 and faces (m, 3) int32 indices into them."""

    vertices: FloatArray
    faces: NDArray[np.int32]

    @property
    def nbytes(self) -> int:
        return int(self.vertices.nbytes + self.faces.nbytes)

    def validate(self, max_faces: int | None = None) -> None:
        if self.faces.ndim != 2 or self.faces.shape[1] != 3 or len(self.faces) == 0:
            raise MeshError("The mesh has no triangles")
        if max_faces is not None and len(self.faces) > max_faces:
            raise MeshError(f"The mesh has {len(self.faces)} triangles; the limit is {max_faces}")
        if self.faces.min() < 0 or self.faces.max() >= len(self.vertices):
            raise MeshError("A face refers to a vertex that does not exist")
        if not np.isfinite(self.vertices).all():
            raise MeshError("The mesh has coordinates that are not finite numbers")


def merge_vertices(vertices: NDArray[Any], faces: NDArray[Any] | None = None) -> Mesh:
    """One vertex per distinct position (exact equality, -0.0 == 0.0), faces
    re-pointed at them; without `faces`, `vertices` is a triangle soup
    (every three rows a face, as in STL)."""
    points = np.ascontiguousarray(vertices) + 0.0  # -0.0 -> 0.0
    count = len(points)
    if count == 0:
        raise MeshError("The mesh has no vertices")
    order = np.lexsort((points[:, 2], points[:, 1], points[:, 0]))
    ordered = points[order]
    starts = np.empty(count, dtype=bool)
    starts[0] = True
    np.any(ordered[1:] != ordered[:-1], axis=1, out=starts[1:])
    unique = ordered[starts].astype(np.float64)
    del ordered
    group = np.cumsum(starts, dtype=np.int32)
    group -= 1
    inverse = np.empty(count, dtype=np.int32)
    inverse[order] = group
    del order, group, starts
    if faces is None:
        merged_faces = inverse.reshape(-1, 3)
    else:
        merged_faces = inverse[np.asarray(faces)].astype(np.int32, copy=False)
    return Mesh(unique, merged_faces)


def _compact(labels: NDArray[Any], count: int) -> tuple[NDArray[np.int32], NDArray[np.int64]]:
    """Renumber labels 0..count-1 by size (largest first, ties by first face);
    returns the new labels and the face count of each."""
    sizes = np.bincount(labels, minlength=count)
    first = np.full(count, len(labels), dtype=np.int64)
    np.minimum.at(first, labels, np.arange(len(labels)))
    rank = np.lexsort((first, -sizes))
    new = np.empty(count, dtype=np.int32)
    new[rank] = np.arange(count, dtype=np.int32)
    return new[labels], sizes[rank]


def component_labels(mesh: Mesh) -> NDArray[np.int32]:
    """Each face's connected component (vertex-connected)."""
    faces = mesh.faces
    n = len(mesh.vertices)
    rows = np.concatenate((faces[:, 0], faces[:, 1]))
    cols = np.concatenate((faces[:, 1], faces[:, 2]))
    graph = coo_matrix((np.ones(len(rows), dtype=np.int8), (rows, cols)), shape=(n, n)).tocsr()
    del rows, cols
    _, vertex_labels = connected_components(graph, directed=False)
    face_labels: NDArray[np.int32] = vertex_labels[faces[:, 0]].astype(np.int32)
    return face_labels


def face_normals(mesh: Mesh) -> FloatArray:
    """Unit normals (zero for degenerate faces)."""
    v = mesh.vertices
    f = mesh.faces
    normals = np.cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
    length = np.linalg.norm(normals, axis=1)
    nonzero = length > 0
    normals[nonzero] /= length[nonzero, None]
    return normals


def face_adjacency(
    faces: NDArray[np.int32], n_vertices: int
) -> tuple[NDArray[np.int64], NDArray[np.int64], NDArray[np.int32], NDArray[np.int32]]:
    """Pairs of faces sharing an edge: (face a, face b, a vertex of the shared
    edge, b's vertex opposite the edge). Edges of more than two faces pair up
    consecutively."""
    edges = faces[:, [0, 1, 1, 2, 2, 0]].reshape(-1, 2)
    low = edges.min(axis=1).astype(np.int64)
    high = edges.max(axis=1).astype(np.int64)
    key = low * n_vertices + high
    del high
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    del key
    same = sorted_key[1:] == sorted_key[:-1]
    del sorted_key
    first = order[:-1][same]
    second = order[1:][same]
    del order, same
    face_a = first // 3
    face_b = second // 3
    shared = low[first].astype(np.int32)
    opposite = faces[face_b, (second % 3 + 2) % 3]
    return face_a, face_b, shared, opposite


def curvature_labels(mesh: Mesh, crease_angle: float) -> NDArray[np.int32]:
    """Each face's region: faces joined across edges that are convex, flat,
    or concave by less than `crease_angle` degrees."""
    m = len(mesh.faces)
    normals = face_normals(mesh)
    face_a, face_b, shared, opposite = face_adjacency(mesh.faces, len(mesh.vertices))
    cosine = np.einsum("ij,ij->i", normals[face_a], normals[face_b])
    angle = np.degrees(np.arccos(np.clip(cosine, -1.0, 1.0)))
    # b's far vertex above a's plane: the edge folds inwards (a valley).
    rise = np.einsum("ij,ij->i", normals[face_a], mesh.vertices[opposite] - mesh.vertices[shared])
    extent = float(np.ptp(mesh.vertices, axis=0).max()) or 1.0
    concave = rise > 1e-9 * extent
    degenerate = ~normals[face_a].any(axis=1) | ~normals[face_b].any(axis=1)
    joined = degenerate | ~concave | (angle < crease_angle)
    graph = coo_matrix(
        (np.ones(int(joined.sum()), dtype=np.int8), (face_a[joined], face_b[joined])), shape=(m, m)
    ).tocsr()
    _, labels = connected_components(graph, directed=False)
    face_labels: NDArray[np.int32] = labels.astype(np.int32)
    return face_labels


@dataclass(slots=True)
class Part:
    """One segment: which faces, and what they measure."""

    index: int
    face_indices: NDArray[np.int64]
    faces: int
    vertices: int
    surface_area: float
    volume: float | None
    watertight: bool
    bounds: dict[str, list[float]]
    centroid: list[float]

    def summary(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "faces": self.faces,
            "vertices": self.vertices,
            "surface_area": self.surface_area,
            "volume": self.volume,
            "watertight": self.watertight,
            "bounds": self.bounds,
            "centroid": self.centroid,
        }


@dataclass(slots=True)
class Segmentation:
    parts: list[Part]
    discarded_faces: int
    total_faces: int
    method: Method
    params: dict[str, Any] = field(default_factory=dict)


def watertight_groups(mesh: Mesh, labels: NDArray[np.int32], count: int) -> NDArray[np.bool_]:
    """Per label: is the part closed, every edge shared by exactly two of its
    faces with opposite directions (a consistently wound closed surface)?"""
    faces = mesh.faces
    n = len(mesh.vertices)
    start = faces.reshape(-1).astype(np.int64)
    end = faces[:, [1, 2, 0]].reshape(-1).astype(np.int64)
    key = np.minimum(start, end) * n + np.maximum(start, end)
    sign = np.where(start < end, 1, -1).astype(np.int8)
    del start, end
    edge_labels = np.repeat(labels, 3)
    order = np.lexsort((key, edge_labels))
    key = key[order]
    edge_labels = edge_labels[order]
    sign = sign[order]
    del order
    boundary = np.empty(len(key), dtype=bool)
    boundary[0] = True
    boundary[1:] = (key[1:] != key[:-1]) | (edge_labels[1:] != edge_labels[:-1])
    starts = np.flatnonzero(boundary)
    sizes = np.diff(np.append(starts, len(key)))
    balance = np.add.reduceat(sign.astype(np.int32), starts)
    bad = (sizes != 2) | (balance != 0)
    closed = np.ones(count, dtype=bool)
    closed[edge_labels[starts[bad]]] = False
    return closed


def measure(
    mesh: Mesh, labels: NDArray[np.int32], count: int
) -> tuple[list[dict[str, Any]], NDArray[np.int64], NDArray[np.int64]]:
    """Per label 0..count-1: faces, vertices, area, volume (closed parts only),
    watertight, bounds and centroid (of the volume when closed, else of the
    area); also the face order grouping labels and each group's start."""
    v = mesh.vertices
    f = mesh.faces
    a, b, c = v[f[:, 0]], v[f[:, 1]], v[f[:, 2]]
    cross = np.cross(b - a, c - a)
    area = 0.5 * np.linalg.norm(cross, axis=1)
    signed = np.einsum("ij,ij->i", a, np.cross(b, c)) / 6.0
    face_centre = (a + b + c) / 3.0
    tetra_centre = (a + b + c) / 4.0
    del a, b, c, cross
    areas = np.bincount(labels, area, minlength=count)
    volumes = np.bincount(labels, signed, minlength=count)
    closed = watertight_groups(mesh, labels, count)
    area_centroid = np.stack(
        [np.bincount(labels, area * face_centre[:, k], minlength=count) for k in range(3)], axis=1
    )
    volume_centroid = np.stack(
        [np.bincount(labels, signed * tetra_centre[:, k], minlength=count) for k in range(3)],
        axis=1,
    )
    del face_centre, tetra_centre
    face_counts = np.bincount(labels, minlength=count)
    order = np.argsort(labels, kind="stable")
    starts = np.concatenate(([0], np.cumsum(face_counts)[:-1])).astype(np.int64)
    lows = np.empty((count, 3))
    highs = np.empty((count, 3))
    for k in range(3):
        coordinate = v[:, k][f[order]]
        lows[:, k] = np.minimum.reduceat(coordinate.min(axis=1), starts)
        highs[:, k] = np.maximum.reduceat(coordinate.max(axis=1), starts)
    pairs = np.unique(labels.astype(np.int64).repeat(3) * len(v) + f.reshape(-1))
    vertex_counts = np.bincount(pairs // len(v), minlength=count)
    results = []
    for index in range(count):
        is_closed = bool(closed[index]) and volumes[index] != 0
        if is_closed:
            centroid = volume_centroid[index] / volumes[index]
        elif areas[index] > 0:
            centroid = area_centroid[index] / areas[index]
        else:
            centroid = (lows[index] + highs[index]) / 2
        results.append(
            {
                "faces": int(face_counts[index]),
                "vertices": int(vertex_counts[index]),
                "surface_area": float(areas[index]),
                "volume": float(abs(volumes[index])) if is_closed else None,
                "watertight": bool(closed[index]),
                "bounds": {"min": lows[index].tolist(), "max": highs[index].tolist()},
                "centroid": [float(x) for x in centroid],
            }
        )
    return results, order, starts


def segment(
    mesh: Mesh,
    method: Method | str = Method.components,
    *,
    min_faces: int = 100,
    crease_angle: float = 30.0,
) -> Segmentation:
    """Split `mesh` (already merged) into parts by `method`."""
    method = Method(method)
    if method is Method.components:
        raw = component_labels(mesh)
        params: dict[str, Any] = {"min_faces": min_faces}
    else:
        raw = curvature_labels(mesh, crease_angle)
        params = {"min_faces": min_faces, "crease_angle": crease_angle}
    count = int(raw.max()) + 1
    labels, sizes = _compact(raw, count)
    del raw
    kept = int(np.searchsorted(-sizes, -min_faces, side="right"))  # sizes descend
    discarded = int(sizes[kept:].sum())
    if kept < count:
        labels = labels.copy()
        labels[labels >= kept] = kept  # one bucket for everything dropped
        stats, order, starts = measure(mesh, labels, kept + 1)
    else:
        stats, order, starts = measure(mesh, labels, count)
    parts = []
    for index in range(kept):
        begin = int(starts[index])
        faces = order[begin : begin + stats[index]["faces"]]
        parts.append(Part(index=index + 1, face_indices=faces, **stats[index]))
    return Segmentation(parts, discarded, len(mesh.faces), method, params)


def submesh(mesh: Mesh, face_indices: NDArray[Any]) -> Mesh:
    """The faces given, with only the vertices they use (renumbered)."""
    faces = mesh.faces[face_indices]
    used, inverse = np.unique(faces, return_inverse=True)
    return Mesh(mesh.vertices[used], inverse.reshape(-1, 3).astype(np.int32))
