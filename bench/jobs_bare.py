"""The bare baseline of the job queue: `tasks` asyncpg loops claiming one
queued job at a time with `FOR UPDATE SKIP LOCKED` and marking it done, on
the same `jobs` table, until none is left or `seconds` pass.

    python -m bench.jobs_bare DSN TASKS SECONDS
"""

from __future__ import annotations

import asyncio
import sys
import time

import asyncpg

CLAIM = """
UPDATE jobs SET status = 'running', attempts = attempts + 1, started_at = now()
WHERE id = (
    SELECT id FROM jobs WHERE status = 'queued'
    ORDER BY priority DESC, created_at LIMIT 1 FOR UPDATE SKIP LOCKED
) RETURNING id
"""
FINISH = "UPDATE jobs SET status = 'succeeded', finished_at = now() WHERE id = $1"


async def loop(dsn: str, deadline: float) -> int:
    connection = await asyncpg.connect(dsn)
    done = 0
    try:
        while time.monotonic() < deadline:
            job_id = await connection.fetchval(CLAIM)
            if job_id is None:
                await asyncio.sleep(0.01)
                continue
            await connection.execute(FINISH, job_id)
            done += 1
    finally:
        await connection.close()
    return done


async def main(dsn: str, tasks: int, seconds: float) -> None:
    deadline = time.monotonic() + seconds
    counts = await asyncio.gather(*(loop(dsn, deadline) for _ in range(tasks)))
    print(sum(counts))


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], int(sys.argv[2]), float(sys.argv[3])))
