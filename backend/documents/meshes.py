"""What a 3-D mesh file is, from its bytes (documents accept meshes, typed
by content like every upload): binary or ASCII STL, binary or ASCII PLY,
OBJ or glTF binary (GLB).

`sniff(head)` decides from the first bytes of a stream; `confirm(kind, head,
size)` checks what only the whole size can tell (a binary STL is exactly
84 + 50·n bytes for its n triangles, a GLB's header states its length).
Nothing here parses geometry: the scans workload does that, in a sandboxed
child process.
"""

from __future__ import annotations

import re
import struct
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

STL = "model/stl"
PLY = "model/ply"
OBJ = "model/obj"
GLB = "model/gltf-binary"
MESH_MIME_TYPES = (STL, PLY, OBJ, GLB)
# Names clients use for the same types.
MESH_ALIASES = {
    "application/sla": STL,
    "application/vnd.ms-pki.stl": STL,
    "model/x.stl-binary": STL,
    "model/x.stl-ascii": STL,
    "application/ply": PLY,
    "text/plain+ply": PLY,
    "application/x-tgif": OBJ,
    "model/x-obj": OBJ,
}

HEAD_BYTES = 8192
_BINARY_STL_HEADER = 84
_BINARY_STL_TRIANGLE = 50
# Bytes that never occur in text (tab, LF, FF, CR and escape allowed, as
# for plain-text documents).
_CONTROL = bytes(set(range(0x20)) - {0x09, 0x0A, 0x0C, 0x0D, 0x1B}) + b"\x7f"
_PLY_FORMAT = re.compile(
    rb"^format\s+(ascii|binary_little_endian|binary_big_endian)\s+1\.0\s*$", re.M
)
_STL_FACET = re.compile(rb"\bfacet\s+normal\b", re.I)
_OBJ_KEYWORDS = frozenset(
    b"v vt vn vp f l p o g s mtllib usemtl cstype deg curv curv2 surf parm trim hole "
    b"scrv sp end con mg bevel c_interp d_interp lod maplib usemap shadow_obj trace_obj "
    b"ctech stech".split()
)
_NUMBER = re.compile(rb"^[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?$")


class MeshFormat(StrEnum):
    stl = "stl"
    ply = "ply"
    obj = "obj"
    glb = "glb"

    @property
    def mime_type(self) -> str:
        return {"stl": STL, "ply": PLY, "obj": OBJ, "glb": GLB}[self.value]

    @property
    def extension(self) -> str:
        return f".{self.value}"


@dataclass(frozen=True, slots=True)
class MeshKind:
    format: MeshFormat
    binary: bool

    @property
    def mime_type(self) -> str:
        return self.format.mime_type

    @property
    def name(self) -> str:
        """`stl-binary`, `stl-ascii`, `ply-binary`, `ply-ascii`, `obj`, `glb`."""
        if self.format in (MeshFormat.obj, MeshFormat.glb):
            return self.format.value
        return f"{self.format.value}-{'binary' if self.binary else 'ascii'}"


def _is_text(data: bytes) -> bool:
    return data.translate(None, _CONTROL) == data


def _complete_lines(head: bytes) -> list[bytes]:
    lines = head.splitlines()
    if lines and not head.endswith((b"\n", b"\r")) and len(head) >= HEAD_BYTES:
        lines.pop()  # cut off mid-line
    return lines


def _looks_like_obj(head: bytes) -> bool:
    vertices = 0
    for raw in _complete_lines(head):
        line = raw.strip()
        if not line or line.startswith(b"#"):
            continue
        tokens = line.split()
        if tokens[0] not in _OBJ_KEYWORDS:
            return False
        if tokens[0] == b"v":
            if len(tokens) < 4 or not all(_NUMBER.match(t) for t in tokens[1:4]):
                return False
            vertices += 1
    return vertices > 0


def sniff(head: bytes) -> MeshKind | None:
    """The mesh kind the first bytes announce, or None. A binary STL has no
    magic: a binary head of at least 84 bytes is a candidate, which
    `confirm` accepts only if the size matches its triangle count."""
    if head[:4] == b"glTF" and len(head) >= 12 and struct.unpack_from("<I", head, 4)[0] == 2:
        return MeshKind(MeshFormat.glb, True)
    if head.startswith((b"ply\n", b"ply\r\n")):
        match = _PLY_FORMAT.search(head)
        if match is None:
            return None
        return MeshKind(MeshFormat.ply, match.group(1) != b"ascii")
    if _is_text(head):
        if head.lstrip()[:5].lower() == b"solid" and _STL_FACET.search(head):
            return MeshKind(MeshFormat.stl, False)
        if _looks_like_obj(head):
            return MeshKind(MeshFormat.obj, False)
        return None
    if len(head) >= _BINARY_STL_HEADER:
        return MeshKind(MeshFormat.stl, True)
    return None


def binary_stl_triangles(head: bytes) -> int:
    return int(struct.unpack_from("<I", head, 80)[0])


def confirm(kind: MeshKind, head: bytes, size: int) -> bool:
    """What the whole size tells: a binary STL is 84 + 50·n bytes for its n
    (> 0) triangles; a GLB is as long as its header says."""
    if kind.format is MeshFormat.stl and kind.binary:
        if len(head) < _BINARY_STL_HEADER:
            return False
        count = binary_stl_triangles(head)
        return count > 0 and size == _BINARY_STL_HEADER + _BINARY_STL_TRIANGLE * count
    if kind.format is MeshFormat.glb:
        return len(head) >= 12 and struct.unpack_from("<I", head, 8)[0] == size
    return True


def detect(head: bytes, size: int) -> MeshKind | None:
    """`sniff` and `confirm` together, for a file whose size is known."""
    kind = sniff(head)
    return kind if kind is not None and confirm(kind, head, size) else None


def detect_file(path: Path) -> MeshKind | None:
    with path.open("rb") as handle:
        head = handle.read(HEAD_BYTES)
    return detect(head, path.stat().st_size)
