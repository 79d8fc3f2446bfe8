"""Document intelligence: document type, extracted fields, user metadata and
OCR confidence on documents; per-page extraction results; a full-text
vector in each document's own language.

Revision ID: 0005
Revises: 0007
Create Date: 2026-12-03 15:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

import tenancy_sql as rls
from alembic import op

revision: str = "0005"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_SEARCH_VECTOR = (
    "setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(description, '')), 'B') || "
    "setweight(to_tsvector('english'::regconfig, "
    "left(coalesce(extracted_text, ''), 250000)), 'C')"
)
REGCONFIG = (
    "CASE WHEN language = 'de' THEN 'german'::regconfig "
    "WHEN language = 'en' OR language IS NULL THEN 'english'::regconfig "
    "ELSE 'simple'::regconfig END"
)
NEW_SEARCH_VECTOR = (
    f"setweight(to_tsvector({REGCONFIG}, coalesce(title, '')), 'A') || "
    f"setweight(to_tsvector({REGCONFIG}, coalesce(description, '')), 'B') || "
    f"setweight(to_tsvector({REGCONFIG}, left(coalesce(extracted_text, ''), 250000)), 'C')"
)


def _search_vector(expression: str) -> None:
    op.drop_index("ix_documents_search", table_name="documents")
    op.drop_column("documents", "search_vector")
    op.add_column(
        "documents",
        sa.Column("search_vector", postgresql.TSVECTOR(), sa.Computed(expression, persisted=True)),
    )
    op.create_index("ix_documents_search", "documents", ["search_vector"], postgresql_using="gin")


def upgrade() -> None:
    op.add_column("documents", sa.Column("document_type", sa.String(20), nullable=True))
    op.add_column("documents", sa.Column("extracted_data", postgresql.JSONB(), nullable=True))
    op.add_column("documents", sa.Column("extraction", postgresql.JSONB(), nullable=True))
    op.add_column(
        "documents",
        sa.Column("metadata", postgresql.JSONB(), server_default="{}", nullable=False),
    )
    op.add_column("documents", sa.Column("confidence", sa.Float(), nullable=True))
    op.create_index(
        "ix_documents_tenant_type", "documents", ["tenant_id", "document_type", "created_at"]
    )
    op.create_index("ix_documents_tenant_language", "documents", ["tenant_id", "language"])
    op.create_index(
        "ix_documents_tenant_supplier",
        "documents",
        ["tenant_id", sa.text("lower(extracted_data ->> 'supplier_name')")],
    )
    op.create_index(
        "ix_documents_tenant_supplier_vat",
        "documents",
        ["tenant_id", sa.text("(extracted_data ->> 'supplier_vat_id')")],
    )
    op.create_index(
        "ix_documents_metadata",
        "documents",
        ["metadata"],
        postgresql_using="gin",
        postgresql_ops={"metadata": "jsonb_path_ops"},
    )
    _search_vector(NEW_SEARCH_VECTOR)

    op.create_table(
        "document_pages",
        *rls.tenant_columns(),
        sa.Column("document_id", sa.UUID(), sa.ForeignKey("documents.id", ondelete="CASCADE"), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(10), nullable=False),
        sa.Column("characters", sa.Integer(), nullable=False),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("language", sa.String(20), nullable=True),
        sa.Column("width", sa.Float(), nullable=True),
        sa.Column("height", sa.Float(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
    )  # fmt: skip
    op.create_index(
        "uq_document_pages_tenant_document_number",
        "document_pages",
        ["tenant_id", "document_id", "number"],
        unique=True,
    )
    rls.make_tenant_owned(["document_pages"])


def downgrade() -> None:
    rls.drop_tenant_owned(["document_pages"])
    _search_vector(OLD_SEARCH_VECTOR)
    for index in (
        "ix_documents_metadata",
        "ix_documents_tenant_supplier_vat",
        "ix_documents_tenant_supplier",
        "ix_documents_tenant_language",
        "ix_documents_tenant_type",
    ):
        op.drop_index(index, table_name="documents")
    for column in ("confidence", "metadata", "extraction", "extracted_data", "document_type"):
        op.drop_column("documents", column)
