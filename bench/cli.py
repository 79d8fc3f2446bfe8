"""`python -m bench [scenario ...]`: one command for the whole benchmark.

It finds PostgreSQL and Redis, creates and migrates a fresh database, starts
the Dossier app and the bare baseline (one uvicorn worker each, pinned to
their own cores), seeds data through the app's services, runs the chosen
scenarios for a bounded time each, prints a table and writes JSON to
bench/results/. See bench/README.md.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path

from redis.asyncio import Redis

from backend.kit.db import Database
from backend.kit.migrations import upgrade
from backend.settings import Settings
from bench.context import BenchContext
from bench.load import Pinning, wrk_available
from bench.registry import RunOptions, Scenario, area_of, load_all, plan, select
from bench.report import RESULTS_DIR, as_json, table, write_json
from bench.runner import Result, run_all
from bench.services import (
    Server,
    app_environment,
    create_database,
    drop_database,
    libpq_dsn,
    locate_services,
)


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark Dossier against a bare FastAPI + asyncpg baseline.",
    )
    parser.add_argument(
        "scenarios",
        nargs="*",
        help="scenario names, globs ('auth-*') or areas ('foundation'); default: all",
    )
    parser.add_argument("--duration", type=float, default=10.0, help="seconds per scenario")
    parser.add_argument("--connections", type=int, default=32, help="concurrent connections")
    parser.add_argument("--warmup", type=float, default=1.0, help="seconds of load before each")
    parser.add_argument(
        "--tool",
        choices=["auto", "wrk", "python"],
        default="auto",
        help="load generator (auto: wrk if installed, else the Python one)",
    )
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="run the plan this many times over and report medians (steadier on a busy machine)",
    )
    parser.add_argument(
        "--baseline-max-age",
        type=float,
        default=60.0,
        metavar="S",
        help="measure a baseline again right before a scenario when its last measurement "
        "is older than this (0: always, next to each scenario)",
    )
    parser.add_argument("--no-pin", action="store_true", help="do not pin with taskset")
    parser.add_argument(
        "--log-level", default="INFO", help="the app's log level (production default INFO)"
    )
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an extra setting (environment variable) for the app under test",
    )
    parser.add_argument(
        "--profile",
        action="store_true",
        help="sample the app with py-spy during each app scenario and print where the time "
        "goes (slows the app a little: measure without it)",
    )
    parser.add_argument("--keep-database", action="store_true", help="do not drop the database")
    parser.add_argument("--output", type=Path, help="JSON file (default bench/results/...)")
    parser.add_argument("--list", action="store_true", help="list scenarios and exit")
    args = parser.parse_args(argv)
    if args.duration <= 0 or args.connections < 1 or args.rounds < 1:
        parser.error("--duration, --connections and --rounds must be positive")
    return args


def list_scenarios(available: dict[str, Scenario]) -> None:
    for name, scenario in available.items():
        baseline = f" (vs {scenario.baseline})" if scenario.baseline else ""
        print(f"{area_of(name):>12}  {name}{baseline}  {scenario.description}")


async def _clear_redis(url: str, prefix: str) -> None:
    client = Redis.from_url(url)
    try:
        keys = [key async for key in client.scan_iter(f"{prefix}:*")]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()


async def _run(
    scenarios: list[Scenario], context: BenchContext, args: argparse.Namespace, tool: str
) -> list[Result]:
    try:
        return await run_all(scenarios, context, tool=tool, warmup=args.warmup, rounds=args.rounds)
    finally:
        await context.database.dispose()


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds: servers stopped, database dropped


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    available = load_all()
    if args.list:
        list_scenarios(available)
        return 0
    try:
        scenarios = plan(select(args.scenarios, available) if args.scenarios else [], available)
    except (KeyError, ValueError) as exc:
        print(f"error: {exc.args[0]}", file=sys.stderr)
        return 2

    tool = args.tool
    if tool in ("auto", "wrk") and not wrk_available():
        if tool == "wrk":
            print("error: wrk is not installed (apt-get install -y wrk)", file=sys.stderr)
            return 2
        print(
            "note: wrk is not installed (apt-get install -y wrk); using the Python load "
            "generator, which needs more CPU per request and so understates throughput"
        )
    pinning = Pinning(None, None) if args.no_pin else Pinning.detect()
    options = RunOptions(duration=args.duration, connections=args.connections)
    extra = dict(item.split("=", 1) for item in args.set)
    run_id = uuid.uuid4().hex[:8]
    started_at = datetime.now(UTC).isoformat(timespec="seconds")

    with tempfile.TemporaryDirectory(prefix="dossier-bench-") as scratch:
        work_dir = Path(scratch)
        services = locate_services(work_dir / "services")
        database_name = f"dossier_bench_{run_id}"
        database_url = asyncio.run(create_database(services.pg_server_url, database_name))
        redis_prefix = f"dossier-bench-{run_id}"
        print(
            f"services: {services.origin}; database {database_name}; "
            f"load: {'wrk' if tool != 'python' and wrk_available() else 'python'}, "
            f"{options.connections} connections, {options.duration:g} s per scenario; "
            f"server cpus {pinning.server or 'any'}, client cpus {pinning.client or 'any'}"
        )
        try:
            env = app_environment(
                database_url,
                services.redis_url,
                redis_prefix,
                work_dir / "app",
                log_level=args.log_level,
                extra=extra,
            )
            settings = Settings(**{key.lower(): value for key, value in env.items()})  # type: ignore[arg-type]
            upgrade(database_url, app_role=settings.db_app_role)
            pool = settings.db_pool_size + settings.db_max_overflow
            app_server = Server(
                "dossier", "backend.main:create_app", env, cpus=pinning.server, ready_path="/ready"
            )
            baseline_server = Server(
                "baseline",
                "bench.baseline_app:create_app",
                {
                    "BENCH_BASELINE_DSN": libpq_dsn(database_url),
                    "BENCH_BASELINE_POOL": str(pool),
                    "BENCH_NAIVE_DATABASE_URL": database_url,
                    "BENCH_NAIVE_JWT_SECRET": settings.jwt_secret.get_secret_value(),
                    "BENCH_NAIVE_JWT_ALGORITHM": settings.jwt_algorithm,
                    "BENCH_NAIVE_JWT_AUDIENCE": settings.jwt_audience,
                    "BENCH_NAIVE_JWT_ISSUER": settings.jwt_issuer,
                },
                cpus=pinning.server,
            )
            with app_server, baseline_server:
                context = BenchContext(
                    settings=settings,
                    database=Database(
                        database_url,
                        app_role=settings.db_app_role,
                        pool_size=5,
                        max_overflow=5,
                    ),
                    database_url=database_url,
                    dsn=libpq_dsn(database_url),
                    pg_server_url=services.pg_server_url,
                    redis_url=services.redis_url,
                    app_url=app_server.url,
                    baseline_url=baseline_server.url,
                    env=env,
                    options=options,
                    pinning=pinning,
                    work_dir=work_dir,
                    app_pid=app_server.process.pid if app_server.process else None,
                    profile_dir=RESULTS_DIR / f"profile-{run_id}" if args.profile else None,
                )
                results = asyncio.run(_run(scenarios, context, args, tool))
                failed_servers = [
                    server
                    for server in (app_server, baseline_server)
                    if server.process is not None and server.process.poll() is not None
                ]
                for server in failed_servers:
                    print(f"{server.name} server died:\n{server.log_tail()}", file=sys.stderr)
        finally:
            if not args.keep_database:
                asyncio.run(drop_database(services.pg_server_url, database_name))
            asyncio.run(_clear_redis(services.redis_url, redis_prefix))

    for result in results:
        details = result.measurement.details if result.measurement else {}
        if details.get("profile_summary"):
            print(f"\nprofile of {result.name} ({details['profile']}):")
            print(details["profile_summary"])
    print()
    print(table(results))
    if args.profile:
        print("(profiled run: py-spy sampling slows the app; measure without --profile)")
    document = as_json(
        results,
        {
            "started_at": started_at,
            "services": services.origin,
            "tool": "wrk" if tool != "python" and wrk_available() else "python",
            "duration_s": options.duration,
            "connections": options.connections,
            "warmup_s": args.warmup,
            "rounds": args.rounds,
            "baseline_max_age_s": args.baseline_max_age,
            "server_cpus": pinning.server,
            "client_cpus": pinning.client,
            "workers": 1,
            "app_log_level": args.log_level,
            "profiled": args.profile,
        },
    )
    path = write_json(document, args.output)
    print(f"\nJSON: {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return 0 if all(result.ok for result in results) else 1
