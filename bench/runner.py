"""Running planned scenarios one after another and computing ratios."""

from __future__ import annotations

import asyncio
import inspect
import statistics
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from bench import profile
from bench.context import BenchContext
from bench.load import drive
from bench.registry import HttpScenario, Measurement, Request, Scenario

PREFLIGHT_LIMIT = 20  # distinct requests checked once before the load


@dataclass
class Result:
    scenario: Scenario
    measurement: Measurement | None = None
    ratio: float | None = None
    error: str | None = None

    @property
    def name(self) -> str:
        return self.scenario.name

    @property
    def ok(self) -> bool:
        return self.error is None and self.measurement is not None and not self.measurement.errors


async def resolve(value: Any, context: BenchContext) -> Any:
    """A scenario value: a constant, or a function of the context (sync or async)."""
    if callable(value):
        value = value(context)
    if inspect.isawaitable(value):
        value = await value
    return value


async def http_requests(scenario: HttpScenario, context: BenchContext) -> list[Request]:
    if scenario.requests is not None:
        requests = list(await resolve(scenario.requests, context))
    else:
        body = await resolve(scenario.body, context)
        requests = [
            Request(
                path=await resolve(scenario.path, context),
                method=scenario.method,
                headers=dict(await resolve(scenario.headers, context) or {}),
                body=body.encode() if isinstance(body, str) else body,
            )
        ]
    if not requests:
        raise ValueError(f"{scenario.name}: no requests")
    return requests


async def preflight(base_url: str, requests: Sequence[Request], expected: Sequence[int]) -> None:
    """Each (distinct) request once: a wrong status fails the scenario with the
    server's answer, instead of measuring how fast it returns errors."""
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        distinct = {
            (r.method, r.path, tuple(sorted(r.headers.items())), r.body): r for r in requests
        }
        for request in list(distinct.values())[:PREFLIGHT_LIMIT]:
            response = await client.request(
                request.method, request.path, headers=dict(request.headers), content=request.body
            )
            if response.status_code not in expected:
                raise RuntimeError(
                    f"{request.method} {request.path} answered {response.status_code} "
                    f"(expected {'/'.join(map(str, expected))}): {response.text[:500]}"
                )


async def run_http(
    scenario: HttpScenario, context: BenchContext, *, tool: str, warmup: float
) -> Measurement:
    requests = await http_requests(scenario, context)
    base_url = context.app_url if scenario.target == "app" else context.baseline_url
    expected = scenario.expected_statuses
    await preflight(base_url, requests, expected)
    options = context.options
    common: dict[str, Any] = {
        "connections": options.connections,
        "expected": expected,
        "tool": tool,
        "cpus": context.pinning.client,
    }
    if warmup > 0:
        await drive(base_url, requests, duration=warmup, **common)
    if scenario.target == "app" and context.profile_dir is not None and context.app_pid is not None:
        context.profile_dir.mkdir(parents=True, exist_ok=True)
        stacks = context.profile_dir / f"{scenario.name}.txt"
        measurement, _ = await asyncio.gather(
            drive(base_url, requests, duration=options.duration, **common),
            profile.record(context.app_pid, options.duration, stacks, cpus=context.pinning.client),
        )
        measurement.details["profile"] = str(stacks)
        measurement.details["profile_summary"] = profile.summarize(stacks)
    else:
        measurement = await drive(base_url, requests, duration=options.duration, **common)
    measurement.details["target"] = scenario.target
    measurement.details["distinct_requests"] = len(requests)
    return measurement


async def run_one(
    scenario: Scenario, context: BenchContext, *, tool: str, warmup: float
) -> Measurement:
    """One measurement (the scenario's setup has run already)."""
    if isinstance(scenario, HttpScenario):
        return await run_http(scenario, context, tool=tool, warmup=warmup)
    # Custom scenarios bound themselves; this is the backstop.
    limit = context.options.duration * 10 + 300
    run = asyncio.wait_for(scenario.run(context, context.options), timeout=limit)
    if not scenario.profile or context.profile_dir is None or context.app_pid is None:
        return await run
    context.profile_dir.mkdir(parents=True, exist_ok=True)
    stacks = context.profile_dir / f"{scenario.name}.txt"
    async with profile.sampling(context.app_pid, stacks, cpus=context.pinning.client):
        measurement = await run
    measurement.details["profile"] = str(stacks)
    measurement.details["profile_summary"] = profile.summarize(stacks)
    return measurement


