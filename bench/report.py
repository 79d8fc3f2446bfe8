"""The results: a table on stdout and a JSON file under bench/results/."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.load import ROOT
from bench.registry import HttpScenario
from bench.runner import Result

RESULTS_DIR = ROOT / "bench" / "results"


def _number(value: float | None, digits: int = 2) -> str:
    if value is None:
        return "-"
    if value >= 1000:
        return f"{value:,.0f}"
    return f"{value:.{digits}f}"


def table(results: Sequence[Result]) -> str:
    header = ["scenario", "throughput", "p50 ms", "p99 ms", "errors", "ratio", "target", "vs"]
    rows: list[list[str]] = []
    for result in results:
        m = result.measurement
        scenario = result.scenario
        if m is None:
            rows.append([result.name, "FAILED", "-", "-", "-", "-", "-", scenario.baseline or ""])
            continue
        target = f">= {scenario.target_ratio:.2f}" if scenario.target_ratio else ""
        if scenario.target_ratio and result.ratio is not None:
            target += " ok" if result.ratio >= scenario.target_ratio else " MISS"
        rows.append(
            [
                result.name,
                f"{_number(m.throughput, 1)} {m.unit}",
                _number(m.p50_ms),
                _number(m.p99_ms),
                str(m.errors),
                f"{result.ratio:.2f}x" if result.ratio is not None else "-",
                target,
                scenario.baseline or "",
            ]
        )
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    numeric = {1, 2, 3, 4, 5}

    def line(cells: Sequence[str]) -> str:
        return "  ".join(
            cell.rjust(widths[i]) if i in numeric else cell.ljust(widths[i])
            for i, cell in enumerate(cells)
        ).rstrip()

    out = [line(header), line(["-" * width for width in widths])]
    out += [line(row) for row in rows]
    failures = [r for r in results if r.error]
    out += [f"{r.name} FAILED: {r.error}" for r in failures]
    bad = [r for r in results if r.measurement is not None and r.measurement.errors]
    out += [
        f"{r.name}: {r.measurement.errors} errors "
        f"{r.measurement.details.get('errors', '')} (figures not trustworthy)"
        for r in bad
        if r.measurement is not None
    ]
    return "\n".join(out)


def _git_commit() -> str | None:
    try:
        return subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None


def as_json(results: Sequence[Result], run: Mapping[str, Any]) -> dict[str, Any]:
    entries = []
    for result in results:
        scenario = result.scenario
        m = result.measurement
        entry: dict[str, Any] = {
            "name": scenario.name,
            "kind": "http" if isinstance(scenario, HttpScenario) else "custom",
            "description": scenario.description,
            "baseline": scenario.baseline,
            "ratio": result.ratio,
            "target_ratio": scenario.target_ratio,
            "error": result.error,
        }
        if isinstance(scenario, HttpScenario):
            entry["target"] = scenario.target
            entry["method"] = scenario.method
            entry["path"] = scenario.path if isinstance(scenario.path, str) else None
        if m is not None:
            entry.update(
                throughput=m.throughput,
                unit=m.unit,
                count=m.count,
                duration_s=m.duration_s,
                p50_ms=m.p50_ms,
                p99_ms=m.p99_ms,
                errors=m.errors,
                details=m.details,
            )
        entries.append(entry)
    return {
        "started_at": run.get("started_at"),
        "finished_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _git_commit(),
        "python": platform.python_version(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "run": dict(run),
        "results": entries,
    }


def write_json(document: Mapping[str, Any], path: Path | None = None) -> Path:
    """To `path`, or to bench/results/bench-<time>.json and latest.json."""
    text = json.dumps(document, indent=2, default=str)
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        return path
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"bench-{stamp}.json"
    path.write_text(text)
    (RESULTS_DIR / "latest.json").write_text(text)
    return path
