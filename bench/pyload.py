"""A small HTTP/1.1 keep-alive load generator, for machines without wrk.

Run as `python -m bench.pyload < spec.json`; prints one JSON object. The spec:
`{"host", "port", "duration", "connections", "requests": [{"method", "path",
"headers", "body" (latin-1 text or null)}], "expected": [200]}`.

Raw asyncio streams, not an HTTP client library: it has to cost far less CPU
than the server it measures. Each connection sends one request at a time
(closed loop, like wrk) and records the latency of every response.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from typing import Any


def build_request(host: str, port: int, spec: dict[str, Any]) -> bytes:
    body = spec.get("body")
    payload = body.encode("latin-1") if body is not None else b""
    lines = [f"{spec.get('method', 'GET')} {spec['path']} HTTP/1.1", f"Host: {host}:{port}"]
    lines += [f"{name}: {value}" for name, value in (spec.get("headers") or {}).items()]
    if body is not None or spec.get("method", "GET") in ("POST", "PUT", "PATCH"):
        lines.append(f"Content-Length: {len(payload)}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + payload


async def read_response(reader: asyncio.StreamReader) -> tuple[int, bool]:
    """Reads one response; returns its status and whether the server keeps the connection."""
    head = await reader.readuntil(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, sep, value = line.partition(":")
        if sep:
            headers[name.strip().lower()] = value.strip()
    if "content-length" in headers:
        await reader.readexactly(int(headers["content-length"]))
    elif headers.get("transfer-encoding", "").lower() == "chunked":
        while True:
            size = int((await reader.readuntil(b"\r\n")).split(b";")[0], 16)
            await reader.readexactly(size + 2)
            if size == 0:
                break
    keep = headers.get("connection", "").lower() != "close"
    return status, keep


async def run(spec: dict[str, Any]) -> dict[str, Any]:
    host, port = spec["host"], int(spec["port"])
    payloads = [build_request(host, port, item) for item in spec["requests"]]
    expected = set(spec.get("expected") or [200])
    latencies: list[float] = []
    counts = {"unexpected_status": 0, "connect": 0, "read": 0}
    statuses: dict[int, int] = {}
    started = time.perf_counter()
    deadline = started + float(spec["duration"])

    async def connection(offset: int) -> None:
        index = offset
        writer: asyncio.StreamWriter | None = None
        reader: asyncio.StreamReader | None = None
        while time.perf_counter() < deadline:
            if writer is None:
                try:
                    reader, writer = await asyncio.open_connection(host, port)
                except OSError:
                    counts["connect"] += 1
                    await asyncio.sleep(0.01)
                    continue
            assert reader is not None
            payload = payloads[index % len(payloads)]
            index += 1
            sent = time.perf_counter()
            try:
                writer.write(payload)
                status, keep = await asyncio.wait_for(
                    read_response(reader), timeout=max(0.001, deadline + 10 - sent)
                )
            except (TimeoutError, OSError, asyncio.IncompleteReadError, ValueError):
                counts["read"] += 1
                writer.close()
                writer = None
                continue
            done = time.perf_counter()
            if done > deadline:
                break
            latencies.append(done - sent)
            statuses[status] = statuses.get(status, 0) + 1
            if status not in expected:
                counts["unexpected_status"] += 1
            if not keep:
                writer.close()
                writer = None
        if writer is not None:
            writer.close()

    await asyncio.gather(*(connection(i) for i in range(int(spec["connections"]))))
    elapsed = time.perf_counter() - started
    latencies.sort()

    def percentile(q: float) -> float | None:
        if not latencies:
            return None
        return latencies[min(len(latencies) - 1, int(q / 100 * len(latencies)))] * 1000

    return {
        "requests": len(latencies),
        "duration_s": elapsed,
        "p50_ms": percentile(50),
        "p99_ms": percentile(99),
        "errors": counts,
        "statuses": {str(code): n for code, n in sorted(statuses.items())},
    }


def main() -> None:
    spec = json.load(sys.stdin)
    try:
        import uvloop

        runner: Any = uvloop.run
    except ImportError:
        runner = asyncio.run
    print(json.dumps(runner(run(spec))))


if __name__ == "__main__":
    main()
