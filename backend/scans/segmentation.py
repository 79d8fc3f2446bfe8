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


CHUNK = 1 << 16  # faces (or rows) handled at once where a whole-mesh temporary would be big


_MIX = (np.uint64(0x9E3779B97F4A7C15), np.uint64(0xC2B2AE3D27D4EB4F))


def _position_keys(points: NDArray[Any]) -> NDArray[np.uint64]:
    """A 64-bit key per row from the bits of its coordinates: equal rows get
    equal keys; unequal rows almost never do (checked by the caller)."""
    keys = np.empty(len(points), dtype=np.uint64)
    width = points.dtype.itemsize
    for begin in range(0, len(points), CHUNK):
        rows = np.ascontiguousarray(points[begin : begin + CHUNK])
        bits = rows.view(np.uint32 if width == 4 else np.uint64).reshape(len(rows), -1)
        words = bits.astype(np.uint64)
        key = words[:, 0] * _MIX[0]
        for column in range(1, words.shape[1]):
            key ^= words[:, column] + (key << np.uint64(6)) + (key >> np.uint64(2))
            key *= _MIX[column % 2]
        keys[begin : begin + CHUNK] = key
    return keys


def _group_starts(points: NDArray[Any], order: NDArray[Any]) -> NDArray[np.bool_]:
    """Where a new position begins in `points[order]` (compared in chunks)."""
    count = len(order)
    starts = np.empty(count, dtype=bool)
    starts[0] = True
    for begin in range(1, count, CHUNK):
        end = min(begin + CHUNK, count)
        np.any(
            points[order[begin:end]] != points[order[begin - 1 : end - 1]],
            axis=1,
            out=starts[begin:end],
        )
    return starts


def unique_rows(points: NDArray[Any]) -> tuple[NDArray[Any], NDArray[np.int32]]:
    """The distinct rows of `points` (exact equality; pass -0.0 as 0.0) and,
    per row, the index of its distinct row. Sorts one 64-bit key per row
    rather than the rows themselves (a third of the memory of a row sort);
    should two different rows share a key, the exact row sort decides."""
    count = len(points)
    if count == 0:
        raise MeshError("The mesh has no vertices")
    keys = _position_keys(points)
    order: NDArray[Any] = np.argsort(keys).astype(np.int32)
    starts = _group_starts(points, order)
    sorted_keys = keys[order[starts]]
    del keys
    if len(sorted_keys) > 1 and not np.all(sorted_keys[1:] != sorted_keys[:-1]):
        # Two positions share a key (a collision): sort the rows exactly.
        order = np.lexsort((points[:, 2], points[:, 1], points[:, 0]))
        starts = _group_starts(points, order)
    del sorted_keys
    unique = points[order[starts]]
    group = np.cumsum(starts, dtype=np.int32)
    del starts
    group -= 1
    inverse = np.empty(count, dtype=np.int32)
    inverse[order] = group
    return unique, inverse


def merge_vertices(vertices: NDArray[Any], faces: NDArray[Any] | None = None) -> Mesh:
    """One vertex per distinct position (exact equality, -0.0 == 0.0), faces
    re-pointed at them; without `faces`, `vertices` is a triangle soup
    (every three rows a face, as in STL). Works in place on `vertices`."""
    points = np.ascontiguousarray(vertices)
    points += 0.0  # -0.0 -> 0.0
    unique, inverse = unique_rows(points)
    if faces is None:
        merged_faces = inverse.reshape(-1, 3)
    else:
        merged_faces = inverse[np.asarray(faces)].astype(np.int32, copy=False)
    return Mesh(unique.astype(np.float64), merged_faces)


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


def cross(a: FloatArray, b: FloatArray) -> FloatArray:
    """Row-wise cross products (several times faster than `np.cross` here)."""
    out = np.empty_like(a)
    np.subtract(a[:, 1] * b[:, 2], a[:, 2] * b[:, 1], out=out[:, 0])
    np.subtract(a[:, 2] * b[:, 0], a[:, 0] * b[:, 2], out=out[:, 1])
    np.subtract(a[:, 0] * b[:, 1], a[:, 1] * b[:, 0], out=out[:, 2])
    return out


def face_normals(mesh: Mesh) -> FloatArray:
    """Unit normals (zero for degenerate faces)."""
    v = mesh.vertices
    f = mesh.faces
    normals = cross(v[f[:, 1]] - v[f[:, 0]], v[f[:, 2]] - v[f[:, 0]])
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


def _sorted_edges(faces: NDArray[np.int32], n_vertices: int) -> tuple[NDArray[np.int64], int]:
    """Every face corner's edge as `(low * n + high) << shift | corner`,
    sorted in place: runs of equal `value >> shift` are the same undirected
    edge, and `value & mask` is the corner (face * 3 + edge) it came from."""
    shift = max(1, int(len(faces) * 3).bit_length())
    if (n_vertices * n_vertices) << shift >= 1 << 62:
        raise MeshError("The mesh is too large to index its edges")
    packed = np.empty(len(faces) * 3, dtype=np.int64)
    corners = np.arange(3, dtype=np.int64)
    for begin in range(0, len(faces), CHUNK):
        chunk = faces[begin : begin + CHUNK]
        start = chunk.astype(np.int64)
        end = np.roll(start, -1, axis=1)
        low = np.minimum(start, end)
        high = np.maximum(start, end)
        value = (low * n_vertices + high) << shift
        value |= (np.arange(begin, begin + len(chunk), dtype=np.int64)[:, None] * 3) + corners
        packed[begin * 3 : (begin + len(chunk)) * 3] = value.reshape(-1)
    packed.sort()
    return packed, shift


