"""Generated meshes with known truth, in the six encodings the scans
workload reads (binary/ASCII STL, binary/ASCII PLY, OBJ, GLB)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import trimesh
from trimesh.exchange.ply import export_ply

ENCODINGS = ("stl-binary", "stl-ascii", "ply-binary", "ply-ascii", "obj", "glb")
MIME = {
    "stl-binary": "model/stl",
    "stl-ascii": "model/stl",
    "ply-binary": "model/ply",
    "ply-ascii": "model/ply",
    "obj": "model/obj",
    "glb": "model/gltf-binary",
}
EXTENSION = {
    "stl-binary": "stl",
    "stl-ascii": "stl",
    "ply-binary": "ply",
    "ply-ascii": "ply",
    "obj": "obj",
    "glb": "glb",
}


def encode(mesh: trimesh.Trimesh, encoding: str) -> bytes:
    if encoding == "stl-binary":
        return bytes(mesh.export(file_type="stl"))
    if encoding == "stl-ascii":
        return str(mesh.export(file_type="stl_ascii")).encode()
    if encoding == "ply-binary":
        return bytes(export_ply(mesh, encoding="binary"))
    if encoding == "ply-ascii":
        return bytes(export_ply(mesh, encoding="ascii"))
    if encoding == "obj":
        return str(mesh.export(file_type="obj", include_normals=False)).encode()
    if encoding == "glb":
        return bytes(mesh.export(file_type="glb"))
    raise ValueError(encoding)


@dataclass(frozen=True)
class Part:
    """What a segment must measure."""

    faces: int
    surface_area: float
    volume: float | None
    watertight: bool
    bounds: tuple[tuple[float, ...], tuple[float, ...]] | None = None
    centroid: tuple[float, ...] | None = None


@dataclass(frozen=True)
class Case:
    name: str
    mesh: trimesh.Trimesh
    parts: list[Part]  # largest first
    discarded_faces: int
    min_faces: int
    components: int  # connected components of the whole mesh
    watertight: bool


def _truth(body: trimesh.Trimesh) -> Part:
    return Part(
        faces=len(body.faces),
        surface_area=float(body.area),
        volume=float(body.volume) if body.is_watertight else None,
        watertight=bool(body.is_watertight),
        bounds=(tuple(body.bounds[0]), tuple(body.bounds[1])),
        centroid=tuple(body.center_mass if body.is_watertight else body.triangles_center.mean(0)),
    )


def _place(body: trimesh.Trimesh, offset: tuple[float, float, float]) -> trimesh.Trimesh:
    body = body.copy()
    body.apply_translation(offset)
    return body


def disjoint_bodies() -> Case:
    """Four closed bodies of different sizes far apart, plus two tiny
    fragments under `min_faces` (a tetrahedron and an icosahedron)."""
    bodies = [
        _place(trimesh.creation.icosphere(subdivisions=3, radius=5.0), (0, 0, 0)),
        _place(trimesh.creation.icosphere(subdivisions=2, radius=3.0), (20, 0, 0)),
        _place(trimesh.creation.cylinder(radius=2.0, height=6.0, sections=40), (0, 20, 0)),
        _place(trimesh.creation.box(extents=(4, 6, 8)).subdivide().subdivide(), (20, 20, 5)),
    ]
    fragments = [
        _place(trimesh.creation.icosphere(subdivisions=0, radius=0.5), (-20, 0, 0)),
        _place(
            trimesh.Trimesh(
                [[0, 0, 0], [1, 0, 0], [0, 1, 0], [0, 0, 1]],
                [[0, 2, 1], [0, 1, 3], [0, 3, 2], [1, 2, 3]],
                process=False,
            ),
            (-20, -20, 0),
        ),
    ]
    mesh = trimesh.util.concatenate(bodies + fragments)
    parts = sorted((_truth(body) for body in bodies), key=lambda part: -part.faces)
    return Case(
        name="bodies",
        mesh=mesh,
        parts=parts,
        discarded_faces=sum(len(f.faces) for f in fragments),
        min_faces=100,
        components=6,
        watertight=True,
    )


def open_shell() -> Case:
    """A sphere with its top cut away (not watertight, no volume), and a
    closed sphere beside it."""
    sphere = trimesh.creation.icosphere(subdivisions=3, radius=4.0)
    keep = sphere.triangles_center[:, 2] < 2.0
    cup = trimesh.Trimesh(sphere.vertices, sphere.faces[keep], process=False)
    cup.remove_unreferenced_vertices()
    ball = _place(trimesh.creation.icosphere(subdivisions=2, radius=2.0), (15, 0, 0))
    mesh = trimesh.util.concatenate([cup, ball])
    parts = sorted([_truth(cup), _truth(ball)], key=lambda part: -part.faces)
    return Case(
        name="open-shell",
        mesh=mesh,
        parts=parts,
        discarded_faces=0,
        min_faces=50,
        components=2,
        watertight=False,
    )


# (x, y, width, depth, height) in cells; footprints apart and off the edge.
BUMPS = ((2, 2, 5, 4, 2.0), (10, 2, 3, 3, 1.0), (2, 9, 8, 5, 3.0), (13, 9, 2, 2, 1.5))


def terraced(
    bumps: tuple[tuple[int, int, int, int, float], ...] = BUMPS,
    size: tuple[int, int] = (17, 16),
    thickness: float = 2.0,
) -> tuple[Case, np.ndarray]:
    """A closed plate whose top carries `bumps`, rectangular blocks joined to
    it along sharp concave creases (vertical walls). Truth: one region per
    bump (its top and walls) and one for the plate (top, sides, bottom);
    also each face's region (0 = plate, b = bump b)."""
    nx, ny = size
    vertices: list[tuple[float, float, float]] = []
    index: dict[tuple[str, int, int, int], int] = {}

    def vertex(kind: str, bump: int, i: int, j: int, z: float) -> int:
        key = (kind, bump, i, j)
        if key not in index:
            index[key] = len(vertices)
            vertices.append((float(i), float(j), z))
        return index[key]

    def owner(i: int, j: int) -> int:
        for number, (x, y, w, d, _) in enumerate(bumps, start=1):
            if x <= i < x + w and y <= j < y + d:
                return number
        return 0

    faces: list[tuple[int, int, int]] = []
    region: list[int] = []

    def quad(a: int, b: int, c: int, d: int, label: int) -> None:
        faces.extend([(a, b, c), (a, c, d)])
        region.extend([label, label])

    for i in range(nx):
        for j in range(ny):
            number = owner(i, j)
            if number:
                h = bumps[number - 1][4]
                corners = [vertex("r", number, i + di, j + dj, h) for di, dj in _CCW]
            else:
                corners = [vertex("t", 0, i + di, j + dj, 0.0) for di, dj in _CCW]
            quad(*corners, number)
            bottom = [vertex("b", 0, i + di, j + dj, -thickness) for di, dj in _CCW]
            quad(bottom[0], bottom[3], bottom[2], bottom[1], 0)
    for number, (x, y, w, d, h) in enumerate(bumps, start=1):
        for p, q in _ring(x, y, w, d):
            quad(
                vertex("t", 0, *p, 0.0),
                vertex("t", 0, *q, 0.0),
                vertex("r", number, *q, h),
                vertex("r", number, *p, h),
                number,
            )
    for p, q in _ring(0, 0, nx, ny):
        quad(
            vertex("b", 0, *p, -thickness),
            vertex("b", 0, *q, -thickness),
            vertex("t", 0, *q, 0.0),
            vertex("t", 0, *p, 0.0),
            0,
        )
    mesh = trimesh.Trimesh(np.array(vertices), np.array(faces), process=False)
    labels = np.array(region)
    parts = []
    for number in range(len(bumps) + 1):
        chosen = labels == number
        parts.append(
            Part(
                faces=int(chosen.sum()),
                surface_area=float(mesh.area_faces[chosen].sum()),
                volume=None,
                watertight=False,
            )
        )
    parts.sort(key=lambda part: -part.faces)
    case = Case(
        name="terraced",
        mesh=mesh,
        parts=parts,
        discarded_faces=0,
        min_faces=1,
        components=1,
        watertight=True,
    )
    return case, labels


_CCW = ((0, 0), (1, 0), (1, 1), (0, 1))


def _ring(x: int, y: int, w: int, d: int) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """Unit edges around a rectangle, counter-clockwise seen from above."""
    points = (
        [(x + k, y) for k in range(w)]
        + [(x + w, y + k) for k in range(d)]
        + [(x + w - k, y + d) for k in range(w)]
        + [(x, y + d - k) for k in range(d)]
    )
    return [(points[k], points[(k + 1) % len(points)]) for k in range(len(points))]
