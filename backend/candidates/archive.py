"""ZIP archives of CVs: checked as a whole before anything is stored, then read
entry by entry.

The central directory is read first (no entry is decompressed) and the
archive is refused when it would unpack to more than `max_total_bytes`
(413 `payload_too_large`), holds more than `max_entries` files, or any entry
(or the whole) compresses better than `max_ratio` to 1 (422
`validation_error`): the usual marks of a zip bomb. The declared sizes cannot
be used to lie past the check: `zipfile` stops an entry at its declared size
and verifies its CRC, so an entry that inflates further fails on its own.

Folders are flattened into paths (`cvs/2026/jane.pdf`); directory entries,
hidden files and the `__MACOSX` resource forks are skipped; encrypted entries,
archives inside the archive and unsafe paths become per-item errors.
"""

from __future__ import annotations

import posixpath
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO

from backend.kit.errors import PayloadTooLarge, ValidationFailed

ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")
READ_CHUNK = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ArchiveEntry:
    path: str  # inside the archive, folders included
    size: int
    error: str | None = None  # why the entry is not imported

    @property
    def filename(self) -> str:
        return posixpath.basename(self.path)


def is_zip(head: bytes) -> bool:
    return head.startswith(ZIP_MAGIC)


def _skipped(path: str) -> bool:
    parts = path.split("/")
    return (
        parts[0] == "__MACOSX"
        or any(part.startswith(".") and part not in {".", ".."} for part in parts)
        or (parts[-1] in {"Thumbs.db", "desktop.ini"})
    )


def inspect(
    archive: zipfile.ZipFile, *, max_total_bytes: int, max_entries: int, max_ratio: int
) -> list[tuple[zipfile.ZipInfo, ArchiveEntry]]:
    """The entries to import, or a refusal of the whole archive."""
    files = [info for info in archive.infolist() if not info.is_dir()]
    if len(files) > max_entries:
        raise ValidationFailed(
            f"The archive holds {len(files)} files; at most {max_entries} are imported at once"
        )
    total = sum(info.file_size for info in files)
    if total > max_total_bytes:
        raise PayloadTooLarge(
            f"The archive unpacks to {total} bytes; the limit is {max_total_bytes} bytes"
        )
    compressed = sum(info.compress_size for info in files)
    for info in files:
        if info.file_size > max_ratio * max(info.compress_size, 1):
            raise ValidationFailed(
                f"The archive entry {info.filename!r} is compressed more than {max_ratio}:1 "
                "and is refused as a possible zip bomb"
            )
    if total > max_ratio * max(compressed, 1):
        raise ValidationFailed(f"The archive is compressed more than {max_ratio}:1")
    entries = []
    for info in files:
        path = info.filename.replace("\\", "/")
        if _skipped(path):
            continue
        normal = posixpath.normpath(path)
        error = None
        if normal.startswith(("/", "../")) or normal == "..":
            error = "The entry's path leaves the archive"
        elif info.flag_bits & 0x1:
            error = "The entry is encrypted"
        elif normal.lower().endswith(".zip"):
            error = "Archives inside an archive are not imported"
        elif info.file_size == 0:
            error = "The entry is empty"
        entries.append((info, ArchiveEntry(normal, info.file_size, error)))
    return entries


def open_archive(file: IO[bytes]) -> zipfile.ZipFile:
    try:
        return zipfile.ZipFile(file)
    except (zipfile.BadZipFile, OSError) as exc:
        raise ValidationFailed("The file is not a readable ZIP archive") from exc


def read_entry(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> Iterator[bytes]:
    """An entry's bytes in chunks (stopping at the declared size, CRC checked)."""
    with archive.open(info) as member:
        while chunk := member.read(READ_CHUNK):
            yield chunk
