"""The scans engine on generated meshes with known truth, in all six
encodings: type detection, analysis, both segmentation methods, conversion,
and the sandboxed child process."""

from __future__ import annotations

import math
import struct
import time
from pathlib import Path

import numpy as np
import pytest
import trimesh

from backend.documents.meshes import HEAD_BYTES, MeshFormat, detect, sniff
from backend.scans import sandbox
from backend.scans.analysis import read_mesh
from backend.scans.conversion import write
from backend.scans.pipeline import analyze_file
from backend.scans.segmentation import Mesh, MeshError, merge_vertices, segment, submesh
from tests.scans.meshes import ENCODINGS, MIME, Case, disjoint_bodies, encode, open_shell, terraced

CASES = {
    "bodies": disjoint_bodies(),
    "open-shell": open_shell(),
    "terraced": terraced()[0],
}


def _file(tmp_path: Path, case: Case, encoding: str) -> Path:
    path = tmp_path / f"{case.name}.{encoding}"
    path.write_bytes(encode(case.mesh, encoding))
    return path


def _distinct_positions(mesh: trimesh.Trimesh) -> int:
    return len(np.unique(np.float32(mesh.vertices), axis=0))


def _close(actual: float, expected: float, rel: float = 2e-4) -> bool:
    return math.isclose(actual, expected, rel_tol=rel, abs_tol=1e-4)


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_detects_each_encoding_by_content(tmp_path: Path, name: str, encoding: str) -> None:
    data = encode(CASES[name].mesh, encoding)
    kind = detect(data[:HEAD_BYTES], len(data))
    assert kind is not None
    assert kind.name == encoding
    assert kind.mime_type == MIME[encoding]


def test_binary_stl_needs_its_exact_size_and_other_bytes_are_not_meshes() -> None:
    data = encode(CASES["bodies"].mesh, "stl-binary")
    assert detect(data[:HEAD_BYTES], len(data)) is not None
    assert detect(data[:HEAD_BYTES], len(data) - 50) is None  # truncated
    assert detect(data[:HEAD_BYTES], len(data) + 1) is None  # trailing junk
    # A binary header that starts with "solid" (as some exporters write) is
    # still binary: the bytes after it are not text.
    solid_header = b"solid exported by a scanner".ljust(80, b" ") + data[80:]
    kind = detect(solid_header[:HEAD_BYTES], len(solid_header))
    assert kind is not None
    assert kind.name == "stl-binary"
    glb = encode(CASES["bodies"].mesh, "glb")
    assert detect(glb[:HEAD_BYTES], len(glb) + 4) is None  # GLB length disagrees
    for other in (
        b"%PDF-1.7\n" + bytes(200),
        b"plain words, nothing else\n" * 10,
        b"solid but no facets here\nendsolid\n",
        b"ply\nformat nonsense 1.0\nend_header\n",
        b"v 1 2\nf 1 2 3\n",  # a vertex needs three coordinates
        bytes(range(256)) * 3,  # binary, but 768 bytes is no 84 + 50n
    ):
        assert detect(other[:HEAD_BYTES], len(other)) is None, other[:20]
    assert sniff(b"\x00" * 40) is None  # too short for an STL header


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("name", sorted(CASES))
def test_analysis_measures_the_mesh(tmp_path: Path, name: str, encoding: str) -> None:
    case = CASES[name]
    result = analyze_file(str(_file(tmp_path, case, encoding)))
    truth = case.mesh
    assert result["format"] == encoding
    assert result["faces"] == len(truth.faces)
    assert result["vertices"] == _distinct_positions(truth)
    assert result["watertight"] is case.watertight
    assert result["components"] == case.components
    assert _close(result["surface_area"], truth.area)
    if case.watertight:
        assert _close(result["volume"], truth.volume)
    else:
        assert result["volume"] is None
    for got, want in zip(result["bounds"]["min"], truth.bounds[0], strict=True):
        assert _close(got, want)
    for got, want in zip(result["extents"], truth.extents, strict=True):
        assert _close(got, want)


