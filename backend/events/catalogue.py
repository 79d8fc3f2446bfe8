"""The event names the API publishes (the stream and webhooks use the same),
each with the permission a principal needs to receive it.

The platform's events are listed here; workloads add theirs through
`backend/plugins.py` (`EventSpec`), registered once at start-up.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from pydantic import AfterValidator

PING_EVENT = "webhook.ping"


@dataclass(frozen=True, slots=True)
class EventSpec:
    """Event names and the permission that lets a principal receive them."""

    names: tuple[str, ...]
    permission: str


PLATFORM_EVENTS = (
    EventSpec(
        (
            "job.queued",
            "job.started",
            "job.progress",
            "job.succeeded",
            "job.failed",
            "job.cancelled",
        ),
        "jobs:read",
    ),
    EventSpec(
        (
            "document.created",
            "document.updated",
            "document.deleted",
            "document.processed",
        ),
        "documents:read",
    ),
    EventSpec(("case.created", "case.updated", "case.deleted"), "cases:read"),
)


class EventCatalogue:
    def __init__(self) -> None:
        self._permissions: dict[str, str] = {PING_EVENT: "webhooks:manage"}
        self._subscribable: list[str] = []
        for spec in PLATFORM_EVENTS:
            self.register(spec)

    def register(self, spec: EventSpec) -> None:
        for name in spec.names:
            known = self._permissions.get(name)
            if known is not None and known != spec.permission:
                raise ValueError(f"event {name!r} is already in the catalogue")
            if known is None:
                self._permissions[name] = spec.permission
                self._subscribable.append(name)

    def names(self) -> list[str]:
        """The names webhooks may subscribe to."""
        return list(self._subscribable)

    def __contains__(self, name: object) -> bool:
        return name in self._subscribable

    def permission_for(self, event_type: str) -> str | None:
        """The permission a principal needs to receive `event_type` (None: nobody)."""
        return self._permissions.get(event_type)


catalogue = EventCatalogue()


def _known(name: str) -> str:
    if name not in catalogue:
        raise ValueError(f"unknown event {name!r}; known: {', '.join(catalogue.names())}")
    return name


EventName = Annotated[str, AfterValidator(_known)]
