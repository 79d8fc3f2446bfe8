"""`dossier worker` as real subprocesses, for the reliability tests."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager

from tests.support.server import DOSSIER, ROOT, clean_env

FAST_ENV = {
    "LOG_LEVEL": "WARNING",
    "JOB_LEASE_SECONDS": "2",
    "JOB_POLL_INTERVAL_SECONDS": "0.2",
    "JOB_RETRY_BASE_SECONDS": "0.1",
    "JOB_RETRY_MAX_SECONDS": "0.5",
    "JOB_SHUTDOWN_TIMEOUT_SECONDS": "5",
}


def worker_env(database_url: str, redis_url: str, prefix: str, **extra: str) -> dict[str, str]:
    return clean_env(
        DATABASE_URL=database_url, REDIS_URL=redis_url, REDIS_KEY_PREFIX=prefix, **FAST_ENV, **extra
    )


def start_worker(env: dict[str, str], concurrency: int = 4) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *DOSSIER,
            "worker",
            "--concurrency",
            str(concurrency),
            "--import",
            "tests.support.job_types",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def stop_worker(process: subprocess.Popen[str], timeout: float = 20) -> str:
    """SIGTERM, wait, and return the worker's output."""
    if process.poll() is None:
        process.terminate()
    try:
        output, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate()
    return output or ""


@contextmanager
def workers(
    env: dict[str, str], count: int = 1, concurrency: int = 4
) -> Iterator[list[subprocess.Popen[str]]]:
    processes = [start_worker(env, concurrency) for _ in range(count)]
    try:
        yield processes
    finally:
        for process in processes:
            stop_worker(process)
