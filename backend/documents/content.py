"""What an uploaded stream is: its type from magic bytes, checked while it
streams (size, limit), and a safe filename. The sha256 is the storage's: it
hashes the bytes as it writes them."""

from __future__ import annotations

import codecs
import re
import unicodedata
from collections.abc import AsyncIterable, AsyncIterator, Callable

from backend.documents import meshes
from backend.kit.errors import DossierError, PayloadTooLarge, UnsupportedMediaType
from backend.kit.http import TEXT

PDF = "application/pdf"
PNG = "image/png"
JPEG = "image/jpeg"
TIFF = "image/tiff"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"

# Names clients use for the same types.
_ALIASES = {
    "image/jpg": JPEG,
    "image/pjpeg": JPEG,
    "image/x-png": PNG,
    "image/tif": TIFF,
    **meshes.MESH_ALIASES,
}
# Claims that say nothing about the type.
_UNSPECIFIC = {"", "application/octet-stream", "binary/octet-stream", "application/unknown"}

HEAD_BYTES = 8192
TAIL_BYTES = 64 * 1024
# Control characters allowed in plain text: tab, newline, carriage return, form feed, escape.
_TEXT_CONTROL = bytes(set(range(0x20)) - {0x09, 0x0A, 0x0C, 0x0D, 0x1B}) + b"\x7f"


class EmptyFile(DossierError):
    status, code = 400, "empty_file"


def normalise_type(value: str | None) -> str:
    media = (value or "").split(";", 1)[0].strip().lower()
    return _ALIASES.get(media, media)


def sniff(head: bytes) -> str | None:
    """The type the first bytes announce, before the whole stream is seen
    (a binary STL or a GLB is confirmed by its size at the end)."""
    if head.startswith(b"%PDF-"):
        return PDF
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith((b"II*\x00", b"MM\x00*")):
        return TIFF
    if head.startswith(b"PK\x03\x04"):
        return DOCX  # confirmed by the zip central directory at the end
    mesh = meshes.sniff(head)
    if mesh is not None:
        return mesh.mime_type
    if head and not any(byte in _TEXT_CONTROL for byte in head):
        try:
            codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        except UnicodeDecodeError:
            return None
        return TEXT
    return None


def sanitise_filename(raw: str | None, fallback: str = "upload") -> str:
    """No path parts, no control or format characters, at most 255 bytes."""
    name = unicodedata.normalize("NFC", raw or "")
    name = re.split(r"[\\/]", name)[-1]
    name = "".join(ch for ch in name if unicodedata.category(ch)[0] not in ("C",))
    name = re.sub(r"\s+", " ", name).strip().lstrip(".").strip()
    if not name:
        name = fallback
    if len(name.encode()) > 255:
        stem, dot, ext = name.rpartition(".")
        ext = f".{ext}" if dot and 0 < len(ext.encode()) <= 16 else ""
        stem = stem if ext else name
        budget = 255 - len(ext.encode())
        stem = stem.encode()[:budget].decode("utf-8", "ignore")
        name = stem + ext
    return name


class InspectedStream:
    """Wraps a byte stream: counts and type-checks while passing the bytes
    through to storage. Raises (413/415/400) the moment a rule breaks.
    """

    def __init__(
        self,
        source: AsyncIterable[bytes],
        *,
        max_bytes: int,
        allowed_types: list[str],
        claimed_type: str | None,
        on_limit: Callable[[], DossierError] | None = None,
    ) -> None:
        self.source = source
        self.max_bytes = max_bytes
        self.allowed = set(allowed_types)
        self.claimed = normalise_type(claimed_type)
        self.on_limit = on_limit
        self.size = 0
        self.mime_type: str | None = None
        self._tail = b""
        self._head = b""
        self._mesh: meshes.MeshKind | None = None
        self._text_decoder: codecs.IncrementalDecoder | None = None

    def _decide(self, head: bytes) -> None:
        detected = sniff(head)
        if detected is None or detected not in self.allowed:
            raise UnsupportedMediaType("This file type is not accepted")
        if self.claimed not in _UNSPECIFIC and self.claimed != detected:
            raise UnsupportedMediaType(
                f"The file's content is {detected}, not the declared {self.claimed}"
            )
        self.mime_type = detected
        self._mesh = meshes.sniff(head) if detected in meshes.MESH_MIME_TYPES else None
        self._head = head[: meshes.HEAD_BYTES]
        if detected == TEXT:
            self._text_decoder = codecs.getincrementaldecoder("utf-8")()

    def _check_text(self, chunk: bytes, final: bool = False) -> None:
        assert self._text_decoder is not None
        try:
            self._text_decoder.decode(chunk, final=final)
        except UnicodeDecodeError:
            raise UnsupportedMediaType("Plain text must be UTF-8") from None
        if chunk.translate(None, _TEXT_CONTROL) != chunk:
            raise UnsupportedMediaType("Plain text must not contain binary bytes")

    def _take(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.max_bytes:
            raise (
                self.on_limit()
                if self.on_limit
                else PayloadTooLarge(f"The file is larger than {self.max_bytes} bytes")
            )
        if self.mime_type == DOCX:
            self._tail = (self._tail + chunk)[-TAIL_BYTES:]
        elif self._text_decoder is not None:
            self._check_text(chunk)

    async def __aiter__(self) -> AsyncIterator[bytes]:
        head = b""
        async for chunk in self.source:
            if not chunk:
                continue
            if self.mime_type is None:
                head += chunk
                if len(head) < HEAD_BYTES:
                    continue
                self._decide(head)
                chunk, head = head, b""
            self._take(chunk)
            yield chunk
        if self.mime_type is None:
            if not head:
                raise EmptyFile("The file is empty")
            self._decide(head)
            self._take(head)
            yield head
        if self._text_decoder is not None:
            self._check_text(b"", final=True)
        if self.mime_type == DOCX and b"word/document.xml" not in self._tail:
            raise UnsupportedMediaType("This file type is not accepted")
        if self._mesh is not None and not meshes.confirm(self._mesh, self._head, self.size):
            raise UnsupportedMediaType("This file type is not accepted")
