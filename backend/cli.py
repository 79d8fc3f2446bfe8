"""The `dossier` command: serve, migrate, create-superadmin, create-tenant, openapi."""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import signal
import sys
from collections.abc import Callable, Coroutine, Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import func, select

from backend.kit import migrations
from backend.kit.db import Database, system_scope
from backend.kit.errors import DossierError
from backend.plugins import install
from backend.settings import Settings, get_settings
from backend.tenants.models import Tenant

PLATFORM_SLUG = "platform"
DEMO_OWNER_EMAIL = "owner@demo.dossier.local"


@contextmanager
def _embedded_services(settings: Settings, *, with_redis: bool) -> Iterator[None]:
    """Start embedded PostgreSQL (and Redis) for what is not configured, export
    their URLs for this process and its children, and stop them at the end."""
    from backend.kit.embedded import start_postgres, start_redis

    handles: list[Any] = []
    try:
        if settings.database_url is None:
            postgres = start_postgres(settings.dossier_data_dir)
            os.environ["DATABASE_URL"] = postgres.database_url
            handles.append(postgres)
            print(f"Embedded PostgreSQL under {settings.dossier_data_dir / 'postgres'}")
        if with_redis and settings.redis_url is None:
            redis = start_redis(settings.dossier_data_dir)
            os.environ["REDIS_URL"] = redis.redis_url
            handles.append(redis)
            print(f"Embedded Redis under {settings.dossier_data_dir / 'redis'}")
        get_settings.cache_clear()
        yield
    finally:
        for handle in reversed(handles):
            handle.stop()


def _database_url(settings: Settings) -> str:
    if settings.database_url is None:
        raise SystemExit("DATABASE_URL is not set")
    return settings.database_url.get_secret_value()


async def _in_system_transaction(
    settings: Settings, scope: str, work: Callable[[Any], Coroutine[Any, Any, Any]]
) -> Any:
    database = Database(
        _database_url(settings), app_role=settings.db_app_role, pool_size=1, max_overflow=0
    )
    try:
        with system_scope(scope):
            async with database.transaction() as session:
                return await work(session)
    finally:
        await database.dispose()


async def _create_demo_tenant_if_empty(settings: Settings) -> tuple[str, str] | None:
    from backend.tenants.service import tenant_service
    from backend.users.service import new_password_hash

    async def work(session: Any) -> tuple[str, str] | None:
        if await session.scalar(select(func.count()).select_from(Tenant)):
            return None
        # Hashed only when there is a demo tenant to make (this one-off
        # transaction has a pool of its own).
        password = secrets.token_urlsafe(12)
        await tenant_service.provision(
            session,
            name="Demo",
            owner_email=DEMO_OWNER_EMAIL,
            owner_password_hash=await new_password_hash(settings, password, DEMO_OWNER_EMAIL),
        )
        return DEMO_OWNER_EMAIL, password

    result: tuple[str, str] | None = await _in_system_transaction(settings, "cli.demo", work)
    return result


async def _create_superadmin(settings: Settings, email: str, password: str) -> str:
    from backend.roles.permissions import OWNER_ROLE
    from backend.roles.service import role_service
    from backend.tenants.service import tenant_service
    from backend.users.service import new_password_hash, user_service

    password_hash = await new_password_hash(settings, password, email)

    async def work(session: Any) -> str:
        platform = await session.scalar(
            select(Tenant).where(Tenant.slug == PLATFORM_SLUG, Tenant.deleted_at.is_(None))
        )
        if platform is None:
            provisioned = await tenant_service.provision(
                session,
                name="Platform",
                slug=PLATFORM_SLUG,
                owner_email=email,
                owner_password_hash=password_hash,
                owner_is_superadmin=True,
            )
            return str(provisioned.owner.id)
        roles = await role_service.roles_by_names(session, platform.id, [OWNER_ROLE])
        user = await user_service.create_user(
            session,
            tenant_id=platform.id,
            email=email,
            password_hash=password_hash,
            roles=roles,
            is_superadmin=True,
        )
        return str(user.id)

    result: str = await _in_system_transaction(settings, "cli.create_superadmin", work)
    return result


async def _create_tenant(settings: Settings, name: str, email: str, password: str) -> str:
    from backend.tenants.service import tenant_service
    from backend.users.service import new_password_hash

    password_hash = await new_password_hash(settings, password, email)

    async def work(session: Any) -> str:
        provisioned = await tenant_service.provision(
            session, name=name, owner_email=email, owner_password_hash=password_hash
        )
        return f"{provisioned.tenant.id} ({provisioned.tenant.slug})"

    result: str = await _in_system_transaction(settings, "cli.create_tenant", work)
    return result