@pytest.mark.parametrize("encoding", ENCODINGS)
@pytest.mark.parametrize("name", ["bodies", "open-shell"])
def test_components_match_the_bodies(tmp_path: Path, name: str, encoding: str) -> None:
    case = CASES[name]
    _, mesh = read_mesh(_file(tmp_path, case, encoding))
    result = segment(mesh, "components", min_faces=case.min_faces)
    assert [part.faces for part in result.parts] == [part.faces for part in case.parts]
    assert result.discarded_faces == case.discarded_faces
    for got, want in zip(result.parts, case.parts, strict=True):
        assert got.watertight is want.watertight
        assert _close(got.surface_area, want.surface_area)
        if want.volume is None:
            assert got.volume is None
        else:
            assert got.volume is not None
            assert _close(got.volume, want.volume)
        assert want.bounds is not None
        assert want.centroid is not None
        for axis in range(3):
            assert _close(got.bounds["min"][axis], want.bounds[0][axis])
            assert _close(got.bounds["max"][axis], want.bounds[1][axis])
            assert abs(got.centroid[axis] - want.centroid[axis]) < 1e-3


@pytest.mark.parametrize("encoding", ENCODINGS)
def test_curvature_separates_the_bumps_along_their_creases(tmp_path: Path, encoding: str) -> None:
    case = CASES["terraced"]
    _, mesh = read_mesh(_file(tmp_path, case, encoding))
    result = segment(mesh, "curvature", min_faces=1, crease_angle=30)
    assert [part.faces for part in result.parts] == [part.faces for part in case.parts]
    assert result.discarded_faces == 0
    for got, want in zip(result.parts, case.parts, strict=True):
        assert _close(got.surface_area, want.surface_area)
        assert got.volume is None
        assert got.watertight is False
    assert result.params == {"min_faces": 1, "crease_angle": 30}


def test_curvature_regions_are_exactly_the_truth(tmp_path: Path) -> None:
    case, labels = terraced()
    _, mesh = read_mesh(_file(tmp_path, case, "ply-binary"))  # keeps the face order
    result = segment(mesh, "curvature", min_faces=1, crease_angle=30)
    found = sorted(sorted(part.face_indices.tolist()) for part in result.parts)
    truth = sorted(sorted(np.flatnonzero(labels == k).tolist()) for k in range(labels.max() + 1))
    assert found == truth
    # A crease angle above the walls' 90 degrees joins everything again; the
    # smallest bump (24 faces) falls under min_faces=30.
    assert len(segment(mesh, "curvature", crease_angle=95, min_faces=1).parts) == 1
    fewer = segment(mesh, "curvature", crease_angle=30, min_faces=30)
    assert len(fewer.parts) == len(case.parts) - 1
    assert fewer.discarded_faces == case.parts[-1].faces


def test_curvature_keeps_convex_bodies_whole() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=3)
    box = trimesh.creation.box().subdivide()
    for body in (sphere, box):
        mesh = merge_vertices(body.vertices, body.faces)
        result = segment(mesh, "curvature", min_faces=1, crease_angle=10)
        assert [part.faces for part in result.parts] == [len(body.faces)]


def test_merge_joins_duplicate_vertices_of_a_triangle_soup() -> None:
    box = trimesh.creation.box()
    soup = box.vertices[box.faces].reshape(-1, 3)
    soup[0] = -0.0 * soup[0] + soup[0]  # same position, maybe signed zeros
    mesh = merge_vertices(soup)
    assert len(mesh.vertices) == 8
    assert len(mesh.faces) == 12
    assert len(segment(mesh, "components", min_faces=1).parts) == 1


