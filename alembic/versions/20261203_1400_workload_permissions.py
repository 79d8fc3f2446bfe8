"""Workload permissions join the system roles of existing tenants.

The catalogue gains `marking:*`, `candidates:*`, `crawls:*` and `scans:*`
(WORKLOADS.md): `owner` and `admin` get all of them, `member` read and write,
`viewer` read. New tenants get them from the catalogue at signup; this brings
the system roles of tenants created before into line. Custom roles are left
as their tenants made them.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03 14:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

WORKLOADS = ("marking", "candidates", "crawls", "scans")
READ = [f"{workload}:read" for workload in WORKLOADS]
WRITE = [f"{workload}:write" for workload in WORKLOADS]
GRANTS = {
    "owner": READ + WRITE,
    "admin": READ + WRITE,
    "member": READ + WRITE,
    "viewer": READ,
}

_ADD = sa.text(
    "UPDATE roles SET permissions = ARRAY(SELECT DISTINCT unnest(permissions || "
    "CAST(:names AS varchar[])) ORDER BY 1), updated_at = now() "
    "WHERE is_system AND name = :role"
)
_REMOVE = sa.text(
    "UPDATE roles SET permissions = ARRAY(SELECT p FROM unnest(permissions) AS p "
    "WHERE p <> ALL(CAST(:names AS varchar[])) ORDER BY 1), updated_at = now() "
    "WHERE is_system AND name = :role"
)


def _each_system_role(statement: sa.TextClause) -> None:
    # The migrating role owns `roles`, whose row-level security is FORCEd (so
    # the owner would see no tenant's rows): lifted for this transaction only.
    op.execute("ALTER TABLE roles NO FORCE ROW LEVEL SECURITY")
    for role, names in GRANTS.items():
        op.get_bind().execute(statement, {"role": role, "names": names})
    op.execute("ALTER TABLE roles FORCE ROW LEVEL SECURITY")


def upgrade() -> None:
    _each_system_role(_ADD)


def downgrade() -> None:
    _each_system_role(_REMOVE)