def combine(rounds: list[Measurement]) -> Measurement:
    """Several measurements of one scenario: the median of each figure."""
    if len(rounds) == 1:
        return rounds[0]

    def median(values: list[float | None]) -> float | None:
        known = [v for v in values if v is not None]
        return statistics.median(known) if known else None

    first = rounds[0]
    return Measurement(
        throughput=statistics.median(m.throughput for m in rounds),
        unit=first.unit,
        count=sum(m.count for m in rounds),
        duration_s=sum(m.duration_s for m in rounds),
        p50_ms=median([m.p50_ms for m in rounds]),
        p99_ms=median([m.p99_ms for m in rounds]),
        errors=sum(m.errors for m in rounds),
        details={
            **first.details,
            **{
                key: statistics.median(m.details[key] for m in rounds)
                for key, value in first.details.items()
                if isinstance(value, int | float)
                and not isinstance(value, bool)
                and all(isinstance(m.details.get(key), int | float) for m in rounds)
            },
            "samples": [m.throughput for m in rounds],
            "errors": [m.details.get("errors", m.errors) for m in rounds],
        },
    )


async def run_all(
    scenarios: Sequence[Scenario],
    context: BenchContext,
    *,
    tool: str = "auto",
    warmup: float = 1.0,
    rounds: int = 1,
    baseline_max_age: float = 60.0,
    progress: Callable[[str], None] = print,
) -> list[Result]:
    """Each scenario in order (baselines first), `rounds` times over.

    A scenario's ratio uses a measurement of its baseline taken right before
    it: when the baseline's latest measurement is older than
    `baseline_max_age` seconds (a long seeding step, other scenarios in
    between), the baseline is measured again first, so that both figures see
    the same machine. Every figure reported is the median of its samples."""
    results = {scenario.name: Result(scenario) for scenario in scenarios}
    by_name = {scenario.name: scenario for scenario in scenarios}
    measured: dict[str, list[Measurement]] = {scenario.name: [] for scenario in scenarios}
    ratios: dict[str, list[float]] = {scenario.name: [] for scenario in scenarios}
    latest: dict[str, tuple[Measurement, float]] = {}  # name -> (measurement, when)

    async def measure(scenario: Scenario, label: str) -> Measurement | None:
        result = results[scenario.name]
        kind = "http" if isinstance(scenario, HttpScenario) else "custom"
        progress(f"running {scenario.name} ({kind}){label} ...")
        started = time.monotonic()
        try:
            measurement = await run_one(scenario, context, tool=tool, warmup=warmup)
        except Exception as exc:
            result.error = f"{type(exc).__name__}: {exc}"
            progress(traceback.format_exc(limit=3))
            return None
        measured[scenario.name].append(measurement)
        latest[scenario.name] = (measurement, time.monotonic())
        progress(
            f"  {measurement.throughput:,.1f} {measurement.unit} "
            f"in {time.monotonic() - started:.1f} s"
        )
        return measurement

    for round_number in range(rounds):
        label = f" (round {round_number + 1}/{rounds})" if rounds > 1 else ""
        for scenario in scenarios:
            result = results[scenario.name]
            if result.error is not None:
                continue
            if round_number == 0 and scenario.setup is not None:
                progress(f"setting up {scenario.name} ...")
                try:
                    await scenario.setup(context)
                except Exception as exc:
                    result.error = f"setup: {type(exc).__name__}: {exc}"
                    progress(traceback.format_exc(limit=3))
                    continue
            baseline = by_name.get(scenario.baseline) if scenario.baseline else None
            if baseline is not None and results[baseline.name].error is None:
                last = latest.get(baseline.name)
                if last is None or time.monotonic() - last[1] > baseline_max_age:
                    await measure(baseline, f"{label} again, next to {scenario.name}")
            measurement = await measure(scenario, label)
            if measurement is None or baseline is None or baseline.name not in latest:
                continue
            base = latest[baseline.name][0]
            if base.throughput:
                ratios[scenario.name].append(measurement.throughput / base.throughput)
    for name, result in results.items():
        if measured[name]:
            result.measurement = combine(measured[name])
        if ratios[name]:
            result.ratio = statistics.median(ratios[name])
    return list(results.values())
