"""Job types: a name, a description, a JSON schema for the payload, an async
handler and a deadline. A domain declares its types in its `tasks.py`:

    @job_type("thing.do", "Does the thing", schema={"type": "object", ...})
    async def do_thing(ctx: JobContext) -> dict[str, Any]:
        ...

`job_type` only builds the `JobType`; nothing is registered by importing a
module. `backend/plugins.py` lists every domain's types and registers them in
`registry` once at start-up (API, worker and CLI alike).

Handlers run in the job's tenant scope; the dict they return is the job's
`result`. `requires` names the top-level reference the job must carry
(`document` or `case`). `internal` types (webhook delivery) are run by the
worker but cannot be created through `POST /jobs`. `timeout_seconds` is the
wall-clock deadline of one attempt (None: `JOB_DEFAULT_TIMEOUT_SECONDS`).
"""

from __future__ import annotations

import importlib
import random
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from jsonschema import Draft202012Validator

from backend.settings import Settings

if TYPE_CHECKING:
    from backend.jobs.context import JobContext

Handler = Callable[["JobContext"], Awaitable[dict[str, Any] | None]]
Reference = Literal["document", "case"]


class PermanentJobError(Exception):
    """A failure that retrying cannot fix: the job fails at once."""


class RetryableJobError(Exception):
    """A failure worth retrying after `retry_after` seconds (or the backoff)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


def backoff_delay(settings: Settings, attempt: int) -> float:
    """Exponential backoff with full jitter over the upper half."""
    ceiling = float(
        min(settings.job_retry_max_seconds, settings.job_retry_base_seconds * 2 ** (attempt - 1))
    )
    return ceiling / 2 + random.random() * ceiling / 2  # noqa: S311 - jitter, not security


@dataclass(frozen=True, slots=True)
class JobType:
    name: str
    description: str
    payload_schema: dict[str, Any]
    handler: Handler
    requires: tuple[Reference, ...] = ()
    internal: bool = False
    timeout_seconds: float | None = None
    validator: Draft202012Validator = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        Draft202012Validator.check_schema(self.payload_schema)
        object.__setattr__(self, "validator", Draft202012Validator(self.payload_schema))

    def payload_errors(self, payload: Any) -> list[dict[str, Any]]:
        """Validation errors in the problem+json `errors` shape (empty if valid)."""
        return [
            {
                "loc": ["body", "payload", *error.absolute_path],
                "msg": error.message,
                "type": f"schema.{error.validator}",
            }
            for error in sorted(self.validator.iter_errors(payload), key=lambda e: list(e.path))
        ]


class JobTypeRegistry:
    def __init__(self) -> None:
        self._types: dict[str, JobType] = {}

    def register(self, job_type: JobType) -> JobType:
        existing = self._types.get(job_type.name)
        if existing is not None and existing.handler is not job_type.handler:
            raise ValueError(f"job type {job_type.name!r} is already registered")
        self._types[job_type.name] = job_type
        return job_type

    def get(self, name: str) -> JobType | None:
        return self._types.get(name)

    def public(self) -> list[JobType]:
        return sorted((t for t in self._types.values() if not t.internal), key=lambda t: t.name)

    def names(self) -> list[str]:
        return sorted(self._types)

    def internal_names(self) -> list[str]:
        return sorted(t.name for t in self._types.values() if t.internal)


registry = JobTypeRegistry()


def job_type(
    name: str,
    description: str,
    *,
    schema: dict[str, Any] | None = None,
    requires: Iterable[Reference] = (),
    internal: bool = False,
    timeout_seconds: float | None = None,
) -> Callable[[Handler], JobType]:
    """Make the decorated handler job type `name` (registered by the plugins list)."""

    def decorate(handler: Handler) -> JobType:
        return JobType(
            name=name,
            description=description,
            payload_schema=schema or {"type": "object"},
            handler=handler,
            requires=tuple(requires),
            internal=internal,
            timeout_seconds=timeout_seconds,
        )

    return decorate


def job_types_in(module_name: str) -> list[JobType]:
    """The job types a module defines (`JOB_MODULES`: types outside the plugins list)."""
    module = importlib.import_module(module_name)
    return [value for value in vars(module).values() if isinstance(value, JobType)]
