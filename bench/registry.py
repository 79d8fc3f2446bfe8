"""What a scenario is, and the registry every `bench/scenarios/<area>.py` adds to.

Two kinds:

* `HttpScenario` — the harness drives one endpoint with wrk (or the Python
  load generator) for the run's duration and measures requests/s, p50, p99.
  `target` says which server it hits: the Dossier app or the bare baseline.
* `CustomScenario` — a coroutine that measures something else (jobs/s, MB/s)
  and returns a `Measurement`; the harness only bounds, reports and compares.

Either names a `baseline` scenario; the harness runs it in the same
invocation and reports `throughput / baseline throughput` as the ratio.
"""

from __future__ import annotations

import fnmatch
import importlib
import pkgutil
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from bench.context import BenchContext

Target = Literal["app", "baseline"]
Value = Any  # a constant, or a function of the context (sync or async)


@dataclass(frozen=True)
class Request:
    """One request as the load generator sends it (path relative to the server)."""

    path: str
    method: str = "GET"
    headers: Mapping[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass(frozen=True)
class HttpScenario:
    """`path`, `headers` and `body` are values or functions of the context
    (sync or async), resolved just before the scenario runs. For a mix of
    requests (several tenants, several pages) give `requests` instead: a
    function returning a list of `Request`, sent round-robin."""

    name: str
    path: Value = "/"
    method: str = "GET"
    headers: Value = None
    body: Value = None
    requests: Value = None
    baseline: str | None = None
    target: Target = "app"
    expect_status: int | Sequence[int] = 200
    setup: Callable[[BenchContext], Awaitable[None]] | None = None
    target_ratio: float | None = None
    description: str = ""

    @property
    def expected_statuses(self) -> tuple[int, ...]:
        if isinstance(self.expect_status, int):
            return (self.expect_status,)
        return tuple(self.expect_status)


@dataclass
class Measurement:
    """What one scenario produced. `throughput` is in `unit` (requests/s for
    HTTP scenarios); latencies are in milliseconds when known."""

    throughput: float
    unit: str = "req/s"
    count: int = 0
    duration_s: float = 0.0
    p50_ms: float | None = None
    p99_ms: float | None = None
    errors: int = 0
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunOptions:
    duration: float
    connections: int


@dataclass(frozen=True)
class CustomScenario:
    """`run(context, options)` must stop by itself within about
    `options.duration` seconds (plus its own setup) and return a Measurement."""

    name: str
    run: Callable[[BenchContext, RunOptions], Awaitable[Measurement]]
    baseline: str | None = None
    setup: Callable[[BenchContext], Awaitable[None]] | None = None
    target_ratio: float | None = None
    description: str = ""
    profile: bool = False  # with --profile, sample the app server while it runs


Scenario = HttpScenario | CustomScenario

_REGISTRY: dict[str, Scenario] = {}
_AREAS: dict[str, str] = {}  # scenario name -> area (its module under bench/scenarios)


def register(*scenarios: Scenario) -> None:
    """Add scenarios; called at import time by `bench/scenarios/<area>.py`."""
    module = str(sys._getframe(1).f_globals.get("__name__", ""))
    for scenario in scenarios:
        if scenario.name in _REGISTRY and _REGISTRY[scenario.name] != scenario:
            raise ValueError(f"scenario {scenario.name!r} registered twice")
        _REGISTRY[scenario.name] = scenario
        _AREAS[scenario.name] = module.rsplit(".", 1)[-1]


def area_of(name: str) -> str:
    return _AREAS.get(name, "")


def select(patterns: Sequence[str], available: Mapping[str, Scenario]) -> list[str]:
    """Names matching each pattern: a scenario name, a glob (`auth-*`) or an
    area (`foundation`: every scenario of bench/scenarios/foundation.py)."""
    chosen: list[str] = []
    for pattern in patterns:
        matches = [
            name
            for name in available
            if fnmatch.fnmatchcase(name, pattern) or area_of(name) == pattern
        ]
        if not matches:
            raise KeyError(
                f"no scenario matches {pattern!r}; known: {', '.join(sorted(available))}"
            )
        chosen += [name for name in matches if name not in chosen]
    return chosen


def load_all() -> dict[str, Scenario]:
    """Import every module of `bench.scenarios`; each registers its scenarios."""
    import bench.scenarios as package

    for module in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        importlib.import_module(f"{package.__name__}.{module.name}")
    return dict(_REGISTRY)


def plan(selected: Sequence[str], available: Mapping[str, Scenario]) -> list[Scenario]:
    """The scenarios to run, in order: each baseline right before the first
    scenario that needs it (baselines are measured once per run)."""
    unknown = [name for name in selected if name not in available]
    if unknown:
        raise KeyError(
            f"unknown scenario(s): {', '.join(unknown)}; known: {', '.join(sorted(available))}"
        )
    order: list[Scenario] = []
    seen: set[str] = set()

    def add(name: str, chain: tuple[str, ...] = ()) -> None:
        if name in seen:
            return
        if name in chain:
            raise ValueError(f"baseline cycle: {' -> '.join((*chain, name))}")
        scenario = available[name]
        if scenario.baseline is not None:
            if scenario.baseline not in available:
                raise KeyError(f"{name}: unknown baseline {scenario.baseline!r}")
            add(scenario.baseline, (*chain, name))
        seen.add(name)
        order.append(scenario)

    for name in selected or list(available):
        add(name)
    return order