def watertight_groups(mesh: Mesh, labels: NDArray[np.int32], count: int) -> NDArray[np.bool_]:
    """Per label: is the part closed, every edge shared by exactly two of its
    faces with opposite directions (a consistently wound closed surface)?"""
    faces = mesh.faces
    packed, shift = _sorted_edges(faces, len(mesh.vertices))
    total = len(packed)
    boundary = np.empty(total, dtype=bool)
    boundary[0] = True
    for begin in range(1, total, CHUNK):
        end = min(begin + CHUNK, total)
        np.not_equal(
            packed[begin:end] >> shift,
            packed[begin - 1 : end - 1] >> shift,
            out=boundary[begin:end],
        )
    edge_labels = np.empty(total, dtype=np.int32)
    sign = np.empty(total, dtype=np.int8)
    mask = (1 << shift) - 1
    for begin in range(0, total, CHUNK):
        corner = packed[begin : begin + CHUNK] & mask
        face, side = corner // 3, corner % 3
        edge_labels[begin : begin + CHUNK] = labels[face]
        forward = faces[face, side] < faces[face, (side + 1) % 3]
        sign[begin : begin + CHUNK] = np.where(forward, 1, -1)
    del packed
    starts = np.flatnonzero(boundary).astype(np.int32)
    del boundary
    sizes = np.empty(len(starts), dtype=np.int32)
    np.subtract(starts[1:], starts[:-1], out=sizes[:-1])
    sizes[-1] = total - starts[-1]
    balance = np.add.reduceat(sign, starts, dtype=np.int32)
    del sign
    first = edge_labels[starts]
    # Both faces of a closed edge are in the same part.
    same = np.ones(len(starts), dtype=bool)
    paired = sizes == 2
    same[paired] = edge_labels[starts[paired] + 1] == first[paired]
    bad = (sizes != 2) | (balance != 0) | ~same
    closed = np.ones(count, dtype=bool)
    closed[first[bad]] = False
    closed[edge_labels[starts[bad & paired] + 1]] = False
    return closed


def _vertex_counts(
    faces: NDArray[np.int32], labels: NDArray[np.int32], n_vertices: int, count: int
) -> NDArray[np.int64]:
    """Distinct vertices per label. Each vertex counts for the label of one
    face using it; the few corners whose face has another label (region
    borders) add their distinct (label, vertex) pairs."""
    corner_labels = np.repeat(labels, 3)
    corners = faces.reshape(-1)
    home = np.full(n_vertices, -1, dtype=np.int32)
    home[corners] = corner_labels
    used = home >= 0
    counts = np.bincount(home[used], minlength=count).astype(np.int64)
    away = corner_labels != home[corners]
    if away.any():
        pairs = np.unique(corner_labels[away].astype(np.int64) * n_vertices + corners[away])
        counts += np.bincount((pairs // n_vertices).astype(np.int32), minlength=count)
    return counts


def measure(
    mesh: Mesh, labels: NDArray[np.int32], count: int
) -> tuple[list[dict[str, Any]], NDArray[np.int64], NDArray[np.int64]]:
    """Per label 0..count-1: faces, vertices, area, volume (closed parts only),
    watertight, bounds and centroid (of the volume when closed, else of the
    area); also the face order grouping labels and each group's start.
    Works through the faces in chunks, so no whole-mesh temporaries."""
    v = mesh.vertices
    f = mesh.faces
    areas = np.zeros(count)
    volumes = np.zeros(count)
    area_centroid = np.zeros((count, 3))
    volume_centroid = np.zeros((count, 3))
    lows = np.full((count, 3), np.inf)
    highs = np.full((count, 3), -np.inf)
    for begin in range(0, len(f), CHUNK):
        chunk = f[begin : begin + CHUNK]
        group = labels[begin : begin + CHUNK]
        a, b, c = v[chunk[:, 0]], v[chunk[:, 1]], v[chunk[:, 2]]
        area = 0.5 * np.linalg.norm(cross(b - a, c - a), axis=1)
        signed = np.einsum("ij,ij->i", a, cross(b, c)) / 6.0
        total = a + b + c
        areas += np.bincount(group, area, minlength=count)
        volumes += np.bincount(group, signed, minlength=count)
        for k in range(3):
            area_centroid[:, k] += np.bincount(group, area * total[:, k] / 3.0, minlength=count)
            volume_centroid[:, k] += np.bincount(group, signed * total[:, k] / 4.0, minlength=count)
            np.minimum.at(lows[:, k], group, np.minimum(np.minimum(a[:, k], b[:, k]), c[:, k]))
            np.maximum.at(highs[:, k], group, np.maximum(np.maximum(a[:, k], b[:, k]), c[:, k]))
        del a, b, c, total
    closed = watertight_groups(mesh, labels, count)
    face_counts = np.bincount(labels, minlength=count)
    order = np.argsort(labels, kind="stable")
    starts = np.concatenate(([0], np.cumsum(face_counts)[:-1])).astype(np.int64)
    vertex_counts = _vertex_counts(f, labels, len(v), count)
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
