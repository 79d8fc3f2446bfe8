"""Ranking a tenant's candidates against a requisition, in one SQL statement.

For each live candidate of the tenant:

- `required_fraction` = required skills the candidate has / required skills
  (1 when the requisition names none);
- `preferred_fraction` = likewise for preferred skills (1 when none);
- `experience_fit` = min(1, total_experience_months / (12 × min_experience_years))
  (1 when the requisition sets no minimum);
- `text_relevance` = `ts_rank` of the candidate's search vector (name,
  headline, summary, CV text) against the requisition's description read as
  "any of these words" (`plainto_tsquery` with `&` turned into `|`), divided
  by the best rank among the tenant's candidates (0 without a description);
- `fit` = 0.5 × preferred_fraction + 0.3 × experience_fit + 0.2 × text_relevance;
- `score` = 50 + 50 × fit when every required skill is present, else
  49 × (0.7 × required_fraction + 0.3 × fit).

A complete match therefore scores 50–100 and any candidate missing a
required skill scores below 49: missing one required skill ranks below every
complete match, whatever else they have. Scores are rounded to two decimals;
ties are ordered by candidate id so that the order is deterministic.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from sqlalchemy import TextClause, text

WEIGHT_PREFERRED = 0.5
WEIGHT_EXPERIENCE = 0.3
WEIGHT_TEXT = 0.2
COMPLETE_FLOOR = 50
INCOMPLETE_CEILING = 49
INCOMPLETE_REQUIRED_WEIGHT = 0.7
INCOMPLETE_FIT_WEIGHT = 0.3

# Only the constants above are interpolated; every value is a bind parameter.
_SCORED = f"""
WITH params AS (
    SELECT CAST(:required AS text[]) AS required,
           CAST(:preferred AS text[]) AS preferred,
           CAST(:min_months AS double precision) AS min_months,
           CAST(NULLIF(replace(CAST(plainto_tsquery('english', :description) AS text),
                               '&', '|'), '') AS tsquery) AS query
),
base AS MATERIALIZED (
    -- narrow rows (numbers only), so that the window below stays in memory
    SELECT c.id,
           {{required_hits}} AS required_hits,
           {{preferred_hits}} AS preferred_hits,
           cardinality(p.required) AS required_total,
           cardinality(p.preferred) AS preferred_total,
           CASE WHEN p.min_months IS NULL OR p.min_months <= 0 THEN 1.0
                ELSE least(1.0, c.total_experience_months / p.min_months)
           END AS experience_fit,
           CASE WHEN p.query IS NULL THEN 0.0
                ELSE CAST(ts_rank(c.search_vector, p.query) AS double precision) END AS rank
    FROM candidates c CROSS JOIN params p
    WHERE c.tenant_id = :tenant_id AND c.deleted_at IS NULL
),
fractions AS (
    SELECT b.id, b.experience_fit,
           b.required_hits = b.required_total AS complete,
           CASE WHEN b.required_total = 0 THEN 1.0
                ELSE b.required_hits::float8 / b.required_total END AS required_fraction,
           CASE WHEN b.preferred_total = 0 THEN 1.0
                ELSE b.preferred_hits::float8 / b.preferred_total END AS preferred_fraction,
           CASE WHEN max(b.rank) OVER () > 0 THEN b.rank / max(b.rank) OVER () ELSE 0.0
           END AS text_relevance
    FROM base b
),
scored AS (
    SELECT f.id, f.experience_fit, f.text_relevance,
           round(CAST(CASE WHEN f.complete
               THEN {COMPLETE_FLOOR} + {100 - COMPLETE_FLOOR} * (
                   {WEIGHT_PREFERRED} * f.preferred_fraction
                   + {WEIGHT_EXPERIENCE} * f.experience_fit
                   + {WEIGHT_TEXT} * f.text_relevance)
               ELSE {INCOMPLETE_CEILING} * (
                   {INCOMPLETE_REQUIRED_WEIGHT} * f.required_fraction
                   + {INCOMPLETE_FIT_WEIGHT} * (
                       {WEIGHT_PREFERRED} * f.preferred_fraction
                       + {WEIGHT_EXPERIENCE} * f.experience_fit
                       + {WEIGHT_TEXT} * f.text_relevance))
           END AS numeric), 2) AS score
    FROM fractions f
),
page AS (
    SELECT s.*{{extra}}
    FROM scored s
    WHERE s.score >= :min_score{{after}}
    ORDER BY s.score DESC, s.id DESC
    LIMIT :page_limit{{offset}}
)
SELECT page.*, c.name, c.headline, c.skills, c.location, c.total_experience_months,
       p.min_months,
       ARRAY(SELECT r.s FROM unnest(p.required) WITH ORDINALITY AS r(s, n)
             WHERE r.s = ANY(c.skills) ORDER BY r.n) AS required_matched,
       ARRAY(SELECT r.s FROM unnest(p.required) WITH ORDINALITY AS r(s, n)
             WHERE NOT (r.s = ANY(c.skills)) ORDER BY r.n) AS required_missing,
       ARRAY(SELECT r.s FROM unnest(p.preferred) WITH ORDINALITY AS r(s, n)
             WHERE r.s = ANY(c.skills) ORDER BY r.n) AS preferred_matched
FROM page JOIN candidates c ON c.id = page.id CROSS JOIN params p
ORDER BY page.score DESC, page.id DESC
"""  # noqa: S608


def _hits(prefix: str, count: int) -> str:
    """`(:r0 = ANY(c.skills))::int + ...`: one term per skill, no subquery per row."""
    if count == 0:
        return "0"
    return " + ".join(
        f"(CAST(:{prefix}{index} AS text) = ANY(c.skills))::int" for index in range(count)
    )


def matches_statement(*, keyset: bool, after: bool, required: int, preferred: int) -> TextClause:
    """The ranking statement for `required` and `preferred` skills (bound as
    `r0…`, `p0…`): offset pages carry `total`; keyset pages start after
    `(after_score, after_id)` in `score DESC, id DESC` order."""
    hits = {"required_hits": _hits("r", required), "preferred_hits": _hits("p", preferred)}
    if keyset:
        sql = _SCORED.format(
            **hits,
            extra="",
            after=" AND (s.score, s.id) < (CAST(:after_score AS numeric), :after_id)"
            if after
            else "",
            offset="",
        )
    else:
        sql = _SCORED.format(
            **hits,
            extra=", count(*) OVER () AS total",
            after="",
            offset=" OFFSET :page_offset",
        )
    return text(sql)


def match_params(
    tenant_id: UUID,
    required: list[str],
    preferred: list[str],
    min_experience_years: float | None,
    description: str | None,
    min_score: float,
) -> dict[str, Any]:
    return {
        "tenant_id": tenant_id,
        "required": required,
        "preferred": preferred,
        **{f"r{index}": skill for index, skill in enumerate(required)},
        **{f"p{index}": skill for index, skill in enumerate(preferred)},
        "min_months": None if min_experience_years is None else min_experience_years * 12,
        "description": description or "",
        "min_score": min_score,
    }
