"""Driving an HTTP server for a fixed time: wrk when installed, else `bench.pyload`.

Both run as a separate process pinned (with `taskset`, when available) to a
different core than the server, and both are closed-loop: each connection
sends its next request when the previous answer arrives.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from bench.registry import Measurement, Request

ROOT = Path(__file__).resolve().parents[1]
WRK_MARKER = "BENCH_JSON "


@dataclass(frozen=True)
class Pinning:
    """CPU lists for `taskset -c` (None: no pinning)."""

    server: str | None
    client: str | None

    @classmethod
    def detect(cls) -> Pinning:
        cpus = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
        if shutil.which("taskset") is None or len(cpus) < 2:
            return cls(None, None)
        half = len(cpus) // 2
        return cls(
            server=",".join(str(cpu) for cpu in cpus[:half]),
            client=",".join(str(cpu) for cpu in cpus[half:]),
        )


def pinned(command: Sequence[str], cpus: str | None) -> list[str]:
    return ["taskset", "-c", cpus, *command] if cpus else list(command)


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def _lua_string(value: str | bytes) -> str:
    data = value.encode("utf-8") if isinstance(value, str) else value
    out = []
    for byte in data:
        char = chr(byte)
        if char in '"\\' or not (32 <= byte < 127):
            out.append(f"\\{byte:03d}")
        else:
            out.append(char)
    return '"' + "".join(out) + '"'


def _lua_request(request: Request) -> str:
    headers = ", ".join(
        f"[{_lua_string(name)}] = {_lua_string(value)}" for name, value in request.headers.items()
    )
    body = _lua_string(request.body) if request.body is not None else "nil"
    return (
        f"wrk.format({_lua_string(request.method)}, {_lua_string(request.path)}, "
        f"{{{headers}}}, {body})"
    )


def wrk_script(requests: Sequence[Request], expected: Sequence[int]) -> str:
    """A Lua script: the request(s) to send, counting of unexpected statuses,
    and a `done` hook printing the summary as one JSON line."""
    lines = [f"local requests = {{{', '.join(_lua_request(r) for r in requests)}}}"]
    if len(requests) == 1:
        # wrk sends a constant request fastest when it is set up front.
        only = requests[0]
        headers = "".join(
            f"wrk.headers[{_lua_string(name)}] = {_lua_string(value)}\n"
            for name, value in only.headers.items()
        )
        lines.append(f"wrk.method = {_lua_string(only.method)}")
        lines.append(f"wrk.path = {_lua_string(only.path)}")
        lines.append(headers.rstrip("\n"))
        if only.body is not None:
            lines.append(f"wrk.body = {_lua_string(only.body)}")
    else:
        lines.append(
            "local index = 0\n"
            "request = function()\n"
            "  index = index % #requests + 1\n"
            "  return requests[index]\n"
            "end"
        )
    # wrk counts statuses > 399 as errors by itself; a response() hook (which
    # slows wrk down) is installed only when such a status is expected.
    if any(status > 399 or status < 200 for status in expected):
        wanted = ", ".join(f"[{status}] = true" for status in expected)
        lines.append(
            f"local wanted = {{{wanted}}}\n"
            "unexpected = 0\n"
            "response = function(status, headers, body)\n"
            "  if not wanted[status] then unexpected = unexpected + 1 end\n"
            "end"
        )
        status_errors = "unexpected_total()"
    else:
        status_errors = "summary.errors.status"
    lines.append(
        "local threads = {}\n"
        "setup = function(thread) table.insert(threads, thread) end\n"
        "function unexpected_total()\n"
        "  local total = 0\n"
        "  for _, thread in ipairs(threads) do\n"
        "    total = total + (thread:get('unexpected') or 0)\n"
        "  end\n"
        "  return total\n"
        "end\n"
        "done = function(summary, latency, requests)\n"
        f"  io.write(string.format('{WRK_MARKER}"
        '{"requests":%d,"duration_us":%d,"p50_us":%d,"p99_us":%d,'
        '"connect":%d,"read":%d,"write":%d,"timeout":%d,"status":%d}\\n\', '
        "summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), "
        "summary.errors.connect, summary.errors.read, summary.errors.write, "
        f"summary.errors.timeout, {status_errors}))\n"
        "end"
    )
    return "\n".join(lines) + "\n"


async def _communicate(command: list[str], stdin: bytes | None, timeout: float) -> str:
    process = await asyncio.create_subprocess_exec(
        *command,
        stdin=asyncio.subprocess.PIPE if stdin is not None else asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(stdin), timeout=timeout)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise RuntimeError(f"load generator did not stop within {timeout:.0f} s") from None
    except BaseException:  # cancelled, interrupted: never leave it running
        if process.returncode is None:
            process.kill()
        raise
    if process.returncode != 0:
        raise RuntimeError(
            f"{command[0]} failed ({process.returncode}): {err.decode(errors='replace')[-2000:]}"
        )
    return out.decode()


async def run_wrk(
    base_url: str,
    requests: Sequence[Request],
    *,
    duration: float,
    connections: int,
    expected: Sequence[int],
    cpus: str | None = None,
) -> Measurement:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(wrk_script(requests, expected))
    try:
        command = pinned(
            [
                "wrk",
                "-t1",
                f"-c{connections}",
                f"-d{max(1, round(duration))}s",
                "--timeout",
                "10s",
                "-s",
                script.name,
                base_url + requests[0].path,
            ],
            cpus,
        )
        output = await _communicate(command, None, timeout=duration + 30)
    finally:
        os.unlink(script.name)
    line = next((ln for ln in output.splitlines() if ln.startswith(WRK_MARKER)), None)
    if line is None:
        raise RuntimeError(f"wrk printed no summary: {output[-2000:]}")
    data = json.loads(line[len(WRK_MARKER) :])
    seconds = data["duration_us"] / 1e6
    errors = {key: data[key] for key in ("connect", "read", "write", "timeout", "status")}
    return Measurement(
        throughput=data["requests"] / seconds if seconds else 0.0,
        count=data["requests"],
        duration_s=seconds,
        p50_ms=data["p50_us"] / 1000,
        p99_ms=data["p99_us"] / 1000,
        errors=sum(errors.values()),
        details={"tool": "wrk", "errors": errors, "connections": connections},
    )


async def run_pyload(
    base_url: str,
    requests: Sequence[Request],
    *,
    duration: float,
    connections: int,
    expected: Sequence[int],
    cpus: str | None = None,
) -> Measurement:
    parts = urlsplit(base_url)
    spec = {
        "host": parts.hostname,
        "port": parts.port,
        "duration": duration,
        "connections": connections,
        "expected": list(expected),
        "requests": [
            {
                "method": r.method,
                "path": r.path,
                "headers": dict(r.headers),
                "body": r.body.decode("latin-1") if r.body is not None else None,
            }
            for r in requests
        ],
    }
    command = pinned([sys.executable, "-m", "bench.pyload"], cpus)
    output = await _communicate(command, json.dumps(spec).encode(), timeout=duration + 30)
    data = json.loads(output)
    errors = data["errors"]
    seconds = data["duration_s"]
    return Measurement(
        throughput=data["requests"] / seconds if seconds else 0.0,
        count=data["requests"],
        duration_s=seconds,
        p50_ms=data["p50_ms"],
        p99_ms=data["p99_ms"],
        errors=sum(errors.values()),
        details={
            "tool": "pyload",
            "errors": errors,
            "statuses": data["statuses"],
            "connections": connections,
        },
    )


async def drive(
    base_url: str,
    requests: Sequence[Request],
    *,
    duration: float,
    connections: int,
    expected: Sequence[int] = (200,),
    tool: str = "auto",
    cpus: str | None = None,
) -> Measurement:
    """Load `base_url` with `requests` (round-robin) for `duration` seconds."""
    if not requests:
        raise ValueError("no requests to send")
    use_wrk = tool == "wrk" or (tool == "auto" and wrk_available())
    runner = run_wrk if use_wrk else run_pyload
    return await runner(
        base_url,
        requests,
        duration=duration,
        connections=connections,
        expected=expected,
        cpus=cpus,
    )
