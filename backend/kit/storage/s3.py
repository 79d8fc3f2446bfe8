"""Blobs in an S3-compatible bucket (AWS S3, MinIO, Ceph RGW, Cloudflare R2,
…) through aioboto3.

A write is an S3 multipart upload: parts are sent as the stream arrives (at
most one part is held in memory), and the object only exists once
`CompleteMultipartUpload` runs, which `commit` does after the database
transaction commits; `discard` aborts the multipart upload, so a rolled-back
write leaves nothing in the bucket.
"""

from __future__ import annotations

import asyncio
import hashlib
from collections.abc import AsyncIterable, AsyncIterator
from contextlib import AsyncExitStack
from datetime import UTC, datetime, timedelta
from typing import Any

from backend.kit.storage.base import (
    DEFAULT_CHUNK_SIZE,
    BlobNotFound,
    StagedObject,
    Storage,
    StorageError,
    check_key,
)

# S3 needs every part but the last to be at least 5 MiB.
PART_SIZE = 8 * 1024 * 1024


def _is_missing(error: Exception) -> bool:
    response = getattr(error, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    return code in ("404", "NoSuchKey", "NotFound", "NoSuchUpload")


class S3Storage(Storage):
    name = "s3"

    def __init__(
        self,
        *,
        bucket: str,
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        prefix: str = "",
    ) -> None:
        self.bucket = bucket
        self.endpoint_url = endpoint_url
        self.region = region
        self.access_key_id = access_key_id
        self.secret_access_key = secret_access_key
        self.prefix = prefix.strip("/")
        self._stack: AsyncExitStack | None = None
        self._client: Any = None
        self._lock = asyncio.Lock()

    def object_key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    async def client(self) -> Any:
        if self._client is not None:
            return self._client
        async with self._lock:
            if self._client is None:
                import aioboto3
                from botocore.config import Config

                session = aioboto3.Session(
                    aws_access_key_id=self.access_key_id,
                    aws_secret_access_key=self.secret_access_key,
                    region_name=self.region or "us-east-1",
                )
                stack = AsyncExitStack()
                self._client = await stack.enter_async_context(
                    session.client(
                        "s3",
                        endpoint_url=self.endpoint_url,
                        config=Config(
                            s3={"addressing_style": "path"},
                            retries={"max_attempts": 3, "mode": "standard"},
                        ),
                    )
                )
                self._stack = stack
        return self._client

    async def close(self) -> None:
        if self._stack is not None:
            await self._stack.aclose()
        self._stack = None
        self._client = None

    async def ensure_bucket(self) -> None:
        client = await self.client()
        try:
            await client.head_bucket(Bucket=self.bucket)
        except Exception as error:
            if not _is_missing(error):
                raise StorageError("bucket not reachable") from error
            await client.create_bucket(Bucket=self.bucket)

    async def put_stream(
        self, key: str, chunks: AsyncIterable[bytes], *, content_type: str | None = None
    ) -> StagedObject:
        client = await self.client()
        name = self.object_key(key)
        extra = {"ContentType": content_type} if content_type else {}
        created = await client.create_multipart_upload(Bucket=self.bucket, Key=name, **extra)
        staged = StagedObject(key=key, size=0, content_type=content_type, token=created["UploadId"])
        buffer = bytearray()
        digest = hashlib.sha256()
        try:
            async for chunk in chunks:
                buffer += chunk
                staged.size += len(chunk)
                while len(buffer) >= PART_SIZE:
                    await self._send_part(client, staged, bytes(buffer[:PART_SIZE]), digest)
                    del buffer[:PART_SIZE]
            if buffer or not staged.parts:
                await self._send_part(client, staged, bytes(buffer), digest)
        except BaseException:
            await asyncio.shield(self.discard(staged))
            raise
        staged.sha256 = digest.hexdigest()
        return staged

    async def _send_part(self, client: Any, staged: StagedObject, data: bytes, digest: Any) -> None:
        await asyncio.to_thread(digest.update, data)
        number = len(staged.parts) + 1
        answer = await client.upload_part(
            Bucket=self.bucket,
            Key=self.object_key(staged.key),
            UploadId=staged.token,
            PartNumber=number,
            Body=data,
        )
        staged.parts.append({"PartNumber": number, "ETag": answer["ETag"]})

    async def commit(self, staged: StagedObject) -> None:
        if staged.stored:
            return
        client = await self.client()
        await client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.object_key(staged.key),
            UploadId=staged.token,
            MultipartUpload={"Parts": staged.parts},
        )

    async def discard(self, staged: StagedObject) -> None:
        if staged.stored:
            await self.delete(staged.key)
            return
        client = await self.client()
        try:
            await client.abort_multipart_upload(
                Bucket=self.bucket, Key=self.object_key(staged.key), UploadId=staged.token
            )
        except Exception as error:
            if not _is_missing(error):
                raise

    async def open_range(
        self,
        key: str,
        start: int = 0,
        end: int | None = None,
        *,
        chunk_size: int = DEFAULT_CHUNK_SIZE,
    ) -> AsyncIterator[bytes]:
        client = await self.client()
        extra: dict[str, str] = {}
        if start or end is not None:
            extra["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            answer = await client.get_object(Bucket=self.bucket, Key=self.object_key(key), **extra)
        except Exception as error:
            if _is_missing(error):
                raise BlobNotFound(key) from None
            raise
        body = answer["Body"]
        try:
            async for chunk in body.iter_chunks(chunk_size):
                yield chunk
        finally:
            body.close()

    async def size(self, key: str) -> int | None:
        client = await self.client()
        try:
            answer = await client.head_object(Bucket=self.bucket, Key=self.object_key(key))
        except Exception as error:
            if _is_missing(error):
                return None
            raise
        return int(answer["ContentLength"])

    async def delete(self, key: str) -> None:
        client = await self.client()
        await client.delete_object(Bucket=self.bucket, Key=self.object_key(key))

    # ------------------------------------------------- direct (presigned) uploads
    async def start_direct(self, key: str, content_type: str | None = None) -> str:
        """Begin a multipart upload whose parts clients `PUT` straight to the
        bucket (`part_urls`); answers its upload id."""
        client = await self.client()
        extra = {"ContentType": content_type} if content_type else {}
        created = await client.create_multipart_upload(
            Bucket=self.bucket, Key=self.object_key(key), **extra
        )
        return str(created["UploadId"])

    async def part_urls(
        self, key: str, upload_id: str, part_count: int, expires_in: int
    ) -> list[str]:
        """Presigned `PUT` URLs for parts 1..`part_count`, valid `expires_in` s."""
        client = await self.client()
        return [
            await client.generate_presigned_url(
                "upload_part",
                Params={
                    "Bucket": self.bucket,
                    "Key": self.object_key(key),
                    "UploadId": upload_id,
                    "PartNumber": number,
                },
                ExpiresIn=expires_in,
            )
            for number in range(1, part_count + 1)
        ]

    async def find_direct(self, key: str) -> str | None:
        """The id of the unfinished direct upload to `key`, if there is one."""
        client = await self.client()
        name = self.object_key(key)
        answer = await client.list_multipart_uploads(Bucket=self.bucket, Prefix=name)
        for upload in answer.get("Uploads", []):
            if upload["Key"] == name:
                return str(upload["UploadId"])
        return None

    async def direct_parts(self, key: str, upload_id: str) -> dict[int, dict[str, Any]]:
        """The parts received so far: number → `{"ETag", "Size"}`."""
        client = await self.client()
        parts: dict[int, dict[str, Any]] = {}
        paginator = client.get_paginator("list_parts")
        async for page in paginator.paginate(
            Bucket=self.bucket, Key=self.object_key(key), UploadId=upload_id
        ):
            for part in page.get("Parts", []):
                parts[int(part["PartNumber"])] = {"ETag": part["ETag"], "Size": int(part["Size"])}
        return parts

    async def finish_direct(
        self, key: str, upload_id: str, parts: dict[int, dict[str, Any]]
    ) -> None:
        """Assemble the parts (checked by the caller) into the object at `key`."""
        client = await self.client()
        await client.complete_multipart_upload(
            Bucket=self.bucket,
            Key=self.object_key(key),
            UploadId=upload_id,
            MultipartUpload={
                "Parts": [
                    {"PartNumber": number, "ETag": parts[number]["ETag"]}
                    for number in sorted(parts)
                ]
            },
        )

    async def abort_direct(self, key: str, upload_id: str) -> None:
        await self.discard(StagedObject(key=key, size=0, token=upload_id))

    async def sweep_staging(self, older_than_seconds: float) -> int:
        """Aborts multipart uploads (S3's staged writes) begun before the cutoff."""
        client = await self.client()
        cutoff = datetime.now(UTC) - timedelta(seconds=older_than_seconds)
        removed = 0
        paginator = client.get_paginator("list_multipart_uploads")
        kwargs: dict[str, str] = {"Bucket": self.bucket}
        if self.prefix:
            kwargs["Prefix"] = f"{self.prefix}/"
        async for page in paginator.paginate(**kwargs):
            for upload in page.get("Uploads", []):
                if upload["Initiated"] < cutoff:
                    await client.abort_multipart_upload(
                        Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    removed += 1
        return removed
