"""What a job's attempt came to: its handler run and classified (succeeded,
cancelled, failed for good, or back in the queue after a backoff), and the log
line and event that say so."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from backend.jobs.context import JobCancelled, JobContext, JobSnapshot, LeaseLost
from backend.jobs.models import JobStatus
from backend.jobs.types import PermanentJobError, RetryableJobError, backoff_delay, registry
from backend.settings import Settings

logger = logging.getLogger("dossier.worker")


@dataclass(slots=True)
class Outcome:
    status: JobStatus
    result: dict[str, Any] | None = None
    error: str | None = None
    delay: float = 0.0
    refund: bool = False  # released at shutdown: the attempt does not count

    @property
    def final(self) -> bool:
        return self.status is not JobStatus.QUEUED


@dataclass(slots=True)
class Finished:
    """A job whose handler returned, waiting for the next turn of the queue
    to record its outcome."""

    context: JobContext
    outcome: Outcome
    done: asyncio.Future[bool]
    started: float
    deadline: float


def describe_outcome(job: JobSnapshot, outcome: Outcome) -> tuple[str, str, str, dict[str, Any]]:
    """The log level and line, event type and event data of an outcome."""
    data: dict[str, Any] = {"job_id": str(job.id), "type": job.type, "attempt": job.attempt}
    if outcome.status is JobStatus.QUEUED:
        level = "warning"
        message = (
            "Released at worker shutdown"
            if outcome.refund
            else f"Attempt {job.attempt} failed: {outcome.error}; retrying in {outcome.delay:.1f}s"
        )
        event_type = "job.queued"
        data["retry_in_seconds"] = round(outcome.delay, 3)
    else:
        level = "info" if outcome.status is JobStatus.SUCCEEDED else "error"
        message = f"Attempt {job.attempt} {outcome.status.value}"
        if outcome.error and outcome.status is not JobStatus.SUCCEEDED:
            message += f": {outcome.error}"
        event_type = f"job.{outcome.status.value}"
        if outcome.status is JobStatus.SUCCEEDED:
            data["result"] = outcome.result
        else:
            data["error"] = outcome.error
    return level, message[:10_000], event_type, data


async def run_handler(context: JobContext, settings: Settings) -> Outcome | None:
    """Run the job's handler; its outcome, or None when another worker owns the job."""
    job = context.job
    job_type = registry.get(job.type)
    try:
        if job_type is None:
            raise PermanentJobError(f"Unknown job type {job.type!r}")
        seconds = job_type.timeout_seconds or settings.job_default_timeout_seconds
        deadline = asyncio.timeout(seconds)
        try:
            async with deadline:
                result = await job_type.handler(context)
        except TimeoutError:
            if not deadline.expired():
                raise
            # Past its wall-clock deadline: the attempt fails, as retryable.
            raise RetryableJobError(f"Deadline of {seconds:g} s exceeded") from None
        return Outcome(JobStatus.SUCCEEDED, result=result or {})
    except JobCancelled:
        return Outcome(JobStatus.CANCELLED, error="Cancelled")
    except LeaseLost:
        logger.warning("lease lost; another worker owns the job", extra={"job_id": str(job.id)})
        return None
    except asyncio.CancelledError:
        if context.extras.get("lease_lost"):
            return None
        if context.cancel_requested:
            return Outcome(JobStatus.CANCELLED, error="Cancelled")
        # Shutdown: hand the job back without spending an attempt.
        return Outcome(JobStatus.QUEUED, error="Released at worker shutdown", refund=True)
    except PermanentJobError as exc:
        return Outcome(JobStatus.FAILED, error=str(exc) or type(exc).__name__)
    except Exception as exc:
        message = str(exc) or type(exc).__name__
        if job.attempt >= job.max_attempts:
            return Outcome(JobStatus.FAILED, error=message)
        delay = backoff_delay(settings, job.attempt)
        if isinstance(exc, RetryableJobError) and exc.retry_after is not None:
            delay = exc.retry_after
        return Outcome(JobStatus.QUEUED, error=message, delay=delay)
