"""SQL for the application role, its grants and row-level security, and the
columns every tenant-owned table starts with: the helpers the migrations share.

They live with the migrations, not in the application, and are frozen: a
migration that has run must do the same thing when it runs again on another
database, so these functions never change behaviour. A new need gets a new
function. (Alembic puts this directory on `sys.path`: `import tenancy_sql`.)

Policies compare `tenant_id` with the transaction-local `app.tenant_id`
(`NULLIF(..., '')` because a setting reads `''`, not NULL, once a transaction
that set it has ended) or let a named system scope through. Tables are
`FORCE`d so that even their owner is subject to the policy.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

CURRENT_TENANT = "NULLIF(current_setting('app.tenant_id', true), '')::uuid"
IN_SYSTEM_SCOPE = "COALESCE(current_setting('app.system_scope', true), '') <> ''"


def app_role() -> str:
    """The role the application's queries run as: `env.py` hands it to the
    migration context (from the Alembic config), never from the app's settings."""
    role = op.get_context().opts.get("app_role")
    if not role:
        raise RuntimeError("the migration context has no app_role (see alembic/env.py)")
    return str(role)


def create_app_role(role: str) -> list[str]:
    """The non-superuser, non-owner role the application's queries run as.

    Roles are cluster-wide, so the role is created only if missing and is
    granted to the migrating user, which lets the app `SET ROLE` to it.
    """
    return [
        f"""
        DO $$
        BEGIN
            IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = '{role}') THEN
                CREATE ROLE "{role}" NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE;
            END IF;
        END
        $$
        """,
        f'GRANT "{role}" TO CURRENT_USER',
        f'GRANT USAGE ON SCHEMA public TO "{role}"',
    ]


def tenant_policy(table: str, column: str = "tenant_id") -> list[str]:
    predicate = f"({column} = {CURRENT_TENANT} OR {IN_SYSTEM_SCOPE})"
    return [
        f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} FORCE ROW LEVEL SECURITY",
        f"CREATE POLICY tenant_isolation ON {table} USING {predicate} WITH CHECK {predicate}",
    ]


def drop_tenant_policy(table: str) -> list[str]:
    return [
        f"DROP POLICY IF EXISTS tenant_isolation ON {table}",
        f"ALTER TABLE {table} NO FORCE ROW LEVEL SECURITY",
        f"ALTER TABLE {table} DISABLE ROW LEVEL SECURITY",
    ]


def grant_read_write(table: str, role: str) -> str:
    return f'GRANT SELECT, INSERT, UPDATE, DELETE ON {table} TO "{role}"'


def grant_append_only(table: str, role: str) -> str:
    return f'GRANT SELECT, INSERT ON {table} TO "{role}"'


def tenant_columns() -> list[sa.Column]:  # type: ignore[type-arg]
    """The key, timestamps and owning tenant that every tenant-owned table
    starts with (`tenant_id` is the column `tenant_policy` compares)."""
    return [
        sa.Column("id", sa.UUID(), primary_key=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "tenant_id", sa.UUID(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False
        ),
    ]


def make_tenant_owned(tables: Sequence[str]) -> None:
    """Run in an upgrade once the tables exist: each one granted read-write to
    the application role and put under the tenant policy."""
    role = app_role()
    for table in tables:
        op.execute(grant_read_write(table, role))
        for statement in tenant_policy(table):
            op.execute(statement)


def drop_tenant_owned(tables: Sequence[str]) -> None:
    """The downgrade of `make_tenant_owned` and of the tables' creation: each
    table, the last first, loses its policy and is dropped."""
    for table in reversed(tables):
        for statement in drop_tenant_policy(table):
            op.execute(statement)
        op.drop_table(table)