def _exit_on_signal(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def cmd_serve(args: argparse.Namespace) -> None:
    import uvicorn

    configured = get_settings()
    embedded = configured.database_url is None or configured.redis_url is None
    with _embedded_services(configured, with_redis=True):
        settings = get_settings()
        migrations.upgrade(_database_url(settings), app_role=settings.db_app_role)
        if embedded:
            credentials = asyncio.run(_create_demo_tenant_if_empty(settings))
            if credentials:
                email, password = credentials
                print(f"Demo tenant created. Log in as {email} with password {password}")
        if args.worker:
            print(
                f"Job worker in each API process ({settings.serve_worker_concurrency} jobs at once)"
            )
        print(f"Serving on http://{args.host}:{args.port} (docs at /docs)", flush=True)
        # uvicorn re-raises SIGTERM after its graceful shutdown; make that an
        # exception so the embedded services are stopped on the way out.
        signal.signal(signal.SIGTERM, _exit_on_signal)
        uvicorn.run(
            "backend.main:create_app_with_worker" if args.worker else "backend.main:create_app",
            factory=True,
            host=args.host,
            port=args.port,
            workers=args.workers,
            proxy_headers=False,  # client addresses come from TRUSTED_PROXIES
            log_config=None,
            access_log=False,
        )


def cmd_migrate(args: argparse.Namespace) -> None:
    with _embedded_services(get_settings(), with_redis=False):
        settings = get_settings()
        migrations.upgrade(_database_url(settings), args.revision, app_role=settings.db_app_role)
    print(f"Database migrated to {args.revision}")


def cmd_create_superadmin(args: argparse.Namespace) -> None:
    with _embedded_services(get_settings(), with_redis=False):
        user_id = asyncio.run(_create_superadmin(get_settings(), args.email, args.password))
    print(f"Platform administrator {args.email} created ({user_id})")


def cmd_create_tenant(args: argparse.Namespace) -> None:
    with _embedded_services(get_settings(), with_redis=False):
        tenant = asyncio.run(
            _create_tenant(get_settings(), args.name, args.owner_email, args.owner_password)
        )
    print(f"Tenant {tenant} created with owner {args.owner_email}")


def cmd_worker(args: argparse.Namespace) -> None:
    from backend.kit.logging import configure_logging
    from backend.worker.runner import Worker

    with _embedded_services(get_settings(), with_redis=True):
        settings = get_settings()
        configure_logging(settings.log_level)
        extra = [module for module in args.modules if module]
        if extra:
            settings = settings.model_copy(update={"job_modules": [*settings.job_modules, *extra]})

        install(settings)

        async def run() -> None:
            worker = Worker(settings, concurrency=args.concurrency)
            worker.install_signal_handlers()
            await worker.run()

        asyncio.run(run())


def cmd_openapi(args: argparse.Namespace) -> None:
    from backend.main import create_app

    print(json.dumps(create_app().openapi(), indent=2))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="dossier", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    serve = commands.add_parser("serve", help="run the API (embedded services if none configured)")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    serve.add_argument(
        "--worker",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="run the job worker in each API process (SERVE_WORKER_CONCURRENCY jobs at once);"
        " --no-worker when separate `dossier worker` processes run the queue",
    )
    serve.set_defaults(handler=cmd_serve)

    migrate = commands.add_parser("migrate", help="upgrade the database schema")
    migrate.add_argument("--revision", default="head")
    migrate.set_defaults(handler=cmd_migrate)

    superadmin = commands.add_parser("create-superadmin", help="create a platform administrator")
    superadmin.add_argument("--email", required=True)
    superadmin.add_argument("--password", required=True)
    superadmin.set_defaults(handler=cmd_create_superadmin)

    tenant = commands.add_parser("create-tenant", help="create a tenant with its owner")
    tenant.add_argument("--name", required=True)
    tenant.add_argument("--owner-email", required=True)
    tenant.add_argument("--owner-password", required=True)
    tenant.set_defaults(handler=cmd_create_tenant)

    worker = commands.add_parser("worker", help="run jobs from the queue")
    worker.add_argument("--concurrency", type=int, default=4, help="jobs run at once")
    worker.add_argument(
        "--import",
        dest="modules",
        action="append",
        default=[],
        help="a module registering extra job types (repeatable; also JOB_MODULES)",
    )
    worker.set_defaults(handler=cmd_worker)

    openapi = commands.add_parser("openapi", help="print the OpenAPI document")
    openapi.set_defaults(handler=cmd_openapi)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    try:
        args.handler(args)
    except DossierError as exc:
        print(f"error: {exc.detail}", file=sys.stderr)
        raise SystemExit(1) from None
