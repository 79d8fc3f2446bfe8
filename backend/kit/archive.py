"""ZIP containers (DOCX, XLSX, ZIP uploads) checked before a parser sees them.

The central directory is read (it is small and bounded by the file's size)
and refused when it declares too many members, too many uncompressed bytes
in all, or a member whose compression ratio only a decompression bomb has.
The declared sizes are what a parser would inflate to; a member lying about
its size is caught by zlib's own length check while it is read.
"""

from __future__ import annotations

import zipfile
from dataclasses import dataclass
from pathlib import Path

from backend.settings import Settings


@dataclass(frozen=True, slots=True)
class ArchiveLimits:
    max_members: int = 10_000
    max_uncompressed_bytes: int = 512 * 1024 * 1024
    max_ratio: int = 100


def archive_limits(settings: Settings) -> ArchiveLimits:
    """`ARCHIVE_MAX_MEMBERS`, `ARCHIVE_MAX_UNCOMPRESSED_BYTES`, `ARCHIVE_MAX_RATIO`."""
    return ArchiveLimits(
        max_members=settings.archive_max_members,
        max_uncompressed_bytes=settings.archive_max_uncompressed_bytes,
        max_ratio=settings.archive_max_ratio,
    )


class UnsafeArchive(ValueError):
    """The archive is malformed or exceeds its limits."""


def check_archive(path: Path, limits: ArchiveLimits) -> None:
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise UnsafeArchive(f"not a readable ZIP container: {exc}") from None
    if len(members) > limits.max_members:
        raise UnsafeArchive(f"{len(members)} members (at most {limits.max_members})")
    total = 0
    for member in members:
        total += member.file_size
        if total > limits.max_uncompressed_bytes:
            raise UnsafeArchive(
                f"more than {limits.max_uncompressed_bytes} bytes once uncompressed"
            )
        if member.file_size > 1024 * 1024 and (
            member.compress_size == 0 or member.file_size / member.compress_size > limits.max_ratio
        ):
            raise UnsafeArchive(
                f"{member.filename!r} expands {member.file_size // max(member.compress_size, 1)}"
                f"-fold (at most {limits.max_ratio}): a decompression bomb"
            )
