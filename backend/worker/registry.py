"""The registry of job types: a name, a description, a JSON schema for the
payload and an async handler. Registering a type is one module:

    @job_type("thing.do", "Does the thing", schema={"type": "object", ...})
    async def do_thing(ctx: JobContext) -> dict[str, Any]:
        ...

Handlers run in the job's tenant scope; the dict they return is the job's
`result`. `requires` names the top-level reference the job must carry
(`document` or `case`). `internal` types (webhook delivery) are run by the
worker but cannot be created through `POST /jobs`.
"""

from __future__ import annotations

import importlib
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from jsonschema import Draft202012Validator

if TYPE_CHECKING:
    from backend.worker.context import JobContext

Handler = Callable[["JobContext"], Awaitable[dict[str, Any] | None]]
Reference = Literal["document", "case"]


class PermanentJobError(Exception):
    """A failure that retrying cannot fix: the job fails at once."""


class RetryableJobError(Exception):
    """A failure worth retrying after `retry_after` seconds (or the backoff)."""

    def __init__(self, message: str, *, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


@dataclass(frozen=True, slots=True)
class JobType:
    name: str
    description: str
    payload_schema: dict[str, Any]
    handler: Handler
    requires: tuple[Reference, ...] = ()
    internal: bool = False
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


registry = JobTypeRegistry()


def job_type(
    name: str,
    description: str,
    *,
    schema: dict[str, Any] | None = None,
    requires: Iterable[Reference] = (),
    internal: bool = False,
) -> Callable[[Handler], Handler]:
    """Register the decorated handler as job type `name`."""

    def decorate(handler: Handler) -> Handler:
        registry.register(
            JobType(
                name=name,
                description=description,
                payload_schema=schema or {"type": "object"},
                handler=handler,
                requires=tuple(requires),
                internal=internal,
            )
        )
        return handler

    return decorate


def load_job_types(extra_modules: Iterable[str] = ()) -> JobTypeRegistry:
    """Import the built-in handlers and any extra modules (`JOB_MODULES`)."""
    importlib.import_module("backend.worker.handlers")
    for module in extra_modules:
        importlib.import_module(module)
    return registry
