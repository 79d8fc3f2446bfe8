"""An S3 server (moto) on loopback for the storage and direct-upload tests."""

from __future__ import annotations

import os
import socket
from collections.abc import Iterator

import pytest

from backend.kit.storage import S3Storage


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def moto_endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()


def s3_storage(endpoint: str) -> S3Storage:
    """A backend on a fresh bucket of the moto server (call `ensure_bucket`)."""
    return S3Storage(
        bucket=f"bucket-{os.urandom(4).hex()}",
        endpoint_url=endpoint,
        region="us-east-1",
        access_key_id="testing",
        secret_access_key="testing",
        prefix="dossier",
    )
