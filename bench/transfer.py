"""One large HTTP/1.1 transfer over a blocking socket, for the MB/s scenarios.

An HTTP client library costs more CPU per megabyte than the server it would
measure: httpx on Python 3.11 copies a 100 MB request body twice in asyncio's
transport before sending it, and reads a response through h11 in 64 KiB
pieces with several Python calls each (`--profile`-style samples of the bench
process: about 0.2 s of client copying per 100 MB upload, and the client, not
the server, saturated during downloads). Here the body goes out as 1 MiB
`sendall`s of a memoryview and comes back through `recv_into` one reused
1 MiB buffer, so the server is what the figure measures.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

PIECE = 1024 * 1024


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes  # empty when the body was only counted
    size: int  # bytes of body received


def _connect(url: str) -> tuple[socket.socket, str]:
    parts = urlsplit(url)
    host, port = parts.hostname or "127.0.0.1", parts.port or 80
    return socket.create_connection((host, port)), f"{host}:{port}"


def _head(method: str, path: str, host: str, headers: Mapping[str, str]) -> bytes:
    lines = [f"{method} {path} HTTP/1.1", f"Host: {host}", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


def _answer(sock: socket.socket, *, keep_body: bool) -> Answer:
    buffer = bytearray(PIECE)
    view = memoryview(buffer)
    received = bytearray()
    while b"\r\n\r\n" not in received:
        n = sock.recv_into(view)
        if not n:
            raise ConnectionError("the server closed the connection before answering")
        received += view[:n]
    head, _, rest = bytes(received).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name.strip().lower()] = value.strip()
    if "content-length" not in headers:
        raise ConnectionError(f"no Content-Length in the answer: {head[:300]!r}")
    length = int(headers["content-length"])
    body = bytearray(rest) if keep_body else bytearray()
    size = len(rest)
    while size < length:
        n = sock.recv_into(view)
        if not n:
            raise ConnectionError(f"the answer ended after {size} of {length} bytes")
        size += n
        if keep_body:
            body += view[:n]
    return Answer(int(lines[0].split(" ", 2)[1]), headers, bytes(body), size)


def upload(
    url: str,
    path: str,
    headers: Mapping[str, str],
    *,
    field: str,
    filename: str,
    content_type: str,
    data: bytes,
) -> Answer:
    """POST `data` as the one file part `field` of a multipart/form-data body."""
    boundary = uuid.uuid4().hex
    opening = (
        f"--{boundary}\r\n"
        f'Content-Disposition: form-data; name="{field}"; filename="{filename}"\r\n'
        f"Content-Type: {content_type}\r\n\r\n"
    ).encode()
    closing = f"\r\n--{boundary}--\r\n".encode()
    sock, host = _connect(url)
    with sock:
        all_headers = {
            **headers,
            "Content-Type": f"multipart/form-data; boundary={boundary}",
            "Content-Length": str(len(opening) + len(data) + len(closing)),
        }
        sock.sendall(_head("POST", path, host, all_headers) + opening)
        view = memoryview(data)
        for start in range(0, len(data), PIECE):
            sock.sendall(view[start : start + PIECE])
        sock.sendall(closing)
        return _answer(sock, keep_body=True)


def download(url: str, path: str, headers: Mapping[str, str]) -> Answer:
    """GET `path`, counting the body's bytes without keeping them."""
    sock, host = _connect(url)
    with sock:
        sock.sendall(_head("GET", path, host, headers))
        return _answer(sock, keep_body=False)
