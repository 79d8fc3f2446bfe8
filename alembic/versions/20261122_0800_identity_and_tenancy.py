"""Identity and tenancy: tenants, users, roles, API keys, sessions, audit events.

Also creates the application role and the row-level security policies that
confine it to the current tenant.

Revision ID: 0001
Revises:
Create Date: 2026-11-22 08:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import tenancy_sql as rls
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TENANT_OWNED = ["users", "roles", "user_roles", "api_keys", "refresh_tokens", "one_time_tokens"]


def _timestamps() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("id", sa.UUID(), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
    ]


def _tenant_fk() -> sa.Column:  # type: ignore[type-arg]
    return sa.Column("tenant_id", sa.UUID(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=False)


def _soft_delete() -> list[sa.Column]:  # type: ignore[type-arg]
    return [
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("deleted_by", sa.UUID(), nullable=True),
    ]


def _live(name: str, table: str, columns: list[str | sa.TextClause]) -> None:
    op.create_index(name, table, columns, unique=True, postgresql_where=sa.text("deleted_at IS NULL"))


def upgrade() -> None:
    role = rls.app_role()
    for statement in rls.create_app_role(role):
        op.execute(statement)

    op.create_table(
        "tenants",
        *_timestamps(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("slug", sa.String(63), nullable=False),
        sa.Column("plan", sa.String(50), server_default="free", nullable=False),
        sa.Column("status", sa.String(20), server_default="active", nullable=False),
        sa.Column("settings", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("limits", postgresql.JSONB(), server_default="{}", nullable=False),
        *_soft_delete(),
        sa.CheckConstraint("status IN ('active', 'suspended')", name="status"),
    )
    _live("uq_tenants_slug_live", "tenants", ["slug"])

    op.create_table(
        "users",
        *_timestamps(),
        _tenant_fk(),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("full_name", sa.String(200), nullable=True),
        sa.Column("password_hash", sa.String(255), nullable=True),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("is_superadmin", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("tokens_valid_after", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        *_soft_delete(),
    )
    # Email is unique across the platform (a user belongs to one tenant and
    # logs in by email alone), so this one unique key does not lead with tenant_id.
    _live("uq_users_email_live", "users", [sa.text("lower(email)")])
    op.create_index("ix_users_tenant_created", "users", ["tenant_id", "created_at", "id"])

    op.create_table(
        "roles",
        *_timestamps(),
        _tenant_fk(),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("description", sa.String(500), nullable=True),
        sa.Column("permissions", postgresql.ARRAY(sa.String(50)), nullable=False),
        sa.Column("is_system", sa.Boolean(), server_default="false", nullable=False),
        *_soft_delete(),
    )
    _live("uq_roles_tenant_name_live", "roles", ["tenant_id", sa.text("lower(name)")])

    op.create_table(
        "user_roles",
        *_timestamps(),
        _tenant_fk(),
        sa.Column("user_id", sa.UUID(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("role_id", sa.UUID(), sa.ForeignKey("roles.id", ondelete="CASCADE"), nullable=False),
    )
    op.create_index("uq_user_roles_tenant_user_role", "user_roles", ["tenant_id", "user_id", "role_id"], unique=True)
    op.create_index("ix_user_roles_tenant_role", "user_roles", ["tenant_id", "role_id"])

    op.create_table(
        "api_keys",
        *_timestamps(),
        _tenant_fk(),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("prefix", sa.String(32), nullable=False),
        sa.Column("key_hash", sa.String(128), nullable=False),
        sa.Column("scopes", postgresql.ARRAY(sa.String(50)), nullable=False),
        sa.Column("rate_limit", sa.String(32), nullable=True),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_by", sa.UUID(), nullable=True),
    )
    # Looked up by its public prefix before the tenant is known.
    op.create_index("uq_api_keys_prefix", "api_keys", ["prefix"], unique=True)
    op.create_index("ix_api_keys_tenant_created", "api_keys", ["tenant_id", "created_at", "id"])

    op.create_table(
        "refresh_tokens",
        *_timestamps(),
        _tenant_fk(),
        sa.Column("user_id", sa.UUID(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("family_id", sa.UUID(), nullable=False),
        sa.Column("parent_id", sa.UUID(), nullable=True),
        sa.Column("token_hash", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("uq_refresh_tokens_hash", "refresh_tokens", ["token_hash"], unique=True)
    op.create_index("ix_refresh_tokens_tenant_family", "refresh_tokens", ["tenant_id", "family_id"])
    op.create_index("ix_refresh_tokens_tenant_user", "refresh_tokens", ["tenant_id", "user_id"])

    op.create_table(
        "one_time_tokens",
        *_timestamps(),
        _tenant_fk(),
        sa.Column("user_id", sa.UUID(), sa.ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
        sa.Column("purpose", sa.String(30), nullable=False),
        sa.Column("token_hash", sa.String(128), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("uq_one_time_tokens_hash", "one_time_tokens", ["token_hash"], unique=True)
    op.create_index("ix_one_time_tokens_tenant_user", "one_time_tokens", ["tenant_id", "user_id", "purpose"])

    op.create_table(
        "audit_events",
        *_timestamps(),
        sa.Column("tenant_id", sa.UUID(), sa.ForeignKey("tenants.id", ondelete="CASCADE"), nullable=True),
        sa.Column("actor_type", sa.String(20), nullable=False),
        sa.Column("actor_id", sa.UUID(), nullable=True),
        sa.Column("action", sa.String(100), nullable=False),
        sa.Column("resource_type", sa.String(50), nullable=False),
        sa.Column("resource_id", sa.String(100), nullable=True),
        sa.Column("changes", postgresql.JSONB(), server_default="{}", nullable=False),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("user_agent", sa.String(512), nullable=True),
        sa.Column("request_id", sa.String(128), nullable=True),
    )
    op.create_index("ix_audit_events_tenant_created", "audit_events", ["tenant_id", "created_at", "id"])
    op.create_index("ix_audit_events_tenant_resource", "audit_events", ["tenant_id", "resource_type", "resource_id"])
    op.create_index("ix_audit_events_tenant_actor", "audit_events", ["tenant_id", "actor_id", "created_at"])

    for table in ["tenants", *TENANT_OWNED]:
        op.execute(rls.grant_read_write(table, role))
    op.execute(rls.grant_append_only("audit_events", role))
    for statement in rls.tenant_policy("tenants", column="id"):
        op.execute(statement)
    for table in [*TENANT_OWNED, "audit_events"]:
        for statement in rls.tenant_policy(table):
            op.execute(statement)


def downgrade() -> None:
    # Dropping the tables drops their policies and grants. The role is
    # cluster-wide and may serve other databases, so it stays.
    for table in ["audit_events", "one_time_tokens", "refresh_tokens", "api_keys", "user_roles", "roles", "users", "tenants"]:
        op.drop_table(table)
    op.execute(f'REVOKE USAGE ON SCHEMA public FROM "{rls.app_role()}"')
