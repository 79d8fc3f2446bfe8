"""Running `dossier` commands and servers as real subprocesses."""

from __future__ import annotations

import os
import secrets
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[2]
DOSSIER = [sys.executable, "-m", "backend"]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# This run's secrets, shared by the in-process app (tests/conftest.py) and
# every server or worker process the tests start, so that tokens, API keys and
# signatures made on one side hold on the other.
RUN_SECRETS = {
    "JWT_SECRET": secrets.token_urlsafe(48),
    "API_KEY_PEPPER": secrets.token_urlsafe(48),
    "SIGNING_SECRET": secrets.token_urlsafe(48),
}
DOSSIER_SETTINGS = {"DATABASE_URL", "REDIS_URL", "DOSSIER_DATA_DIR", *RUN_SECRETS}


def unconfigured_env(**overrides: str) -> dict[str, str]:
    """The environment minus every Dossier setting, plus `overrides`: what a
    new user's shell has."""
    env = {key: value for key, value in os.environ.items() if key not in DOSSIER_SETTINGS}
    env.update(overrides)
    return env


def clean_env(**overrides: str) -> dict[str, str]:
    """`unconfigured_env` with this run's secrets, plus `overrides`."""
    return unconfigured_env(**{**RUN_SECRETS, **overrides})


def run_dossier(
    *args: str, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*DOSSIER, *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@contextmanager
def serving(
    env: dict[str, str],
    *extra: str,
    timeout: float = 90,
    command: list[str] | None = None,
    cwd: Path = ROOT,
) -> Iterator[tuple[str, subprocess.Popen[str]]]:
    """`dossier serve` (or `command serve`) on a free loopback port, until
    /health answers."""
    port = free_port()
    process = subprocess.Popen(
        [*(command or DOSSIER), "serve", "--port", str(port), *extra],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if process.poll() is not None:
                raise RuntimeError(
                    f"server exited: {process.stdout.read() if process.stdout else ''}"
                )
            try:
                if httpx.get(f"{base}/health", timeout=1).status_code == 200:
                    break
            except httpx.HTTPError:
                time.sleep(0.2)
        else:
            raise TimeoutError("server did not start")
        yield base, process
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
