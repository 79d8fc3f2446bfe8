"""Untrusted files: ZIP containers (DOCX) are checked before a parser sees
them: member count, uncompressed size, compression ratio."""

from __future__ import annotations

import io
import zipfile
from typing import Any

import pytest

from backend.kit.archive import ArchiveLimits, UnsafeArchive, check_archive

MIB = 1024 * 1024


def docx_bomb(inflated_mib: int = 40) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("_rels/.rels", "<Relationships/>")
        archive.writestr("word/document.xml", b"\0" * (inflated_mib * MIB))
    return buffer.getvalue()


def test_archive_checks_members_sizes_and_ratio(tmp_path: Any) -> None:
    bomb = tmp_path / "bomb.docx"
    bomb.write_bytes(docx_bomb(8))
    assert bomb.stat().st_size < MIB // 10
    with pytest.raises(UnsafeArchive, match="decompression bomb"):
        check_archive(bomb, ArchiveLimits())
    with_many = tmp_path / "many.zip"
    with zipfile.ZipFile(with_many, "w") as archive:
        for index in range(30):
            archive.writestr(f"m{index}.txt", "x")
    check_archive(with_many, ArchiveLimits())
    with pytest.raises(UnsafeArchive, match="members"):
        check_archive(with_many, ArchiveLimits(max_members=20))
    with pytest.raises(UnsafeArchive, match="uncompressed"):
        check_archive(with_many, ArchiveLimits(max_uncompressed_bytes=10))
    junk = tmp_path / "junk.docx"
    junk.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(UnsafeArchive, match="not a readable ZIP"):
        check_archive(junk, ArchiveLimits())