@pytest.mark.parametrize("target", list(MeshFormat))
def test_conversion_writes_files_that_load_back(tmp_path: Path, target: MeshFormat) -> None:
    case = CASES["bodies"]
    _, mesh = read_mesh(_file(tmp_path, case, "stl-binary"))
    part = segment(mesh, "components", min_faces=100).parts[1]
    piece = submesh(mesh, part.face_indices)
    path = tmp_path / f"part{target.extension}"
    size = write(piece, target, path)
    assert size == path.stat().st_size > 0
    kind, loaded = read_mesh(path)
    assert kind.format is target
    assert len(loaded.faces) == part.faces
    assert len(loaded.vertices) == part.vertices


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (
            b"ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nproperty float y\n"
            b"property float z\nelement face 1\nproperty list uchar int vertex_indices\n"
            b"end_header\n0 0 0\n1 0 0\n0 1 0\n3 0 1 7\n",
            "vertex",
        ),
        (
            b"\x00" * 80 + struct.pack("<I", 1) + struct.pack("<12fH", *([float("nan")] * 12), 0),
            "finite",
        ),
        (b"v 0 0 0\nv 1 0 0\nv 0 1 0\n", "no triangles"),
    ],
)
def test_broken_files_fail_with_a_clear_error(tmp_path: Path, data: bytes, message: str) -> None:
    path = tmp_path / "broken"
    path.write_bytes(data)
    with pytest.raises(MeshError, match=message):
        read_mesh(path)


def test_the_face_limit_is_checked_before_reading() -> None:
    mesh = Mesh(np.zeros((3, 3)), np.zeros((5, 3), dtype=np.int32))
    with pytest.raises(MeshError, match="limit is 4"):
        mesh.validate(max_faces=4)


def test_sandbox_runs_the_analysis_and_reports_errors_and_limits(tmp_path: Path) -> None:
    limits = sandbox.Limits(memory_bytes=1 << 30, cpu_seconds=60)
    path = _file(tmp_path, CASES["bodies"], "stl-binary")
    outcome = sandbox.run_sync("backend.scans.pipeline:analyze_file", str(path), limits=limits)
    assert outcome.result["faces"] == len(CASES["bodies"].mesh.faces)
    assert outcome.peak_rss_bytes > 0
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"not a mesh at all\n")
    with pytest.raises(sandbox.SandboxError, match="not an STL, PLY, OBJ or GLB") as failed:
        sandbox.run_sync("backend.scans.pipeline:analyze_file", str(junk), limits=limits)
    assert failed.value.kind == "MeshError"
    # 1M triangles in 50 MB of STL cannot be merged in 8 MB of extra memory.
    big = tmp_path / "big.stl"
    count = 1_000_000
    with big.open("wb") as handle:
        handle.write(bytes(80) + struct.pack("<I", count))
        rng = np.random.default_rng(0)
        records = np.zeros(count, dtype=[("n", "<f4", 3), ("v", "<f4", 9), ("a", "<u2")])
        records["v"] = rng.random((count, 9), dtype=np.float32)
        handle.write(records.tobytes())
    tight = sandbox.Limits(memory_bytes=8 << 20, cpu_seconds=60)
    with pytest.raises(sandbox.SandboxError) as limited:
        sandbox.run_sync("backend.scans.pipeline:analyze_file", str(big), limits=tight)
    assert limited.value.kind in {"MemoryError", "killed"}


def test_components_of_a_large_mesh_are_vectorised() -> None:
    sphere = trimesh.creation.icosphere(subdivisions=6)  # 81,920 faces
    copies = [sphere.vertices + np.array([3.0 * k, 0, 0]) for k in range(4)]
    vertices = np.concatenate(copies)
    faces = np.concatenate([sphere.faces + k * len(sphere.vertices) for k in range(4)])
    started = time.perf_counter()
    mesh = merge_vertices(vertices[faces].reshape(-1, 3))
    result = segment(mesh, "components", min_faces=100)
    elapsed = time.perf_counter() - started
    assert [part.faces for part in result.parts] == [len(sphere.faces)] * 4
    assert all(part.watertight for part in result.parts)
    print(f"\ncomponents of {len(faces):,} faces (from a soup): {elapsed:.2f} s")
    assert elapsed < 5
